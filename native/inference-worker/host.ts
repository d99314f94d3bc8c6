/**
 * The models a worker holds and the generation on them, over node-llama-cpp. Each model has one
 * context with one sequence, so requests to one model run one at a time in arrival order
 * (different models run side by side); every request starts from an empty sequence, which is
 * what makes a fixed seed give the same text each time.
 */
import { existsSync } from 'node:fs'
import { basename } from 'node:path'
import { getLlama, LlamaChat, LlamaCompletion, LlamaLogLevel, type ChatHistoryItem, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp'
import { readGgufInfo } from '../gguf/reader.ts'
import { RequestError, type ChatMessage, type HealthInfo, type InferDone, type InferRequest, type LoadedModelInfo, type LoadRequest } from './protocol.ts'

/** Context allocated when `load` names none: enough for chat, small enough for any machine. */
const DEFAULT_CONTEXT = 4096
/** Below this many parameters one thread is fastest: thread sync costs more than the matmuls. */
const SINGLE_THREAD_PARAMS = 100e6

interface Loaded {
  info: LoadedModelInfo
  model: LlamaModel
  context: LlamaContext
  sequence: LlamaContextSequence
  /** the end of this model's request chain */
  tail: Promise<unknown>
  unloading: boolean
}

export type InferResult = Omit<InferDone, 'id' | 'done'>

export class ModelHost {
  readonly #llama: Llama
  readonly #models = new Map<string, Loaded>()
  readonly #started = performance.now()
  #active = 0

  private constructor (llama: Llama) {
    this.#llama = llama
  }

  /** Binds llama.cpp from the prebuilt binaries: a GPU backend where one works, else the CPU; never compiles. */
  static async open (gpu: 'auto' | false, log: (line: string) => void): Promise<ModelHost> {
    const llama = await getLlama({
      gpu,
      build: 'never',
      skipDownload: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => log(`llama.cpp ${level}: ${message.trimEnd()}`)
    })
    return new ModelHost(llama)
  }

  get gpu (): string | false {
    return this.#llama.gpu
  }

  /** `onProgress` gets the fraction of the weights loaded, 0..1, as node-llama-cpp reports it. */
  async load (req: LoadRequest, onProgress?: (fraction: number) => void): Promise<LoadedModelInfo> {
    const name = req.model ?? basename(req.path).replace(/\.gguf$/i, '')
    const existing = this.#models.get(name)
    if (existing !== undefined) {
      if (existing.unloading) throw new RequestError('model_exists', `${name} is being unloaded; load it again once that is done`)
      if (existing.info.path === req.path) return existing.info
      throw new RequestError('model_exists', `a model named ${name} is already loaded from ${existing.info.path}; unload it first or load this one under another name`)
    }
    let gguf
    try {
      gguf = readGgufInfo(req.path)
    } catch (err) {
      throw new RequestError(existsSync(req.path) ? 'bad_model' : 'model_not_found', (err as Error).message)
    }
    const started = performance.now()
    const threads = req.threads ?? (gguf.parameterCount < SINGLE_THREAD_PARAMS ? 1 : this.#llama.cpuMathCores)
    let model: LlamaModel | undefined
    try {
      model = await this.#llama.loadModel({ modelPath: req.path, onLoadProgress: onProgress })
      const contextSize = req.contextSize ?? Math.min(gguf.contextLength ?? DEFAULT_CONTEXT, DEFAULT_CONTEXT)
      const context = await model.createContext({ contextSize, threads, sequences: 1 })
      const info: LoadedModelInfo = {
        model: name,
        path: req.path,
        name: gguf.name,
        architecture: gguf.architecture,
        parameterCount: gguf.parameterCount,
        fileType: gguf.fileType,
        sizeBytes: gguf.sizeBytes,
        contextLength: gguf.contextLength,
        contextSize: context.contextSize,
        threads,
        loadMs: Math.round((performance.now() - started) * 10) / 10
      }
      const raced = this.#models.get(name)
      if (raced !== undefined) {
        // another load of this name finished first: keep that one
        await context.dispose()
        await model.dispose()
        if (raced.info.path === req.path) return raced.info
        throw new RequestError('model_exists', `a model named ${name} was loaded from ${raced.info.path} meanwhile`)
      }
      this.#models.set(name, { info, model, context, sequence: context.getSequence(), tail: Promise.resolve(), unloading: false })
      return info
    } catch (err) {
      await model?.dispose()
      if (err instanceof RequestError) throw err
      throw new RequestError('load_failed', `cannot load ${req.path}: ${(err as Error).message}`)
    }
  }

  /** Waits for the model's running and queued requests, then frees it. */
  async unload (name: string): Promise<void> {
    const m = this.#live(name)
    m.unloading = true
    await this.#serial(m, async () => {
      this.#models.delete(name)
      await m.context.dispose()
      await m.model.dispose()
    })
  }

  list (): LoadedModelInfo[] {
    return [...this.#models.values()].filter(m => !m.unloading).map(m => m.info)
  }

  health (): HealthInfo {
    return { ok: true, pid: process.pid, gpu: this.gpu, models: this.list().length, active: this.#active, uptimeMs: Math.round(performance.now() - this.#started) }
  }

  /** Generates on `req.model`; `onText` gets each piece of text as it is decoded. */
  async infer (req: InferRequest, onText: (text: string) => void, signal: AbortSignal): Promise<InferResult> {
    const m = this.#live(req.model)
    const arrived = performance.now()
    this.#active++
    try {
      return await this.#serial(m, async () => {
        if (signal.aborted) throw canceled()
        await m.sequence.clearHistory()
        let tokens = 0
        let firstTokenMs = -1
        const options = {
          maxTokens: req.maxTokens,
          temperature: req.temperature ?? 0,
          seed: req.seed,
          signal,
          onTextChunk: onText,
          onToken: (t: Token[]) => {
            if (firstTokenMs < 0) firstTokenMs = performance.now() - arrived
            tokens += t.length
          }
        }
        try {
          const { text, stopReason } = req.prompt !== undefined
            ? await complete(m.sequence, req.prompt, options)
            : await chat(m.sequence, req.messages!, options)
          return {
            text,
            tokens,
            firstTokenMs: Math.round(Math.max(firstTokenMs, 0) * 100) / 100,
            totalMs: Math.round((performance.now() - arrived) * 100) / 100,
            stopReason: stopReason === 'eogToken' ? 'eos' : stopReason === 'maxTokens' ? 'maxTokens' : 'stop'
          }
        } catch (err) {
          if (signal.aborted) throw canceled()
          throw new RequestError('infer_failed', `generation on ${req.model} failed: ${(err as Error).message}`)
        }
      })
    } finally {
      this.#active--
    }
  }

  async close (): Promise<void> {
    for (const m of this.#models.values()) await m.model.dispose()
    this.#models.clear()
    await this.#llama.dispose()
  }

  #live (name: string): Loaded {
    const m = this.#models.get(name)
    if (m === undefined || m.unloading) throw new RequestError('model_not_loaded', `no model named ${name} is loaded`)
    return m
  }

  /** Runs `task` after the model's earlier requests, whether they succeeded or not. */
  #serial<T> (m: Loaded, task: () => Promise<T>): Promise<T> {
    const run = m.tail.then(task, task)
    m.tail = run.catch(() => {})
    return run
  }
}

const canceled = (): RequestError => new RequestError('canceled', 'the request was canceled')

interface GenerateOptions {
  maxTokens: number
  temperature: number
  seed: number | undefined
  signal: AbortSignal
  onTextChunk: (text: string) => void
  onToken: (tokens: Token[]) => void
}

async function complete (sequence: LlamaContextSequence, prompt: string, options: GenerateOptions): Promise<{ text: string, stopReason: string }> {
  const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false })
  try {
    const r = await completion.generateCompletionWithMeta(prompt, options)
    return { text: r.response, stopReason: r.metadata.stopReason }
  } finally {
    completion.dispose({ disposeSequence: false })
  }
}

async function chat (sequence: LlamaContextSequence, messages: ChatMessage[], options: GenerateOptions): Promise<{ text: string, stopReason: string }> {
  const history: ChatHistoryItem[] = messages.map(m => m.role === 'assistant'
    ? { type: 'model', response: [m.content] }
    : { type: m.role, text: m.content })
  // the model answers after the last message; a trailing assistant message is continued instead
  if (messages.at(-1)?.role !== 'assistant') history.push({ type: 'model', response: [] })
  const llamaChat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false })
  try {
    const r = await llamaChat.generateResponse(history, options)
    return { text: r.response, stopReason: r.metadata.stopReason }
  } finally {
    llamaChat.dispose({ disposeSequence: false })
  }
}
