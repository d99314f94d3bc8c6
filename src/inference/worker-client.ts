/**
 * The node's side of the inference worker (native/inference-worker): spawns it, multiplexes
 * requests over its stdio by id, streams tokens, bounds the work outstanding, and keeps it
 * alive. A worker that exits or stops answering health checks is killed and restarted, the
 * requests it was running fail with `worker_crashed`, and the models it had loaded are loaded
 * again before queued requests go out. Nothing the worker does can throw in the parent: every
 * failure ends up as the rejection of the one request it concerns.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { encodeFrame, FrameDecoder } from '../node/ipc-codec.ts'
import { InferenceError } from './backend.ts'
import type { ChatMessage, HealthInfo, InferDone, LoadedModelInfo, WorkerErrorCode } from '../../native/inference-worker/protocol.ts'

export type { ChatMessage, HealthInfo, LoadedModelInfo }
export { InferenceError }

export const WORKER_PATH = fileURLToPath(new URL('../../native/inference-worker/worker.ts', import.meta.url))

export type InferenceErrorCode = WorkerErrorCode | 'busy' | 'timeout' | 'worker_crashed' | 'worker_unavailable' | 'closed'

export interface WorkerClientOptions {
  /** default: native/inference-worker/worker.ts */
  workerPath?: string
  /** 'auto' (default): a GPU where a prebuilt backend works, else the CPU; false: CPU only */
  gpu?: 'auto' | false
  /** requests admitted and not yet answered (queued or running); one more fails with `busy`. Default 16 */
  maxPending?: number
  /** default timeout of infer, list, unload and health requests. Default 120 s */
  requestTimeoutMs?: number
  /** default timeout of a load. Default 10 min */
  loadTimeoutMs?: number
  /** infer's maxTokens when a request gives none. Default 256 */
  defaultMaxTokens?: number
  /** the most tokens one request may ask for. Default 8192 */
  maxTokensLimit?: number
  /** how often a ready worker is pinged. Default 5 s */
  healthIntervalMs?: number
  /** a ping unanswered this long means the worker hangs: it is killed and restarted. Default 10 s */
  healthTimeoutMs?: number
  /** from spawn to the worker's ready frame. Default 60 s */
  startTimeoutMs?: number
  /** the worker's stderr, line by line */
  onLog?: (line: string) => void
  /** restarts and their causes, for logs and metrics */
  onEvent?: (event: WorkerEvent) => void
}

export type WorkerEvent =
  | { type: 'ready', pid: number, gpu: string | false, restarts: number }
  | { type: 'exit', pid: number, reason: string, failed: number }
  | { type: 'reload_failed', model: string, path: string, message: string }

export interface LoadOptions {
  /** the name requests use; default: the file name without .gguf */
  model?: string
  contextSize?: number
  threads?: number
  timeoutMs?: number
  /** the fraction of the weights loaded so far, 0..1 */
  onProgress?: (fraction: number) => void
}

export interface InferInput {
  model: string
  prompt?: string
  messages?: ChatMessage[]
  maxTokens?: number
  seed?: number
  temperature?: number
}

export interface InferOptions {
  onToken?: (text: string) => void
  timeoutMs?: number
  signal?: AbortSignal
}

export type InferOutput = Omit<InferDone, 'id' | 'done'>

interface Pending {
  id: number
  frame: Record<string, unknown>
  resolve: (value: unknown) => void
  reject: (err: InferenceError) => void
  onToken?: (text: string) => void
  onProgress?: (fraction: number) => void
  timer: NodeJS.Timeout
  /** the worker generation it was written to; undefined while it waits for a ready worker */
  sentTo: number | undefined
  /** internal requests (health pings, reloads) do not count against maxPending */
  internal: boolean
  detach?: () => void
}

interface ModelRecord { path: string, contextSize: number, threads: number }

type State = 'starting' | 'ready' | 'closed'

const RESTART_DELAY_MS = 100
const RESTART_DELAY_MAX_MS = 30_000
const STDERR_TAIL_LINES = 20

export class InferenceWorkerClient {
  readonly #o: Required<Omit<WorkerClientOptions, 'onLog' | 'onEvent'>> & Pick<WorkerClientOptions, 'onLog' | 'onEvent'>
  #state: State = 'starting'
  #child: ChildProcess | undefined
  #pid: number | undefined
  /** bumped on every spawn; frames and exits of an older worker are ignored */
  #generation = 0
  #nextId = 1
  readonly #pending = new Map<number, Pending>()
  /** models to load again after a restart, by name */
  readonly #models = new Map<string, ModelRecord>()
  #restarts = 0
  #failedStarts = 0
  #healthTimer: NodeJS.Timeout | undefined
  #restartTimer: NodeJS.Timeout | undefined
  #stderrTail: string[] = []
  /** why the current worker is being killed, when the client kills it */
  #killReason: string | undefined
  #exited: Promise<void> = Promise.resolve()
  /** the model being loaded again after a restart */
  #reloading: string | undefined

  constructor (options: WorkerClientOptions = {}) {
    this.#o = {
      workerPath: WORKER_PATH,
      gpu: 'auto',
      maxPending: 16,
      requestTimeoutMs: 120_000,
      loadTimeoutMs: 600_000,
      defaultMaxTokens: 256,
      maxTokensLimit: 8192,
      healthIntervalMs: 5_000,
      healthTimeoutMs: 10_000,
      startTimeoutMs: 60_000,
      ...options
    }
  }

  /** Spawns a client's worker and waits until it is ready; throws `worker_unavailable` if it cannot start. */
  static async start (options: WorkerClientOptions = {}): Promise<InferenceWorkerClient> {
    const client = new InferenceWorkerClient(options)
    try {
      await client.#startWorker()
    } catch (err) {
      await client.close()
      throw err
    }
    return client
  }

  /** the worker's process id (undefined between a crash and the restart) */
  get pid (): number | undefined {
    return this.#pid
  }

  /** how many times the worker was restarted after a crash or hang */
  get restarts (): number {
    return this.#restarts
  }

  /** the models this client has loaded, by name, in load order (loaded again after a restart) */
  get models (): string[] {
    return [...this.#models.keys()]
  }

  /** requests admitted and not yet answered */
  get pending (): number {
    let n = 0
    for (const p of this.#pending.values()) if (!p.internal) n++
    return n
  }

  async load (path: string, options: LoadOptions = {}): Promise<LoadedModelInfo> {
    const frame = { op: 'load', path, contextSize: options.contextSize, threads: options.threads, model: options.model }
    const info = await this.#request(frame, { timeoutMs: options.timeoutMs ?? this.#o.loadTimeoutMs, onProgress: options.onProgress }) as LoadedModelInfo
    this.#models.set(info.model, { path: info.path, contextSize: info.contextSize, threads: info.threads })
    return info
  }

  async unload (model: string, timeoutMs?: number): Promise<void> {
    await this.#request({ op: 'unload', model }, { timeoutMs })
    this.#models.delete(model)
  }

  async list (timeoutMs?: number): Promise<LoadedModelInfo[]> {
    return (await this.#request({ op: 'list' }, { timeoutMs }) as { models: LoadedModelInfo[] }).models
  }

  async health (timeoutMs?: number): Promise<HealthInfo> {
    return await this.#request({ op: 'health' }, { timeoutMs }) as HealthInfo
  }

  /** Generates text; `onToken` gets each decoded piece as it comes. */
  async infer (input: InferInput, options: InferOptions = {}): Promise<InferOutput> {
    const maxTokens = input.maxTokens ?? this.#o.defaultMaxTokens
    if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > this.#o.maxTokensLimit) {
      throw new InferenceError('bad_request', `maxTokens must be an integer from 1 to ${this.#o.maxTokensLimit}, got ${maxTokens}`)
    }
    const frame = { op: 'infer', model: input.model, prompt: input.prompt, messages: input.messages, maxTokens, seed: input.seed, temperature: input.temperature }
    return await this.#request(frame, options) as InferOutput
  }

  /** infer() as an async iterator of text pieces; its return value is the final result. Breaking off cancels. */
  async * stream (input: InferInput, options: Omit<InferOptions, 'onToken'> = {}): AsyncGenerator<string, InferOutput, undefined> {
    const pieces: string[] = []
    let wake: (() => void) | undefined
    let settled: { ok: true, value: InferOutput } | { ok: false, error: unknown } | undefined
    const stop = new AbortController()
    const signal = options.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal])
    this.infer(input, { ...options, signal, onToken: t => { pieces.push(t); wake?.() } }).then(
      value => { settled = { ok: true, value } },
      error => { settled = { ok: false, error } }
    ).finally(() => wake?.())
    try {
      for (;;) {
        const piece = pieces.shift()
        if (piece !== undefined) {
          yield piece
        } else if (settled !== undefined) {
          if (settled.ok) return settled.value
          throw settled.error
        } else {
          await new Promise<void>(resolve => { wake = resolve })
          wake = undefined
        }
      }
    } finally {
      if (settled === undefined) stop.abort()
    }
  }

  /** Fails whatever is outstanding with `closed` and stops the worker. */
  async close (): Promise<void> {
    if (this.#state === 'closed') return this.#exited
    this.#state = 'closed'
    clearInterval(this.#healthTimer)
    clearTimeout(this.#restartTimer)
    for (const p of [...this.#pending.values()]) this.#settle(p, new InferenceError('closed', 'the inference client was closed'))
    const child = this.#child
    if (child !== undefined) {
      const force = setTimeout(() => child.kill('SIGKILL'), 3_000)
      child.stdin?.end() // the worker exits when its stdin closes
      await this.#exited
      clearTimeout(force)
    }
  }

  #request (fields: Record<string, unknown>, options: InferOptions & { internal?: boolean, onProgress?: (fraction: number) => void }): Promise<unknown> {
    if (this.#state === 'closed') return Promise.reject(new InferenceError('closed', 'the inference client is closed'))
    if (options.internal !== true && this.pending >= this.#o.maxPending) {
      return Promise.reject(new InferenceError('busy', `inference queue is full (${this.#o.maxPending} requests outstanding); try again later`))
    }
    if (options.signal?.aborted === true) return Promise.reject(new InferenceError('canceled', 'the request was canceled'))
    const id = this.#nextId++
    const timeoutMs = options.timeoutMs ?? this.#o.requestTimeoutMs
    return new Promise((resolve, reject) => {
      const p: Pending = {
        id,
        frame: { id, ...fields },
        resolve,
        reject,
        onToken: options.onToken,
        onProgress: options.onProgress,
        timer: setTimeout(() => this.#abandon(p, new InferenceError('timeout', `${String(fields.op)} request got no answer within ${timeoutMs} ms`)), timeoutMs),
        sentTo: undefined,
        internal: options.internal === true
      }
      this.#pending.set(id, p)
      const signal = options.signal
      if (signal !== undefined) {
        const onAbort = (): void => this.#abandon(p, new InferenceError('canceled', 'the request was canceled'))
        signal.addEventListener('abort', onAbort, { once: true })
        p.detach = () => signal.removeEventListener('abort', onAbort) // a long-lived signal must not collect listeners
      }
      // the client's own requests go to the worker it is starting; others wait until it is ready
      if (this.#state === 'ready' || (p.internal && this.#child !== undefined)) this.#send(p)
    })
  }

  /** Gives up on a request; a running infer is canceled in the worker too. */
  #abandon (p: Pending, err: InferenceError): void {
    if (!this.#pending.has(p.id)) return
    this.#settle(p, err)
    if (p.sentTo === this.#generation && p.frame.op === 'infer' && this.#state === 'ready') {
      this.#write({ id: this.#nextId++, op: 'cancel', target: p.id }) // its answer is ignored
    }
  }

  #settle (p: Pending, err: InferenceError | undefined, value?: unknown): void {
    if (!this.#pending.delete(p.id)) return
    clearTimeout(p.timer)
    p.detach?.()
    if (err === undefined) p.resolve(value)
    else p.reject(err)
  }

  #send (p: Pending): void {
    p.sentTo = this.#generation
    this.#write(p.frame)
  }

  #write (frame: unknown): void {
    try {
      this.#child?.stdin?.write(encodeFrame(frame))
    } catch (err) {
      // not serialisable or over the frame limit: only this request is at fault
      const p = this.#pending.get((frame as { id: number }).id)
      if (p !== undefined) this.#settle(p, new InferenceError('bad_request', `cannot send the request: ${(err as Error).message}`))
    }
  }

  /** Spawns a worker, waits for its ready frame, loads the recorded models, then sends what was queued. */
  async #startWorker (): Promise<void> {
    const generation = ++this.#generation
    this.#stderrTail = []
    this.#killReason = undefined
    const args = [this.#o.workerPath, ...(this.#o.gpu === false ? ['--cpu'] : [])]
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    this.#child = child
    this.#pid = child.pid
    let exited!: () => void
    this.#exited = new Promise(resolve => { exited = resolve })

    let onReady: ((frame: { pid: number, gpu: string | false }) => void) | undefined
    let onStartFailure: ((reason: string) => void) | undefined
    const ready = new Promise<{ pid: number, gpu: string | false }>((resolve, reject) => {
      onReady = resolve
      onStartFailure = reason => reject(new InferenceError('worker_unavailable', `inference worker did not start: ${reason}`))
    })
    ready.catch(() => {}) // observed below; a failure after the start is handled by the exit path

    const decoder = new FrameDecoder()
    child.stdout!.on('data', (chunk: Buffer) => {
      if (generation !== this.#generation) return
      let frames: unknown[]
      try {
        frames = decoder.push(chunk)
      } catch (err) {
        this.#kill(`inference worker wrote an unreadable frame (${(err as Error).message})`)
        return
      }
      // token frames of one request that came in the same read are passed on as one piece:
      // they are all here already, and one call costs the listener (an SSE write, say) once
      let run: { id: unknown, text: string } | undefined
      for (const frame of frames) {
        const f = frame as { event?: string, id?: unknown, token?: unknown, error?: { message?: string } }
        if (typeof f.token === 'string' && f.event === undefined) {
          if (run !== undefined && run.id === f.id) {
            run.text += f.token
            continue
          }
          if (run !== undefined) this.#onToken(run.id, run.text)
          run = { id: f.id, text: f.token }
          continue
        }
        if (run !== undefined) {
          this.#onToken(run.id, run.text)
          run = undefined
        }
        if (f.event === 'ready') onReady?.(frame as { pid: number, gpu: string | false })
        else if (f.event === 'fatal') onStartFailure?.(f.error?.message ?? 'fatal error')
        else this.#onFrame(frame)
      }
      if (run !== undefined) this.#onToken(run.id, run.text)
    })
    child.stdout!.on('error', () => {})
    child.stdin!.on('error', () => {}) // EPIPE once the worker is gone; the exit handler does the rest
    let partial = ''
    child.stderr!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        this.#stderrTail.push(line)
        if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift()
        this.#o.onLog?.(line)
      }
    })
    child.on('error', err => { this.#killReason ??= `cannot run the inference worker: ${err.message}` })
    child.on('close', (code, signal) => {
      exited()
      if (generation !== this.#generation) return
      const reason = this.#killReason ?? `inference worker exited (${signal !== null ? `signal ${signal}` : `code ${code}`})`
      onStartFailure?.(`${reason}${this.#stderrHint()}`)
      this.#onWorkerGone(generation, reason)
    })

    const startTimer = setTimeout(() => this.#kill(`inference worker did not become ready within ${this.#o.startTimeoutMs} ms`), this.#o.startTimeoutMs)
    let info: { pid: number, gpu: string | false }
    try {
      info = await ready
    } finally {
      clearTimeout(startTimer)
    }
    onStartFailure = undefined
    if (this.#state === 'closed') return
    this.#failedStarts = 0
    await this.#reloadModels(generation)
    // close() or another crash may have come during the reload
    if (generation !== this.#generation || (this.#state as State) === 'closed') return
    this.#state = 'ready'
    this.#healthTimer = setInterval(() => this.#ping(generation), this.#o.healthIntervalMs).unref()
    this.#o.onEvent?.({ type: 'ready', pid: info.pid, gpu: info.gpu, restarts: this.#restarts })
    for (const p of this.#pending.values()) if (p.sentTo === undefined) this.#send(p)
  }

  async #reloadModels (generation: number): Promise<void> {
    for (const [model, r] of [...this.#models]) {
      if (generation !== this.#generation) return
      this.#reloading = model
      try {
        await this.#request({ op: 'load', path: r.path, contextSize: r.contextSize, threads: r.threads, model }, { timeoutMs: this.#o.loadTimeoutMs, internal: true })
      } catch (err) {
        // a worker that died during the reload: #onWorkerGone has dropped this model and restarts
        const code = (err as InferenceError).code
        if (code === 'worker_crashed' || code === 'closed' || generation !== this.#generation) return
        this.#models.delete(model)
        this.#o.onEvent?.({ type: 'reload_failed', model, path: r.path, message: (err as Error).message })
      } finally {
        this.#reloading = undefined
      }
    }
  }

  #ping (generation: number): void {
    if (generation !== this.#generation || this.#state !== 'ready') return
    for (const p of this.#pending.values()) if (p.internal && p.frame.op === 'health') return // one at a time
    this.#request({ op: 'health' }, { timeoutMs: this.#o.healthTimeoutMs, internal: true }).catch((err: InferenceError) => {
      if (err.code === 'timeout' && generation === this.#generation) {
        this.#kill(`inference worker stopped answering (no health reply within ${this.#o.healthTimeoutMs} ms)`)
      }
    })
  }

  #onFrame (frame: unknown): void {
    const f = frame as { id?: unknown, token?: string, progress?: unknown, done?: boolean, result?: unknown, error?: { code?: string, message?: string } }
    const p = typeof f.id === 'number' ? this.#pending.get(f.id) : undefined
    if (p === undefined) return // the answer to a request that timed out or was canceled
    if (typeof f.token === 'string') {
      this.#onToken(f.id, f.token)
    } else if (typeof f.progress === 'number') {
      try {
        p.onProgress?.(f.progress)
      } catch {
        // as above
      }
    } else if (f.done === true) {
      const { id: _id, done: _done, ...result } = f as InferDone
      this.#settle(p, undefined, result)
    } else if (f.error !== undefined) {
      this.#settle(p, new InferenceError((f.error.code ?? 'internal') as InferenceErrorCode, f.error.message ?? 'inference worker error'))
    } else {
      this.#settle(p, undefined, f.result)
    }
  }

  #onToken (id: unknown, text: string): void {
    const p = typeof id === 'number' ? this.#pending.get(id) : undefined
    if (p === undefined) return // a request that timed out or was canceled
    try {
      p.onToken?.(text)
    } catch {
      // a throwing callback must not break the stream for other requests
    }
  }

  #kill (reason: string): void {
    this.#killReason ??= reason
    this.#child?.kill('SIGKILL')
  }

  /** The worker is gone: fail what it was running, then start another (with backoff if starts keep failing). */
  #onWorkerGone (generation: number, reason: string): void {
    clearInterval(this.#healthTimer)
    const pid = this.#pid
    this.#child = undefined
    this.#pid = undefined
    let failed = 0
    for (const p of [...this.#pending.values()]) {
      if (p.sentTo === generation) {
        if (!p.internal) failed++
        this.#settle(p, new InferenceError('worker_crashed', `${reason} while this request was in flight; the worker is being restarted`))
      }
    }
    this.#o.onEvent?.({ type: 'exit', pid: pid ?? -1, reason, failed })
    if (this.#state === 'closed') return
    const wasReady = this.#state === 'ready'
    this.#state = 'starting'
    if (this.#reloading !== undefined) {
      // a model whose load kills the worker would otherwise kill every restart
      const record = this.#models.get(this.#reloading)
      this.#models.delete(this.#reloading)
      this.#o.onEvent?.({ type: 'reload_failed', model: this.#reloading, path: record?.path ?? '', message: reason })
      this.#reloading = undefined
    }
    if (!wasReady) {
      // it died before it was ready: requests waiting for it should not wait through a crash loop
      this.#failedStarts++
      for (const p of [...this.#pending.values()]) this.#settle(p, new InferenceError('worker_unavailable', `inference worker cannot start: ${reason}${this.#stderrHint()}`))
    }
    const delay = Math.min(RESTART_DELAY_MS * 2 ** this.#failedStarts, RESTART_DELAY_MAX_MS)
    this.#restartTimer = setTimeout(() => {
      this.#restarts++
      this.#startWorker().catch(() => {}) // a failed start ends in #onWorkerGone again
    }, wasReady ? 0 : delay)
  }

  /** the worker's own account of its failure: its error line, else its last lines */
  #stderrHint (): string {
    const lines = this.#stderrTail.map(l => l.trim()).filter(l => l !== '')
    const hint = lines.find(l => /error/i.test(l)) ?? lines.slice(-3).join(' | ')
    return hint === '' ? '' : ` (worker stderr: ${hint})`
  }
}
