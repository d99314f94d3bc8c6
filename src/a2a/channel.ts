import type { Stream } from '@libp2p/interface'
import { FrameReader, FrameWriter } from './frames.ts'
import { decodeFrame, MAX_A2A_FRAME, type ExecutorFrame } from './wire.ts'

export interface RunIo {
  onStatus: (frame: Extract<ExecutorFrame, { kind: 'status' }>) => void
  /** the requester canceled: the executor is told, and its answer awaited a little while */
  cancel: AbortSignal
  /** give up waiting (deadline, node stop) */
  signal: AbortSignal
}

/** How a router sends a task envelope to a peer and gets the executor's result envelope back. */
export interface TaskTransport {
  run: (peerId: string, envelope: unknown, io: RunIo) => Promise<unknown>
}

/** how long an executor may take to confirm a cancel */
const CANCEL_GRACE_MS = 5_000
/** a channel with nothing in flight is closed after this long */
const IDLE_MS = 30_000
const OPEN_TIMEOUT_MS = 10_000

interface Pending {
  resolve: (envelope: unknown) => void
  reject: (err: Error) => void
  onStatus: RunIo['onStatus']
}

/**
 * One long-lived `/bizra/a2a/1.0.0` stream from this node to one executor, carrying any number
 * of tasks at once: each task frame has a channel-local number `n` that the executor's status
 * and result frames echo. Opening a libp2p stream costs a protocol negotiation round trip and a
 * peer-store update; a channel pays it once per peer, not once per task. If the stream dies
 * (the executor's node crashed, the connection dropped) every task on it fails at once, and the
 * router fails each over to its next provider.
 */
export class TaskChannel {
  readonly #stream: Stream
  readonly #reader = new FrameReader(MAX_A2A_FRAME)
  readonly #writer: FrameWriter
  readonly #pending = new Map<number, Pending>()
  readonly #onGone: () => void
  #next = 0
  #closed: Error | undefined
  #idle: NodeJS.Timeout | undefined

  constructor (stream: Stream, onGone: () => void) {
    this.#stream = stream
    this.#onGone = onGone
    // send() buffers past the high-water mark; the executor's concurrency bound keeps that finite
    this.#writer = new FrameWriter(bytes => { stream.send(bytes) }, err => this.#fail(err))
    stream.addEventListener('message', (e) => this.#onMessage(e.data))
    stream.addEventListener('close', (e) => this.#fail(e.error ?? new Error('the executor closed the stream')))
    stream.addEventListener('remoteCloseWrite', () => {
      this.#fail(new Error('the executor closed the stream'))
      stream.close().catch(() => {})
    })
    this.#armIdle()
  }

  get closed (): boolean {
    return this.#closed !== undefined
  }

  async run (envelope: unknown, io: RunIo): Promise<unknown> {
    if (this.#closed !== undefined) throw this.#closed
    const n = ++this.#next
    if (this.#idle !== undefined) clearTimeout(this.#idle)
    this.#idle = undefined
    return new Promise<unknown>((resolve, reject) => {
      let grace: NodeJS.Timeout | undefined
      const cleanup = (): void => {
        this.#pending.delete(n)
        io.cancel.removeEventListener('abort', onCancel)
        io.signal.removeEventListener('abort', onGiveUp)
        if (grace !== undefined) clearTimeout(grace)
        if (this.#pending.size === 0) this.#armIdle()
      }
      const onCancel = (): void => {
        this.#send({ kind: 'cancel', n })
        grace = setTimeout(() => { cleanup(); reject(new Error('the executor did not confirm the cancel')) }, CANCEL_GRACE_MS)
        grace.unref()
      }
      const onGiveUp = (): void => {
        this.#send({ kind: 'cancel', n })
        cleanup()
        reject(io.signal.reason instanceof Error ? io.signal.reason : new Error('aborted'))
      }
      this.#pending.set(n, {
        resolve: (v) => { cleanup(); resolve(v) },
        reject: (err) => { cleanup(); reject(err) },
        onStatus: io.onStatus
      })
      if (io.signal.aborted) return onGiveUp()
      io.signal.addEventListener('abort', onGiveUp, { once: true })
      this.#send({ kind: 'task', n, envelope })
      if (io.cancel.aborted) onCancel()
      else io.cancel.addEventListener('abort', onCancel, { once: true })
    })
  }

  close (): void {
    try {
      this.#writer.flush() // frames queued this turn (a cancel) go out before the close
    } catch {}
    this.#fail(new Error('channel closed'))
    this.#stream.close().catch(() => this.#stream.abort(new Error('channel closed')))
  }

  /** Queues a frame; frames queued in one turn of the event loop leave in one stream write (see FrameWriter). */
  #send (value: unknown): void {
    if (this.#closed !== undefined) return
    try {
      this.#writer.write(JSON.stringify(value))
    } catch (err) {
      this.#fail(err as Error)
    }
  }

  #onMessage (data: Parameters<FrameReader['push']>[0]): void {
    let frames: Uint8Array[]
    try {
      frames = this.#reader.push(data)
    } catch (err) {
      this.#stream.abort(err as Error)
      return this.#fail(err as Error)
    }
    for (const bytes of frames) {
      let f: { kind?: unknown, n?: unknown, state?: unknown, progress?: unknown, envelope?: unknown, message?: unknown }
      try {
        f = decodeFrame({ subarray: () => bytes }) as typeof f
      } catch {
        continue // an executor that speaks garbage loses only that frame; its tasks time out or fail over
      }
      const p = typeof f?.n === 'number' ? this.#pending.get(f.n) : undefined
      if (p === undefined) continue
      if (f.kind === 'status') p.onStatus(f as Extract<ExecutorFrame, { kind: 'status' }>)
      else if (f.kind === 'result') p.resolve(f.envelope)
      else if (f.kind === 'error') p.reject(new Error(`executor refused the frame: ${String(f.message)}`))
    }
  }

  #fail (err: Error): void {
    if (this.#closed !== undefined) return
    this.#closed = err
    this.#writer.discard()
    if (this.#idle !== undefined) clearTimeout(this.#idle)
    for (const p of [...this.#pending.values()]) p.reject(err)
    this.#pending.clear()
    this.#onGone()
  }

  #armIdle (): void {
    if (this.#closed !== undefined || this.#idle !== undefined) return
    this.#idle = setTimeout(() => this.close(), IDLE_MS)
    this.#idle.unref()
  }
}

/** A TaskChannel per peer, opened on first use and reopened after it dies. */
export class ChannelPool implements TaskTransport {
  readonly #open: (peerId: string, signal: AbortSignal) => Promise<Stream>
  readonly #channels = new Map<string, Promise<TaskChannel>>()

  constructor (open: (peerId: string, signal: AbortSignal) => Promise<Stream>) {
    this.#open = open
  }

  async run (peerId: string, envelope: unknown, io: RunIo): Promise<unknown> {
    const channel = await this.#channel(peerId)
    return channel.run(envelope, io)
  }

  closeAll (): void {
    for (const c of this.#channels.values()) c.then(ch => ch.close(), () => {})
    this.#channels.clear()
  }

  async #channel (peerId: string): Promise<TaskChannel> {
    const existing = this.#channels.get(peerId)
    if (existing !== undefined) {
      const ch = await existing.catch(() => undefined)
      if (ch !== undefined && !ch.closed) return ch
      if (this.#channels.get(peerId) === existing) this.#channels.delete(peerId)
      else return this.#channel(peerId)
    }
    // one open serves every task waiting for it, so none of their signals may cut it short
    const opening = this.#open(peerId, AbortSignal.timeout(OPEN_TIMEOUT_MS)).then(stream => {
      const ch: TaskChannel = new TaskChannel(stream, () => {
        if (this.#channels.get(peerId) === opening) this.#channels.delete(peerId)
      })
      return ch
    })
    this.#channels.set(peerId, opening)
    opening.catch(() => { if (this.#channels.get(peerId) === opening) this.#channels.delete(peerId) })
    return opening
  }
}
