import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { InferenceError, type ModelEntry } from '../inference/backend.ts'
import { checkMessages, MAX_TOKENS_LIMIT, type ChatRequest, type ChatResult } from '../inference/service.ts'
import { SkillRejection } from '../a2a/types.ts'

/** What the inference routes need from the node. */
export interface InferenceApi {
  chat: (req: ChatRequest, options: { onToken?: (text: string) => void, signal?: AbortSignal }) => Promise<ChatResult>
  /** models ready to generate on this node */
  loaded: () => Promise<ModelEntry[]>
  /** GGUF files in the model store, with metadata and tier */
  models: () => Promise<unknown[]>
  /** peers offering `infer` (for /v1/models on a node without a model) */
  remoteProviders: () => string[]
  /** the tier a request needs and the budget split */
  tier: (input: { messages: ChatRequest['messages'], maxTokens: number }) => unknown
}

/** How an inference failure reaches an HTTP client. */
function statusOf (err: unknown): { status: number, code: string, message: string } {
  if (err instanceof SkillRejection) return { status: 400, code: 'invalid_request', message: err.message }
  if (err instanceof InferenceError) {
    const status = err.code === 'rate_limited' ? 429 : err.code === 'busy' ? 503 : err.code === 'no_model' ? 503 : err.code === 'timeout' ? 504 : err.code === 'canceled' ? 499 : 502
    return { status, code: err.code, message: err.message }
  }
  return { status: 500, code: 'internal_error', message: 'the node could not run this request' }
}

/** OpenAI's error body: `{ error: { message, type, param, code } }`. */
const openAiError = (status: number, code: string, message: string): { error: { message: string, type: string, param: null, code: string } } =>
  ({ error: { message, type: status === 429 ? 'rate_limit_exceeded' : status < 500 ? 'invalid_request_error' : 'server_error', param: null, code } })

interface ParsedChat {
  req: ChatRequest
  stream: boolean
  model: string | undefined
  /** `stream_options.include_usage`: a last chunk carries the token counts (as OpenAI's) */
  includeUsage: boolean
}

/** Validates an OpenAI chat-completions body; throws SkillRejection (-> 400) naming the field. */
export function parseChatBody (body: unknown): ParsedChat {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new SkillRejection('BAD_INPUT', 'the body must be a JSON object')
  const b = body as Record<string, unknown>
  const messages = checkMessages(b.messages)
  const rawMax = b.max_completion_tokens ?? b.max_tokens ?? 256
  if (typeof rawMax !== 'number' || !Number.isInteger(rawMax) || rawMax < 1 || rawMax > MAX_TOKENS_LIMIT) throw new SkillRejection('BAD_INPUT', `max_tokens must be an integer from 1 to ${MAX_TOKENS_LIMIT}`)
  const req: ChatRequest = { messages, maxTokens: rawMax }
  if (b.temperature !== undefined && b.temperature !== null) {
    if (typeof b.temperature !== 'number' || !(b.temperature >= 0 && b.temperature <= 2)) throw new SkillRejection('BAD_INPUT', 'temperature must be a number from 0 to 2')
    req.temperature = b.temperature
  }
  if (b.seed !== undefined && b.seed !== null) {
    if (typeof b.seed !== 'number' || !Number.isSafeInteger(b.seed)) throw new SkillRejection('BAD_INPUT', 'seed must be an integer')
    req.seed = b.seed
  }
  if (b.model !== undefined && typeof b.model !== 'string') throw new SkillRejection('BAD_INPUT', 'model must be a string')
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw new SkillRejection('BAD_INPUT', 'stream must be true or false')
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw new SkillRejection('BAD_INPUT', 'n must be 1')
  const so = b.stream_options
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) throw new SkillRejection('BAD_INPUT', 'stream_options must be an object')
  const includeUsage = (so as { include_usage?: unknown } | null | undefined)?.include_usage
  if (includeUsage !== undefined && includeUsage !== null && typeof includeUsage !== 'boolean') throw new SkillRejection('BAD_INPUT', 'stream_options.include_usage must be true or false')
  const model = typeof b.model === 'string' && b.model !== '' && b.model !== FEDERATION_MODEL ? b.model : undefined
  if (model !== undefined) req.model = model
  return { req, stream: b.stream === true, model, includeUsage: b.stream === true && includeUsage === true }
}

/** One server-sent event: `data: <JSON, or the string as it is>` and the blank line. */
function event (data: unknown): string {
  return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`
}

/** The model id a node without a model of its own lists: requests go to a peer that has one. */
export const FEDERATION_MODEL = 'bizra-federation'

export async function registerInferenceRoutes (app: FastifyInstance, opts: { inference: InferenceApi, authorize: (req: FastifyRequest) => Promise<void> }): Promise<void> {
  const { inference } = opts

  /** Aborts generation when the client goes away. */
  const clientGone = (req: FastifyRequest, reply: FastifyReply): AbortController => {
    const ac = new AbortController()
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort(new Error('the client went away')) })
    req.raw.on('aborted', () => ac.abort(new Error('the client went away')))
    return ac
  }

  /** Starts an event stream; returns a writer of whole events (see `event`), each call one write. */
  const sse = (reply: FastifyReply): ((events: string) => void) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    return (events: string) => { if (!reply.raw.writableEnded) reply.raw.write(events) }
  }

  app.get('/v1/models', async () => {
    const loaded = await inference.loaded().catch(() => [])
    const created = Math.floor(Date.now() / 1000)
    const data = loaded.map(m => ({ id: m.id, object: 'model', created, owned_by: 'bizra' }))
    if (data.length === 0 && inference.remoteProviders().length > 0) data.push({ id: FEDERATION_MODEL, object: 'model', created, owned_by: 'bizra-federation' })
    return { object: 'list', data }
  })

  app.post('/v1/chat/completions', { preParsing: opts.authorize }, async (req, reply) => {
    let parsed: ParsedChat
    try {
      parsed = parseChatBody(req.body)
    } catch (err) {
      const e = statusOf(err)
      return reply.status(e.status).send(openAiError(e.status, e.code, e.message))
    }
    const id = `chatcmpl-${randomUUID()}`
    const created = Math.floor(Date.now() / 1000)
    const gone = clientGone(req, reply)
    if (!parsed.stream) {
      try {
        const r = await inference.chat(parsed.req, { signal: gone.signal })
        return {
          id,
          object: 'chat.completion',
          created,
          model: r.model,
          system_fingerprint: `bizra-${r.provider.slice(-8)}`,
          choices: [{ index: 0, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: r.finishReason }],
          usage: { prompt_tokens: r.promptTokens ?? 0, completion_tokens: r.tokens, total_tokens: (r.promptTokens ?? 0) + r.tokens }
        }
      } catch (err) {
        const e = statusOf(err)
        return reply.status(e.status).send(openAiError(e.status, e.code, e.message))
      }
    }
    // One chunk per piece of text the backend hands over: a token, or the tokens that were
    // already there together (clients concatenate delta.content). With include_usage, the
    // token count comes in a last chunk with no choices, and the others carry usage: null.
    let send: ((events: string) => void) | undefined
    const usageField = parsed.includeUsage ? { usage: null } : {}
    const chunk = (model: string, delta: Record<string, unknown>, finish: string | null): unknown =>
      ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...usageField })
    const model = parsed.model ?? 'bizra'
    // a content chunk is chunk(model, { content }, null) written out by hand: one JSON.stringify of a string per piece
    const contentHead = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"choices":[{"index":0,"delta":{"content":`
    const contentTail = `},"logprobs":null,"finish_reason":null}]${parsed.includeUsage ? ',"usage":null' : ''}}\n\n`
    try {
      const r = await inference.chat(parsed.req, {
        signal: gone.signal,
        onToken: (text) => {
          const content = contentHead + JSON.stringify(text) + contentTail
          if (send === undefined) {
            send = sse(reply)
            send(event(chunk(model, { role: 'assistant', content: '' }, null)) + content)
          } else {
            send(content)
          }
        }
      })
      let last = ''
      if (send === undefined) {
        send = sse(reply)
        last += event(chunk(r.model, { role: 'assistant', content: '' }, null))
      }
      last += event(chunk(r.model, {}, r.finishReason))
      if (parsed.includeUsage) {
        last += event({ id, object: 'chat.completion.chunk', created, model: r.model, choices: [], usage: { prompt_tokens: r.promptTokens ?? 0, completion_tokens: r.tokens, total_tokens: (r.promptTokens ?? 0) + r.tokens } })
      }
      send(last + event('[DONE]'))
      reply.raw.end()
    } catch (err) {
      const e = statusOf(err)
      // before the first token the status can still say what went wrong; after it, the stream does
      if (send === undefined) return reply.status(e.status).send(openAiError(e.status, e.code, e.message))
      send(event(openAiError(e.status, e.code, e.message)))
      reply.raw.end()
    }
  })

  app.get('/api/v1/inference/models', async () => ({ loaded: await inference.loaded().catch(() => []), store: await inference.models() }))

  app.post('/api/v1/inference/tier', { preParsing: opts.authorize }, async (req, reply) => {
    const b = (req.body ?? {}) as { prompt?: unknown, messages?: unknown, max_tokens?: unknown }
    try {
      const messages = typeof b.prompt === 'string' ? [{ role: 'user' as const, content: b.prompt }] : checkMessages(b.messages)
      const maxTokens = typeof b.max_tokens === 'number' && Number.isInteger(b.max_tokens) && b.max_tokens > 0 ? b.max_tokens : 256
      return inference.tier({ messages, maxTokens })
    } catch (err) {
      const e = statusOf(err)
      return reply.status(e.status).send({ error: 'Bad Request', message: e.message })
    }
  })

  /** Our own shape: `{ prompt | messages, max_tokens?, temperature?, seed?, stream? }` -> `{ text, model, provider, tokens, … }` or SSE `{ token }` events then the result. */
  app.post('/api/v1/inference/generate', { preParsing: opts.authorize }, async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>
    let parsed: ParsedChat
    try {
      parsed = parseChatBody(typeof b.prompt === 'string' ? { ...b, prompt: undefined, messages: [{ role: 'user', content: b.prompt }] } : b)
    } catch (err) {
      const e = statusOf(err)
      return reply.status(e.status).send({ error: 'Bad Request', message: e.message })
    }
    const gone = clientGone(req, reply)
    let send: ((events: string) => void) | undefined
    try {
      const r = await inference.chat(parsed.req, {
        signal: gone.signal,
        onToken: parsed.stream ? (token) => { send ??= sse(reply); send(event({ token })) } : undefined
      })
      const result = { text: r.text, model: r.model, provider: r.provider, tokens: r.tokens, promptTokens: r.promptTokens, finishReason: r.finishReason, firstTokenMs: r.firstTokenMs }
      if (!parsed.stream) return result
      send ??= sse(reply)
      send(event({ done: true, ...result }))
      reply.raw.end()
    } catch (err) {
      const e = statusOf(err)
      if (send === undefined) return reply.status(e.status).send({ error: e.code, message: e.message })
      send(event({ error: e.code, message: e.message }))
      reply.raw.end()
    }
  })
}
