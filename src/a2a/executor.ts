import type { Stream } from '@libp2p/interface'
import { createEnvelope, envelopeDigest, verifyEnvelope, type Envelope } from '../pci/envelope.ts'
import { ReplayCache } from '../pci/replay.ts'
import { RejectCode } from '../pci/codes.ts'
import { checkGates } from '../governance/gates.ts'
import type { Constitution } from '../governance/constitution.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import { partsProblem, taskCardProblem } from './cards.ts'
import type { SkillRegistry } from './skills.ts'
import { SkillRejection, type TaskCard, type TaskPart, type TaskState } from './types.ts'
import { decodeFrame, ENVELOPE_TYPES, MAX_A2A_FRAME, TaskErrorCode, type ExecutorFrame, type TaskResult } from './wire.ts'
import { FrameReader, FrameWriter } from './frames.ts'

/** Where the executor proves what it did: the node's Merkle session DAG (see task-log.ts). */
export interface TaskLog {
  /** records a completed task and returns the proof from its first DAG node to the head */
  recordCompleted (entry: { taskDigest: string, card: TaskCard, parts: TaskPart[] }): Promise<unknown>
}

export interface ExecutorInit {
  identity: NodeIdentity
  constitution: Constitution
  skills: SkillRegistry
  log: TaskLog
  /** tasks run at once; past it a task is rejected BUSY so the requester fails over (default 256) */
  maxConcurrent?: number
  now?: () => number
  /** this node's signed agent card (`of` undefined), or the one it holds of peer `of`, for streams that ask */
  cardEnvelope?: (of?: string) => Envelope | undefined
  /** every task that reaches a terminal state here */
  onFinished?: (e: { taskId: string, requester: string, skill: string, state: TaskState, error?: TaskResult['error'], ms: number }) => void
}

export interface ExecuteIo {
  /** aborts when the requester cancels or goes away */
  signal: AbortSignal
  onStatus: (frame: Extract<ExecutorFrame, { kind: 'status' }>) => void
}

/** a stream with no task running is closed after this long */
const STREAM_IDLE_MS = 60_000
/**
 * `working` is reported only for a task still running after this long: a quick task goes
 * straight to its result, which saves a frame per task and tells the requester nothing less.
 */
export const WORKING_REPORT_DELAY_MS = 10

/**
 * Runs tasks other nodes (or this one) send: verifies the envelope, the task card and the
 * gate chain, runs the skill under the task's deadline and cancellation, records a completed
 * task in the session DAG and answers with a signed result envelope carrying the proof.
 * Nothing runs for a task that fails a check.
 */
export class TaskExecutor {
  readonly #init: ExecutorInit
  readonly #replay = new ReplayCache(100_000)
  readonly #maxConcurrent: number
  readonly #now: () => number
  readonly #stopped = new AbortController()
  #active = 0

  constructor (init: ExecutorInit) {
    this.#init = init
    this.#maxConcurrent = init.maxConcurrent ?? 256
    this.#now = init.now ?? Date.now
  }

  /** tasks running now (reported as load in heartbeats) */
  get active (): number {
    return this.#active
  }

  /** aborts every running task (node stop) */
  stop (): void {
    this.#stopped.abort()
  }

  /** Executes one task envelope; always resolves with a signed result envelope. */
  async execute (input: unknown, io: ExecuteIo): Promise<Envelope<TaskResult>> {
    const started = this.#now()
    const verified = verifyEnvelope(input, { constitution: this.#init.constitution, replay: this.#replay, now: started })
    const claimedId = typeof (input as { payload?: { id?: unknown } })?.payload?.id === 'string' ? (input as { payload: { id: string } }).payload.id.slice(0, 128) : ''
    if (!verified.ok) return this.#finish({ taskId: claimedId, state: 'rejected', error: { code: verified.code, message: verified.reason } }, null, started)
    const envelope = verified.envelope
    if (envelope.type !== ENVELOPE_TYPES.task) {
      return this.#finish({ taskId: claimedId, state: 'rejected', error: { code: RejectCode.MALFORMED_ENVELOPE, message: `expected an ${ENVELOPE_TYPES.task} envelope, got ${envelope.type}` } }, null, started)
    }
    const problem = taskCardProblem(envelope.payload)
    if (problem !== undefined) return this.#finish({ taskId: claimedId, state: 'rejected', error: { code: RejectCode.MALFORMED_ENVELOPE, message: `malformed task card: ${problem}` } }, null, started)
    const card = envelope.payload as TaskCard
    if (card.requester !== envelope.sender) {
      return this.#finish({ taskId: card.id, state: 'rejected', error: { code: RejectCode.MALFORMED_ENVELOPE, message: 'task card requester is not the envelope sender' } }, card, started)
    }
    if (card.deadline <= started) return this.#finish({ taskId: card.id, state: 'failed', error: { code: TaskErrorCode.DEADLINE, message: 'deadline passed before the task started' } }, card, started)
    const skill = this.#init.skills.get(card.skill)
    if (skill === undefined) {
      return this.#finish({ taskId: card.id, state: 'rejected', error: { code: TaskErrorCode.UNKNOWN_SKILL, message: `this node has no skill "${card.skill}"` } }, card, started)
    }
    const gates = checkGates({ tool: card.skill, input: card.message, ihsan: envelope.ihsan, snr: envelope.snr }, this.#init.constitution)
    if (!gates.passed) {
      return this.#finish({ taskId: card.id, state: 'rejected', error: { code: gates.code ?? 'GATE', message: `blocked by the ${gates.gate} gate (${gates.code}): ${gates.reason ?? ''}`.trim() } }, card, started)
    }
    if (this.#active >= this.#maxConcurrent) {
      return this.#finish({ taskId: card.id, state: 'rejected', error: { code: TaskErrorCode.BUSY, message: `busy: ${this.#active} tasks running` } }, card, started)
    }

    this.#active++
    try {
      return await this.#run(card, Buffer.from(verified.digest).toString('hex'), skill.handler, io, started)
    } finally {
      this.#active--
    }
  }

  async #run (card: TaskCard, taskDigest: string, handler: NonNullable<ReturnType<SkillRegistry['get']>>['handler'], io: ExecuteIo, started: number): Promise<Envelope<TaskResult>> {
    // one controller, one timer: why it aborted decides the task's final state
    const ctl = new AbortController()
    let why: 'deadline' | 'stopped' | 'canceled' | undefined
    const stop = (reason: typeof why): void => {
      if (why !== undefined) return
      why = reason
      ctl.abort(new Error(reason === 'deadline' ? 'deadline exceeded' : reason === 'stopped' ? 'the node is stopping' : 'canceled'))
    }
    const onCancel = (): void => stop('canceled')
    const onStop = (): void => stop('stopped')
    const timer = setTimeout(() => stop('deadline'), Math.max(0, card.deadline - this.#now()))
    if (io.signal.aborted) onCancel()
    io.signal.addEventListener('abort', onCancel, { once: true })
    this.#stopped.signal.addEventListener('abort', onStop, { once: true })
    let reported = false
    const report = (frame: Extract<ExecutorFrame, { kind: 'status' }>): void => {
      reported = true
      io.onStatus(frame)
    }
    const working = setTimeout(() => { if (!reported) report({ kind: 'status', state: 'working' }) }, WORKING_REPORT_DELAY_MS)
    try {
      return await this.#runSkill(card, taskDigest, handler, ctl.signal, () => why, report, started)
    } finally {
      clearTimeout(working)
      clearTimeout(timer)
      io.signal.removeEventListener('abort', onCancel)
      this.#stopped.signal.removeEventListener('abort', onStop)
    }
  }

  async #runSkill (card: TaskCard, taskDigest: string, handler: NonNullable<ReturnType<SkillRegistry['get']>>['handler'], signal: AbortSignal, why: () => 'deadline' | 'stopped' | 'canceled' | undefined, report: ExecuteIo['onStatus'], started: number): Promise<Envelope<TaskResult>> {
    const stopped = new Promise<never>((_resolve, reject) => {
      const onAbort = (): void => reject(signal.reason)
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    })
    stopped.catch(() => {})
    let parts: TaskPart[]
    try {
      const out = await Promise.race([
        handler(structuredClone(card.message), {
          taskId: card.id,
          requester: card.requester,
          deadline: card.deadline,
          signal,
          progress: (p) => { if (!signal.aborted && partsProblem(p) === undefined) report({ kind: 'status', state: 'working', progress: p }) }
        }),
        stopped
      ])
      parts = out?.parts
    } catch (err) {
      if (why() === 'deadline') return this.#finish({ taskId: card.id, state: 'failed', error: { code: TaskErrorCode.DEADLINE, message: `deadline exceeded after ${this.#now() - started} ms` } }, card, started)
      if (why() === 'stopped') return this.#finish({ taskId: card.id, state: 'failed', error: { code: TaskErrorCode.STOPPED, message: 'the executing node is stopping' } }, card, started)
      if (why() === 'canceled') return this.#finish({ taskId: card.id, state: 'canceled', error: { code: TaskErrorCode.CANCELED, message: 'canceled by the requester' } }, card, started)
      if (err instanceof SkillRejection) return this.#finish({ taskId: card.id, state: 'rejected', error: { code: err.code, message: err.message } }, card, started)
      return this.#finish({ taskId: card.id, state: 'failed', error: { code: TaskErrorCode.SKILL_ERROR, message: `skill ${card.skill} failed: ${(err as Error)?.message ?? String(err)}` } }, card, started)
    }
    const bad = partsProblem(parts)
    if (bad !== undefined) return this.#finish({ taskId: card.id, state: 'failed', error: { code: TaskErrorCode.BAD_OUTPUT, message: `skill ${card.skill} returned bad output: ${bad}` } }, card, started)
    let proof: unknown
    try {
      proof = await this.#init.log.recordCompleted({ taskDigest, card, parts })
    } catch (err) {
      return this.#finish({ taskId: card.id, state: 'failed', error: { code: TaskErrorCode.LOG_ERROR, message: `could not record the task: ${(err as Error).message}` } }, card, started)
    }
    return this.#finish({ taskId: card.id, state: 'completed', parts, proof }, card, started)
  }

  #finish (result: TaskResult, card: TaskCard | null, started: number): Envelope<TaskResult> {
    this.#init.onFinished?.({ taskId: result.taskId, requester: card?.requester ?? '', skill: card?.skill ?? '', state: result.state, error: result.error, ms: this.#now() - started })
    return createEnvelope(this.#init.identity, { type: ENVELOPE_TYPES.result, payload: result, agent: 'SOVEREIGN', ihsan: 1, snr: 1, now: this.#now() })
  }

  /** Serves one `/bizra/a2a/1.0.0` stream: any number of tasks, each answered as it finishes (see wire.ts). */
  readonly handleStream = (stream: Stream): void => {
    const reader = new FrameReader(MAX_A2A_FRAME)
    const running = new Map<number, AbortController>()
    let remoteDone = false
    let idle: NodeJS.Timeout | undefined
    const armIdle = (): void => {
      if (idle !== undefined) clearTimeout(idle)
      idle = running.size === 0 ? setTimeout(close, STREAM_IDLE_MS) : undefined
      idle?.unref()
    }
    // frames ready in the same turn (results of tasks that finished together) leave in one write;
    // if the stream is going away they are lost, and its 'close' cancels what runs
    const writer = new FrameWriter(bytes => { if (stream.writeStatus === 'writable') stream.send(bytes) })
    const send = (value: ExecutorFrame): void => {
      if (stream.writeStatus !== 'writable') return
      try {
        writer.write(JSON.stringify(value))
      } catch {
        // a write past the flush threshold went out at once and the stream refused it
      }
    }
    const close = (): void => {
      try {
        writer.flush()
      } catch {}
      stream.close().catch(() => {})
    }
    const onFrame = (f: { kind?: unknown, n?: unknown, envelope?: unknown } | null): void => {
      const n = typeof f?.n === 'number' && Number.isSafeInteger(f.n) ? f.n : undefined
      if (f?.kind === 'task' && n !== undefined && !running.has(n)) {
        const cancel = new AbortController()
        running.set(n, cancel)
        armIdle()
        void this.execute(f.envelope, { signal: cancel.signal, onStatus: s => send({ ...s, n }) }).then(envelope => {
          running.delete(n)
          armIdle()
          send({ kind: 'result', n, envelope })
          if (remoteDone && running.size === 0) close()
        })
      } else if (f?.kind === 'cancel' && n !== undefined) {
        running.get(n)?.abort()
      } else if (f?.kind === 'card' && this.#init.cardEnvelope !== undefined) {
        const of = (f as { of?: unknown }).of
        const envelope = typeof of === 'string' || of === undefined ? this.#init.cardEnvelope(of) : undefined
        if (envelope !== undefined) send({ kind: 'card', envelope })
        else send({ kind: 'error', code: 'NO_CARD', message: typeof of === 'string' ? `no card held of ${of.slice(0, 64)}` : 'of must be a PeerId string' })
      } else {
        send({ kind: 'error', ...(n !== undefined ? { n } : {}), code: RejectCode.MALFORMED_ENVELOPE, message: 'expected a task, cancel or card frame' })
      }
    }
    stream.addEventListener('message', (e) => {
      let frames: Uint8Array[]
      try {
        frames = reader.push(e.data)
      } catch (err) {
        send({ kind: 'error', code: RejectCode.MALFORMED_ENVELOPE, message: (err as Error).message })
        stream.abort(err as Error)
        return
      }
      for (const bytes of frames) {
        let f: unknown
        try {
          f = decodeFrame({ subarray: () => bytes })
        } catch {
          send({ kind: 'error', code: RejectCode.MALFORMED_ENVELOPE, message: 'frame is not UTF-8 JSON' })
          continue
        }
        onFrame(f as Parameters<typeof onFrame>[0])
      }
    })
    // the requester went away or closed: nobody is left to take the results
    stream.addEventListener('close', () => {
      writer.discard()
      if (idle !== undefined) clearTimeout(idle)
      for (const c of running.values()) c.abort()
    })
    // the requester will send nothing more: stop its tasks, answer them, then close
    stream.addEventListener('remoteCloseWrite', () => {
      remoteDone = true
      for (const c of running.values()) c.abort()
      if (running.size === 0) close()
    })
    armIdle()
  }
}

/** The hex PCI digest of a task envelope: what names the task in the executor's DAG. */
export function taskDigestOf (envelope: Envelope): string {
  // the digest covers every field but sig, which canonicalEnvelopeBody leaves out
  return Buffer.from(envelopeDigest(envelope)).toString('hex')
}
