import type { Logger } from 'pino'
import type { A2aService } from '../a2a/service.ts'
import { SkillRejection, type SkillHandler, type SkillSpec, type TaskPart } from '../a2a/types.ts'
import { FairAdmission, type AdmissionConfig } from './admission.ts'
import { InferenceError, type ChatMessage, type GenerateResult, type InferenceBackend, type ModelEntry } from './backend.ts'

export const INFER_SKILL: SkillSpec = {
  id: 'infer',
  name: 'LLM inference',
  description: 'Chat completion on a local model: data part { messages: [{ role, content }], max_tokens?, temperature?, seed? } or text (one user message); replies with the generated text.',
  tags: ['llm', 'inference'],
  inputModes: ['text/plain', 'application/json'],
  outputModes: ['text/plain']
}

export interface ChatRequest {
  model?: string
  messages: ChatMessage[]
  maxTokens: number
  temperature?: number
  seed?: number
}

export interface ChatResult extends GenerateResult {
  /** the node that ran the model: this one, or the peer the request was routed to */
  provider: string
}

export interface ChatOptions {
  onToken?: (text: string) => void
  signal?: AbortSignal
  /** seconds a routed request may take (default 120) */
  deadlineS?: number
}

export interface InferenceServiceInit {
  a2a: A2aService
  /** this node's model runner, or null when it has none (then chat is routed to peers) */
  backend: InferenceBackend | null
  admission?: Partial<AdmissionConfig>
  /** most requests from peers generating at once on this node (default 1: one model, one context) */
  concurrency?: number
  log?: Logger
}

export const MAX_TOKENS_LIMIT = 8192
const PROGRESS_EVERY_MS = 50

/**
 * Inference as a federation service. A node with a model (the worker, or an OpenAI-compatible
 * server behind --llm-url) offers the `infer` A2A skill while a model is ready; peers are
 * served least-served first under the fair-admission budget. A node without one answers a chat
 * request by routing it as an `infer` task to a peer that has one, streaming the peer's tokens.
 */
export class InferenceService {
  readonly #init: InferenceServiceInit
  readonly #admission: FairAdmission
  readonly #waiting: Array<{ requester: string, start: () => void }> = []
  #running = 0
  #unregister: (() => void) | undefined

  constructor (init: InferenceServiceInit) {
    this.#init = init
    this.#admission = new FairAdmission(init.admission)
  }

  get backend (): InferenceBackend | null {
    return this.#init.backend
  }

  /** Re-reads what the backend has loaded and offers `infer` exactly when something is. */
  async refreshSkill (): Promise<ModelEntry[]> {
    const loaded = this.#init.backend === null ? [] : await this.#init.backend.loaded().catch(() => [])
    if (loaded.length > 0 && this.#unregister === undefined) this.#unregister = this.#init.a2a.skills.register(INFER_SKILL, this.#skill)
    if (loaded.length === 0 && this.#unregister !== undefined) {
      this.#unregister()
      this.#unregister = undefined
    }
    return loaded
  }

  async loaded (): Promise<ModelEntry[]> {
    return this.#init.backend === null ? [] : this.#init.backend.loaded()
  }

  async load (path: string, onProgress?: (fraction: number) => void): Promise<ModelEntry> {
    const b = this.#init.backend
    if (b?.load === undefined) throw new InferenceError('unsupported', b === null ? 'this node has no model runner' : 'models are managed by the server behind --llm-url')
    const model = await b.load(path, onProgress)
    await this.refreshSkill()
    return model
  }

  async unload (id: string): Promise<void> {
    const b = this.#init.backend
    if (b?.unload === undefined) throw new InferenceError('unsupported', b === null ? 'this node has no model runner' : 'models are managed by the server behind --llm-url')
    await b.unload(id)
    await this.refreshSkill()
  }

  /** Runs a chat locally when a model is ready, else routes it to a peer offering `infer`. */
  async chat (req: ChatRequest, options: ChatOptions = {}): Promise<ChatResult> {
    const self = this.#init.a2a.agentCard().peerId
    const b = this.#init.backend
    if (b !== null && (b.hasModel?.() ?? (await b.loaded().catch(() => [])).length > 0)) {
      const r = await this.#init.backend!.generate({ ...req, onToken: options.onToken, signal: options.signal })
      return { ...r, provider: self }
    }
    return this.#routed(req, options)
  }

  async #routed (req: ChatRequest, options: ChatOptions): Promise<ChatResult> {
    const a2a = this.#init.a2a
    const started = performance.now()
    const record = await a2a.sendTask({
      skill: INFER_SKILL.id,
      deadlineS: options.deadlineS ?? 120,
      message: { parts: [{ data: { messages: req.messages, max_tokens: req.maxTokens, ...(req.temperature !== undefined ? { temperature: req.temperature } : {}), ...(req.seed !== undefined ? { seed: req.seed } : {}), ...(req.model !== undefined ? { model: req.model } : {}) } }] }
    })
    let sent = ''
    let firstTokenMs: number | null = null
    const emit = (text: string): void => {
      // progress is the text so far; pass on only what is new
      if (!text.startsWith(sent) || text.length === sent.length) return
      firstTokenMs ??= performance.now() - started
      options.onToken?.(text.slice(sent.length))
      sent = text
    }
    const off = a2a.onTask(t => {
      if (t.id !== record.id) return
      const p = t.progress?.find((x): x is { text: string } => 'text' in x)
      if (p !== undefined) emit(p.text)
    })
    const onAbort = (): void => { void a2a.cancelTask(record.id).catch(() => {}) }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const done = await a2a.waitTask(record.id)
      if (done.state !== 'completed') {
        const code = done.error?.code === 'UNKNOWN_SKILL' ? 'no_model' : done.error?.code === 'RATE_LIMITED' ? 'rate_limited' : done.state === 'canceled' ? 'canceled' : 'backend_error'
        const why = done.error?.code === 'UNKNOWN_SKILL' ? 'no node in the federation has a model loaded' : done.error?.message ?? done.state
        throw new InferenceError(code, why)
      }
      const text = (done.result ?? []).filter((p): p is { text: string } => 'text' in p).map(p => p.text).join('')
      emit(text)
      const usage = (done.result ?? []).find((p): p is { data: Partial<GenerateResult> } => 'data' in p)?.data
      return {
        model: typeof usage?.model === 'string' ? usage.model : 'unknown',
        text,
        tokens: typeof usage?.tokens === 'number' ? usage.tokens : 0,
        promptTokens: typeof usage?.promptTokens === 'number' ? usage.promptTokens : null,
        finishReason: usage?.finishReason === 'length' ? 'length' : 'stop',
        firstTokenMs,
        provider: done.provider ?? 'unknown'
      }
    } finally {
      off()
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  /** The `infer` skill: what peers (and this node's A2A clients) run here. */
  readonly #skill: SkillHandler = async (message, ctx) => {
    const req = parseInferInput(message.parts)
    const now = Date.now()
    const verdict = this.#admission.admit(ctx.requester, req.maxTokens, now, this.#waiting.map(w => w.requester))
    if (!verdict.ok) throw new SkillRejection(verdict.code, `${verdict.reason}; retry in ${Math.ceil(verdict.retryAfterMs / 1000)} s`)
    await this.#turn(ctx.requester, ctx.signal)
    let text = ''
    let lastProgress = 0
    try {
      const r = await this.#init.backend!.generate({
        ...req,
        signal: ctx.signal,
        onToken: (piece) => {
          text += piece
          const t = Date.now()
          if (t - lastProgress >= PROGRESS_EVERY_MS) {
            lastProgress = t
            ctx.progress([{ text }])
          }
        }
      })
      this.#admission.record(ctx.requester, r.tokens, Date.now())
      return { parts: [{ text: r.text }, { data: { model: r.model, tokens: r.tokens, promptTokens: r.promptTokens, finishReason: r.finishReason, firstTokenMs: r.firstTokenMs } }] }
    } catch (err) {
      if (err instanceof InferenceError && (err.code === 'busy' || err.code === 'no_model')) throw new SkillRejection(err.code === 'busy' ? 'BUSY' : 'UNKNOWN_SKILL', err.message)
      throw err
    } finally {
      this.#running--
      this.#next()
    }
  }

  /** Waits for a generation slot; the least-served waiting requester gets the next one. */
  async #turn (requester: string, signal: AbortSignal): Promise<void> {
    if (this.#running < (this.#init.concurrency ?? 1) && this.#waiting.length === 0) {
      this.#running++
      return
    }
    await new Promise<void>((resolve, reject) => {
      const entry = { requester, start: () => { signal.removeEventListener('abort', onAbort); resolve() } }
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(entry)
        if (i >= 0) this.#waiting.splice(i, 1)
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(entry)
    })
  }

  #next (): void {
    while (this.#running < (this.#init.concurrency ?? 1) && this.#waiting.length > 0) {
      const i = this.#admission.pickNext(this.#waiting.map(w => w.requester), Date.now())
      const [entry] = this.#waiting.splice(i, 1)
      this.#running++
      entry!.start()
    }
  }

  async close (): Promise<void> {
    this.#unregister?.()
    this.#unregister = undefined
    await this.#init.backend?.close()
  }
}

/** The `infer` skill's input: a data part `{ messages, max_tokens?, … }` or plain text. */
export function parseInferInput (parts: TaskPart[]): ChatRequest {
  const data = parts.find((p): p is { data: unknown } => 'data' in p)?.data as Record<string, unknown> | undefined
  if (data === undefined) {
    const text = parts.map(p => 'text' in p ? p.text : '').join('')
    if (text === '') throw new SkillRejection('BAD_INPUT', 'infer needs a prompt: text, or data { messages }')
    return { messages: [{ role: 'user', content: text }], maxTokens: 256 }
  }
  if (data === null || typeof data !== 'object') throw new SkillRejection('BAD_INPUT', 'infer data must be an object { messages, max_tokens? }')
  const messages = checkMessages(data.messages)
  const maxTokens = data.max_tokens === undefined ? 256 : data.max_tokens
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_TOKENS_LIMIT) throw new SkillRejection('BAD_INPUT', `max_tokens must be an integer from 1 to ${MAX_TOKENS_LIMIT}`)
  const out: ChatRequest = { messages, maxTokens }
  if (data.temperature !== undefined) {
    if (typeof data.temperature !== 'number' || !(data.temperature >= 0 && data.temperature <= 2)) throw new SkillRejection('BAD_INPUT', 'temperature must be a number from 0 to 2')
    out.temperature = data.temperature
  }
  if (data.seed !== undefined) {
    if (typeof data.seed !== 'number' || !Number.isSafeInteger(data.seed)) throw new SkillRejection('BAD_INPUT', 'seed must be an integer')
    out.seed = data.seed
  }
  if (typeof data.model === 'string') out.model = data.model
  return out
}

export function checkMessages (v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 256) throw new SkillRejection('BAD_INPUT', 'messages must be a list of 1-256 { role, content }')
  return v.map((m: unknown, i) => {
    const o = m as { role?: unknown, content?: unknown } | null
    if (o === null || typeof o !== 'object' || (o.role !== 'system' && o.role !== 'user' && o.role !== 'assistant')) throw new SkillRejection('BAD_INPUT', `messages[${i}].role must be system, user or assistant`)
    if (typeof o.content !== 'string') throw new SkillRejection('BAD_INPUT', `messages[${i}].content must be a string`)
    return { role: o.role, content: o.content }
  })
}
