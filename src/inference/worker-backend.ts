import { InferenceWorkerClient, type LoadedModelInfo, type WorkerClientOptions } from './worker-client.ts'
import { InferenceError, type GenerateRequest, type GenerateResult, type InferenceBackend, type ModelEntry } from './backend.ts'
import { tierForParameters } from './tiers.ts'

/**
 * The node-llama-cpp worker process as an InferenceBackend. The process is started on the
 * first load, so a node that never loads a model never runs one.
 */
export class WorkerBackend implements InferenceBackend {
  readonly kind = 'worker' as const
  readonly #options: WorkerClientOptions
  #client: Promise<InferenceWorkerClient> | undefined
  /** #client once it has started */
  #started: InferenceWorkerClient | undefined
  #closed = false

  constructor (options: WorkerClientOptions = {}) {
    this.#options = options
  }

  async loaded (): Promise<ModelEntry[]> {
    if (this.#client === undefined) return []
    return (await (await this.#client).list()).map(entryOf)
  }

  async load (path: string, onProgress?: (fraction: number) => void): Promise<ModelEntry> {
    return entryOf(await this.#call(async c => c.load(path, { onProgress })))
  }

  async unload (id: string): Promise<void> {
    if (this.#client === undefined) throw new InferenceError('model_not_loaded', `no model ${id} is loaded`)
    await this.#call(async c => c.unload(id))
  }

  /** from the client's record of its loads: no round trip to the worker */
  hasModel (): boolean {
    return this.#client !== undefined && this.#started !== undefined && this.#started.models.length > 0
  }

  async generate (req: GenerateRequest): Promise<GenerateResult> {
    if (this.#client === undefined) throw new InferenceError('no_model', 'no model is loaded on this node')
    const client = await this.#client
    const model = req.model ?? client.models[0] ?? (await client.list())[0]?.model
    if (model === undefined) throw new InferenceError('no_model', 'no model is loaded on this node')
    const r = await this.#call(async c => c.infer(
      { model, messages: req.messages, maxTokens: req.maxTokens, seed: req.seed, temperature: req.temperature },
      { onToken: req.onToken, signal: req.signal }
    ))
    return { model, text: r.text, tokens: r.tokens, promptTokens: null, finishReason: r.stopReason === 'maxTokens' ? 'length' : 'stop', firstTokenMs: r.tokens > 0 ? r.firstTokenMs : null }
  }

  async close (): Promise<void> {
    this.#closed = true
    const c = this.#client
    this.#client = undefined
    this.#started = undefined
    if (c !== undefined) await (await c.catch(() => undefined))?.close()
  }

  async #call<T> (fn: (c: InferenceWorkerClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw new InferenceError('closed', 'the inference backend is closed')
    this.#client ??= InferenceWorkerClient.start(this.#options)
    let client: InferenceWorkerClient
    try {
      client = await this.#client
      if (!this.#closed) this.#started = client
    } catch (err) {
      this.#client = undefined
      throw new InferenceError('worker_unavailable', `the inference worker did not start: ${(err as Error).message}`)
    }
    return fn(client)
  }
}

function entryOf (m: LoadedModelInfo): ModelEntry {
  return { id: m.model, path: m.path, parameters: m.parameterCount, tier: tierForParameters(m.parameterCount), sizeBytes: m.sizeBytes, architecture: m.architecture, quantization: m.fileType }
}
