/**
 * What the node needs from something that runs a model: the node-llama-cpp worker process or
 * any OpenAI-compatible HTTP server (Ollama, LM Studio, another BIZRA node).
 */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

export interface GenerateRequest {
  /** model id as the backend lists it; default: the first loaded */
  model?: string
  messages: ChatMessage[]
  maxTokens: number
  temperature?: number
  seed?: number
  /** called with each piece of text as it is generated */
  onToken?: (text: string) => void
  signal?: AbortSignal
}

export interface GenerateResult {
  model: string
  text: string
  /** tokens generated */
  tokens: number
  /** tokens in the prompt, when the backend says */
  promptTokens: number | null
  finishReason: 'stop' | 'length'
  /** ms from the request to the first token, null when no token came */
  firstTokenMs: number | null
}

export interface ModelEntry {
  id: string
  /** the GGUF file, for models the worker loaded */
  path?: string
  parameters?: number
  tier?: string
  sizeBytes?: number
  architecture?: string
  quantization?: string
}

/** A failure the caller can act on: `busy`, `timeout`, `worker_crashed`, `no_model`, `backend_error`, … (the worker's codes: InferenceErrorCode in worker-client.ts) */
export class InferenceError extends Error {
  static override readonly name: string = 'InferenceError'
  override readonly name: string = 'InferenceError'
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

export interface InferenceBackend {
  readonly kind: 'worker' | 'http'
  /** models ready to generate */
  loaded (): Promise<ModelEntry[]>
  /**
   * Whether the backend holds a model, answered from what it knows without asking the model
   * runner (no round trip on every request); undefined when it cannot tell without asking.
   */
  hasModel?: () => boolean | undefined
  /** loads a GGUF file (worker only); `onProgress` gets 0..1 */
  load?: (path: string, onProgress?: (fraction: number) => void) => Promise<ModelEntry>
  unload?: (id: string) => Promise<void>
  generate (request: GenerateRequest): Promise<GenerateResult>
  close (): Promise<void>
}
