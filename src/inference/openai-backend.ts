import { InferenceError, type GenerateRequest, type GenerateResult, type InferenceBackend, type ModelEntry } from './backend.ts'

export interface OpenAiBackendOptions {
  /** the server's base URL, with or without a trailing `/v1` (e.g. http://127.0.0.1:11434) */
  url: string
  /** sent as `Authorization: Bearer <apiKey>` when set */
  apiKey?: string
  /** ms to wait for the first byte of an answer (default 60 s) */
  timeoutMs?: number
}

/**
 * Any OpenAI-compatible server as a backend: Ollama, LM Studio, llama.cpp's server, or another
 * BIZRA node's `/v1`. Generation always streams (SSE), so tokens reach the caller as they come.
 */
export class OpenAiHttpBackend implements InferenceBackend {
  readonly kind = 'http' as const
  readonly #base: string
  readonly #headers: Record<string, string>
  readonly #timeoutMs: number

  constructor (options: OpenAiBackendOptions) {
    let u: URL
    try {
      u = new URL(options.url)
    } catch {
      throw new InferenceError('bad_url', `--llm-url must be an http(s) URL, got ${JSON.stringify(options.url)}`)
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InferenceError('bad_url', `--llm-url must be an http(s) URL, got ${JSON.stringify(options.url)}`)
    this.#base = u.toString().replace(/\/+$/, '').replace(/\/v1$/, '') + '/v1'
    this.#headers = { 'content-type': 'application/json', ...(options.apiKey !== undefined ? { authorization: `Bearer ${options.apiKey}` } : {}) }
    this.#timeoutMs = options.timeoutMs ?? 60_000
  }

  async loaded (): Promise<ModelEntry[]> {
    const res = await this.#fetch('/models', { method: 'GET' }, AbortSignal.timeout(this.#timeoutMs))
    const body = await res.json().catch(() => null) as { data?: Array<{ id?: unknown }> } | null
    if (!Array.isArray(body?.data)) throw new InferenceError('backend_error', `${this.#base}/models did not answer a model list`)
    return body.data.filter((m): m is { id: string } => typeof m?.id === 'string').map(m => ({ id: m.id }))
  }

  async generate (req: GenerateRequest): Promise<GenerateResult> {
    const started = performance.now()
    const signal = req.signal === undefined ? AbortSignal.timeout(this.#timeoutMs) : AbortSignal.any([req.signal, AbortSignal.timeout(this.#timeoutMs)])
    const model = req.model ?? (await this.loaded())[0]?.id
    if (model === undefined) throw new InferenceError('no_model', `${this.#base} has no model`)
    const res = await this.#fetch('/chat/completions', {
      method: 'POST',
      body: JSON.stringify({
        model,
        messages: req.messages,
        max_tokens: req.maxTokens,
        stream: true,
        stream_options: { include_usage: true },
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
        ...(req.seed !== undefined ? { seed: req.seed } : {})
      })
    }, signal)
    if (res.body === null) throw new InferenceError('backend_error', 'empty answer')
    let text = ''
    let tokens = 0
    let promptTokens: number | null = null
    let finishReason: GenerateResult['finishReason'] = 'stop'
    let firstTokenMs: number | null = null
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') break
      let chunk: { choices?: Array<{ delta?: { content?: unknown }, finish_reason?: unknown }>, usage?: { completion_tokens?: unknown, prompt_tokens?: unknown } }
      try {
        chunk = JSON.parse(data)
      } catch {
        throw new InferenceError('backend_error', `${this.#base} sent a stream chunk that is not JSON`)
      }
      const choice = chunk.choices?.[0]
      const piece = choice?.delta?.content
      if (typeof piece === 'string' && piece !== '') {
        firstTokenMs ??= performance.now() - started
        text += piece
        tokens++
        req.onToken?.(piece)
      }
      if (choice?.finish_reason === 'length') finishReason = 'length'
      if (typeof chunk.usage?.completion_tokens === 'number') tokens = chunk.usage.completion_tokens
      if (typeof chunk.usage?.prompt_tokens === 'number') promptTokens = chunk.usage.prompt_tokens
    }
    return { model, text, tokens, promptTokens, finishReason, firstTokenMs }
  }

  async close (): Promise<void> {}

  async #fetch (path: string, init: RequestInit, signal: AbortSignal): Promise<Response> {
    let res: Response
    try {
      res = await fetch(this.#base + path, { ...init, headers: this.#headers, signal })
    } catch (err) {
      if (signal.aborted) throw new InferenceError('timeout', `${this.#base}${path} did not answer in time`, { cause: err })
      throw new InferenceError('backend_unreachable', `cannot reach ${this.#base}${path}: ${(err as Error).message}`, { cause: err })
    }
    if (!res.ok) {
      const detail = await res.text().catch(() => '')
      throw new InferenceError(res.status === 429 ? 'rate_limited' : res.status === 503 ? 'busy' : 'backend_error', `${this.#base}${path} answered ${res.status}${detail !== '' ? `: ${detail.slice(0, 200)}` : ''}`)
    }
    return res
  }
}

/** The `data:` payloads of a server-sent event stream. */
export async function * sseData (body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, '\n')
    for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
      const event = buffer.slice(0, i)
      buffer = buffer.slice(i + 2)
      const data = event.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5).replace(/^ /, '')).join('\n')
      if (data !== '') yield data
    }
  }
}
