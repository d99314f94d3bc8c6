/**
 * The inference worker's stdio protocol. Frames are the node's IPC frames (4-byte little-endian
 * length + UTF-8 JSON, src/node/ipc-codec.ts): requests on the worker's stdin, replies on its
 * stdout, logs on stderr only.
 *
 * Requests carry an `id` (a number or string the caller picks) and an `op`. Each request gets
 * exactly one final frame: `{ id, result }`, `{ id, error: { code, message } }`, or for `infer`
 * `{ id, done: true, ... }` after zero or more `{ id, token }` frames. The worker opens with one
 * `{ event: 'ready', ... }` frame, or `{ event: 'fatal', error }` before it exits.
 */

export type RequestId = number | string

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

export interface LoadRequest { id: RequestId, op: 'load', path: string, contextSize?: number, threads?: number, model?: string }
export interface UnloadRequest { id: RequestId, op: 'unload', model: string }
export interface ListRequest { id: RequestId, op: 'list' }
export interface HealthRequest { id: RequestId, op: 'health' }
export interface InferRequest {
  id: RequestId
  op: 'infer'
  model: string
  /** a plain completion of this text, or */
  prompt?: string
  /** a chat, formatted with the model's chat template */
  messages?: ChatMessage[]
  maxTokens: number
  /** sampling seed; with the same seed, prompt and settings the text is the same */
  seed?: number
  /** 0 (the default) is greedy decoding */
  temperature?: number
}
/** Stops the running or queued `infer` whose id is `target`; it ends with error code `canceled`. */
export interface CancelRequest { id: RequestId, op: 'cancel', target: RequestId }

export type WorkerRequest = LoadRequest | UnloadRequest | ListRequest | HealthRequest | InferRequest | CancelRequest
export type WorkerOp = WorkerRequest['op']

/** A loaded model, as `load` and `list` report it. */
export interface LoadedModelInfo {
  /** the name requests use: `load`'s `model`, else the file name without `.gguf` */
  model: string
  path: string
  name: string | undefined
  architecture: string
  parameterCount: number
  fileType: string
  sizeBytes: number
  /** the context the model was trained for */
  contextLength: number | undefined
  /** the context this worker allocated */
  contextSize: number
  threads: number
  loadMs: number
}

export interface HealthInfo {
  ok: true
  pid: number
  /** false on CPU, else the backend: cuda, vulkan, metal */
  gpu: string | false
  models: number
  /** infer requests running or queued */
  active: number
  uptimeMs: number
}

export interface InferDone {
  id: RequestId
  done: true
  text: string
  /** generated tokens */
  tokens: number
  /** from the request's arrival to its first generated token */
  firstTokenMs: number
  totalMs: number
  stopReason: 'eos' | 'maxTokens' | 'stop'
}

/**
 * Generated text as it comes: the first token's text at once, then at most one frame every
 * STREAM_INTERVAL_MS with the text generated meanwhile. The frames of a request, joined, are
 * its text; the number of tokens is the done frame's `tokens`.
 */
export interface TokenFrame { id: RequestId, token: string }

/** the most often a worker writes a request's text after its first token (ms) */
export const STREAM_INTERVAL_MS = 8

export type WorkerErrorCode =
  | 'bad_request' | 'unknown_op' | 'model_not_found' | 'bad_model' | 'model_not_loaded' | 'model_exists'
  | 'load_failed' | 'infer_failed' | 'canceled' | 'internal'

export interface ErrorFrame { id: RequestId | null, error: { code: WorkerErrorCode, message: string } }

export interface ReadyFrame { event: 'ready', pid: number, gpu: string | false }
export interface FatalFrame { event: 'fatal', error: { code: 'init_failed', message: string } }

/** An invalid request: answered with `bad_request` (or `unknown_op`), the worker carries on. */
export class RequestError extends Error {
  readonly code: WorkerErrorCode
  constructor (code: WorkerErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

const OPS: ReadonlySet<string> = new Set(['load', 'unload', 'list', 'health', 'infer', 'cancel'])
const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant'])

/** The id of a frame, if it has a usable one. */
export function requestId (frame: unknown): RequestId | null {
  const id = (frame as { id?: unknown } | null)?.id
  return (typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id !== '') ? id : null
}

/** Checks a decoded frame's shape; throws RequestError naming the first problem. */
export function parseRequest (frame: unknown): WorkerRequest {
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) throw new RequestError('bad_request', 'a request must be a JSON object')
  const r = frame as Record<string, unknown>
  if (requestId(r) === null) throw new RequestError('bad_request', 'id must be a finite number or a non-empty string')
  if (typeof r.op !== 'string' || !OPS.has(r.op)) throw new RequestError('unknown_op', `unknown op ${JSON.stringify(r.op)} (expected one of ${[...OPS].join(', ')})`)
  switch (r.op) {
    case 'load':
      text(r, 'path')
      optionalInt(r, 'contextSize', 1, 1 << 24)
      optionalInt(r, 'threads', 1, 1024)
      if (r.model !== undefined) text(r, 'model')
      break
    case 'unload':
      text(r, 'model')
      break
    case 'infer':
      text(r, 'model')
      if ((r.prompt === undefined) === (r.messages === undefined)) throw new RequestError('bad_request', 'infer needs exactly one of prompt or messages')
      if (r.prompt !== undefined && typeof r.prompt !== 'string') throw new RequestError('bad_request', 'prompt must be a string')
      if (r.messages !== undefined) messages(r.messages)
      optionalInt(r, 'maxTokens', 1, 1 << 20)
      if (r.maxTokens === undefined) throw new RequestError('bad_request', 'maxTokens is required')
      optionalInt(r, 'seed', 0, 0xffffffff)
      if (r.temperature !== undefined && (typeof r.temperature !== 'number' || !(r.temperature >= 0 && r.temperature <= 10))) throw new RequestError('bad_request', 'temperature must be a number from 0 to 10')
      break
    case 'cancel':
      if (requestId({ id: r.target }) === null) throw new RequestError('bad_request', 'target must be the id of a request')
      break
  }
  return r as unknown as WorkerRequest
}

function text (r: Record<string, unknown>, key: string): void {
  if (typeof r[key] !== 'string' || r[key] === '') throw new RequestError('bad_request', `${key} must be a non-empty string`)
}

function optionalInt (r: Record<string, unknown>, key: string, min: number, max: number): void {
  const v = r[key]
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) throw new RequestError('bad_request', `${key} must be an integer from ${min} to ${max}`)
}

function messages (v: unknown): void {
  if (!Array.isArray(v) || v.length === 0) throw new RequestError('bad_request', 'messages must be a non-empty array')
  for (const m of v) {
    if (m === null || typeof m !== 'object' || !ROLES.has((m as ChatMessage).role) || typeof (m as ChatMessage).content !== 'string') {
      throw new RequestError('bad_request', 'each message must be { role: system|user|assistant, content: string }')
    }
  }
}
