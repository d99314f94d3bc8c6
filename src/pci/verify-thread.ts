import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { Constitution } from '../governance/constitution.ts'
import { RejectCode } from './codes.ts'
import { verifyEnvelope } from './envelope.ts'

/** The worker's verdict on one envelope: everything verifyEnvelope checks but the replay cache. */
export type ThreadVerdict = { ok: true } | { ok: false, code: RejectCode, reason: string }

/** To the worker: envelopes (UTF-8 JSON) back to back, all checked against one constitution. */
export interface VerifyBatch {
  id: number
  constitution: Constitution
  bytes: ArrayBuffer
  /** envelope i is bytes[ends[i - 1] ?? 0 .. ends[i]) */
  ends: ArrayBuffer
  /** the time (epoch ms) each envelope's TTL is checked against */
  nows: ArrayBuffer
  /**
   * one byte per envelope (shared memory), 0 until the worker has checked it, then
   * VERDICT_PASSED or VERDICT_FAILED: the caller takes passes from here as soon as it runs,
   * without waiting for the answer message to come through its event loop
   */
  verdicts: SharedArrayBuffer
}

export const VERDICT_PASSED = 1
export const VERDICT_FAILED = 2

/** From the worker: the envelopes that failed, by index; every other one passed. */
export interface VerifyAnswer {
  id: number
  failed: Array<[index: number, code: RejectCode, reason: string]>
}

/** envelopes per batch: ~6 ms of the worker's time, so answers come back while the loop runs */
const MAX_BATCH = 64
/** batches out at once: the worker has the next one when it finishes one */
const MAX_IN_FLIGHT = 2
/**
 * An answer later than this means the worker is not getting a core (two full batches take it
 * ~13 ms; at 20 ms, a worker's own GC pause on an idle machine already tripped it): the event
 * loop then checks what queues itself rather than let it wait.
 */
const LATE_ANSWER_MS = 50

interface Check {
  bytes: Uint8Array
  now: number
  constitution: Constitution
  resolve: (verdict: ThreadVerdict) => void
}

/** A batch at the worker, or checked with failures whose reasons come in its answer message. */
interface BatchOut {
  checks: Check[]
  /** performance.now() when it went */
  sentAt: number
  verdicts: Uint8Array
  /** checks [0, taken) have a verdict byte: passes resolved, failures waiting for the answer */
  taken: number
  /** failures among them */
  failures: number
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/** A message's bytes as JSON, or R005 when they are not UTF-8 JSON. */
export function parseEnvelopeBytes (bytes: Uint8Array): { ok: true, value: unknown } | { ok: false, code: RejectCode, reason: string } {
  try {
    return { ok: true, value: JSON.parse(decoder.decode(bytes)) }
  } catch {
    return { ok: false, code: RejectCode.MALFORMED_ENVELOPE, reason: 'not UTF-8 JSON' }
  }
}

/**
 * verifyEnvelope without the replay check, on the calling thread: what the worker runs for each
 * envelope of a batch, and what checks run as when there is no worker.
 */
export function verifyEnvelopeBytes (bytes: Uint8Array, now: number, constitution: Constitution): ThreadVerdict {
  const parsed = parseEnvelopeBytes(bytes)
  if (!parsed.ok) return parsed
  const v = verifyEnvelope(parsed.value, { constitution, now, replay: false })
  return v.ok ? { ok: true } : { ok: false, code: v.code, reason: v.reason }
}

/**
 * Envelope verification on a worker thread, so that a node busy with gossip checks signatures
 * on a second core while its event loop keeps moving messages. The worker runs verifyEnvelope
 * (schema, TTL, digest, Ed25519 on node:crypto, Ihsan, SNR) on the message bytes; the caller
 * then parses them once more for itself and checks its replay cache, which stays on its thread.
 *
 * Envelopes asked for before the current microtasks end go to the worker as one batch (one
 * buffer, transferred). The worker writes each envelope's verdict into the batch's shared bytes
 * as it goes, and the caller takes the passes from there whenever it runs (each check asked for
 * looks): under load the answer message would wait for the event loop's next look at its
 * ports, after a round of every readable socket, and in that time the batch's messages were
 * neither delivered nor forwarded. Failures wait for the answer message, which carries their
 * reasons. With MAX_IN_FLIGHT batches at the worker, further envelopes queue and leave together
 * when one is done, at most MAX_BATCH at a time. A lone
 * message waits for no one; under load one hop serves many; and small batches keep both threads
 * busy at once (one large batch leaves the event loop idle while the worker works through it,
 * then the worker idle while the loop forwards). A flush per event-loop turn (setImmediate)
 * starved: with many peers on loopback the poll phase finds readable sockets for seconds.
 *
 * If the worker itself falls behind (a batch unfinished LATE_ANSWER_MS, 50 ms, after it went: the
 * machine's other cores are busy and it waits for one), the event loop checks what queued meanwhile itself, so a starved worker
 * costs no more than checking inline. If the worker cannot start or dies, the envelopes it held
 * and every later one are checked inline: nothing is lost and no valid message is refused.
 */
export class VerifyThread {
  #worker: Worker | undefined
  #broken = false
  #queue: Check[] = []
  #flushScheduled = false
  #nextId = 1
  /** the batches out, oldest first */
  readonly #inFlight = new Map<number, BatchOut>()

  /** batches sent to the worker so far */
  batches = 0
  /** checks run on the calling thread because the worker's answers were late */
  helped = 0
  readonly #workerUrl: URL

  /** `workerUrl`: the worker's module (default verify-worker.ts; tests pass a slowed one) */
  constructor (options: { workerUrl?: URL } = {}) {
    this.#workerUrl = options.workerUrl ?? new URL('./verify-worker.ts', import.meta.url)
  }

  check (bytes: Uint8Array, now: number, constitution: Constitution): ThreadVerdict | Promise<ThreadVerdict> {
    if (this.#broken) return verifyEnvelopeBytes(bytes, now, constitution)
    return new Promise<ThreadVerdict>(resolve => {
      this.#queue.push({ bytes, now, constitution, resolve })
      if (!this.#flushScheduled) {
        this.#flushScheduled = true
        queueMicrotask(this.#pump)
      }
    })
  }

  /** Starts the worker now rather than on the first check (loading it takes ~100 ms). */
  warm (): void {
    if (this.#broken) return
    const worker = this.#start()
    // idle, the worker must not keep the process alive
    if (this.#inFlight.size === 0) worker?.unref()
  }

  /** Stops the worker; envelopes still queued or in flight are checked inline. */
  async close (): Promise<void> {
    const worker = this.#worker
    this.#fail()
    this.#pump()
    await worker?.terminate()
  }

  /** takes the verdicts the worker has written, then sends queued checks while fewer than MAX_IN_FLIGHT batches are at the worker */
  readonly #pump = (): void => {
    this.#flushScheduled = false
    const atWorker = this.#takeVerdicts()
    let room = MAX_IN_FLIGHT - atWorker
    while (this.#queue.length > 0 && (this.#broken || room-- > 0)) {
      // one batch: up to MAX_BATCH checks in a row that share a constitution
      const first = this.#queue[0]!
      let n = 1
      while (n < this.#queue.length && n < MAX_BATCH && this.#queue[n]!.constitution === first.constitution) n++
      this.#send(this.#queue.splice(0, n))
    }
    if (this.#queue.length > 0 && this.#oldestAnswerLate()) {
      // a starved worker (the machine's other cores busy): no worse than checking inline
      const queue = this.#queue.splice(0)
      this.helped += queue.length
      for (const c of queue) c.resolve(verifyEnvelopeBytes(c.bytes, c.now, c.constitution))
    }
  }

  /**
   * Resolves every check that passed on the worker, from the batches' shared verdict bytes; a
   * batch whose checks all passed is done (its answer message will find nothing). The answer
   * message alone would reach this thread only when its event loop next looks, which under
   * load is after a full round of every readable socket (hundreds of ms with many peers), while
   * this runs whenever a check is asked for. Returns how many batches the worker still holds.
   */
  #takeVerdicts (): number {
    let atWorker = 0
    for (const [id, batch] of this.#inFlight) {
      const { checks, verdicts } = batch
      while (batch.taken < checks.length) {
        const verdict = Atomics.load(verdicts, batch.taken)
        if (verdict === 0) break
        if (verdict === VERDICT_PASSED) checks[batch.taken]!.resolve({ ok: true })
        else batch.failures++
        batch.taken++
      }
      if (batch.taken < checks.length) atWorker++
      else if (batch.failures === 0) this.#inFlight.delete(id)
    }
    // idle, the worker must not keep the process alive
    if (this.#inFlight.size === 0) this.#worker?.unref()
    return atWorker
  }

  /**
   * The oldest batch the worker has not finished (as of #takeVerdicts) went over LATE_ANSWER_MS
   * ago. (Verdicts the worker wrote while this thread was busy are not late: the worker keeps up.)
   */
  #oldestAnswerLate (): boolean {
    for (const { checks, taken, sentAt } of this.#inFlight.values()) {
      if (taken < checks.length) return performance.now() - sentAt > LATE_ANSWER_MS
    }
    return false
  }

  #send (checks: Check[]): void {
    const worker = this.#broken ? undefined : this.#start()
    if (worker === undefined) {
      for (const c of checks) c.resolve(verifyEnvelopeBytes(c.bytes, c.now, c.constitution))
      return
    }
    let total = 0
    for (const c of checks) total += c.bytes.byteLength
    const bytes = new Uint8Array(total)
    const ends = new Uint32Array(checks.length)
    const nows = new Float64Array(checks.length)
    let at = 0
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!
      bytes.set(c.bytes, at)
      at += c.bytes.byteLength
      ends[i] = at
      nows[i] = c.now
    }
    const id = this.#nextId++
    const verdicts = new SharedArrayBuffer(checks.length)
    this.#inFlight.set(id, { checks, sentAt: performance.now(), verdicts: new Uint8Array(verdicts), taken: 0, failures: 0 })
    if (this.#inFlight.size === 1) worker.ref()
    this.batches++
    const batch: VerifyBatch = { id, constitution: checks[0]!.constitution, bytes: bytes.buffer, ends: ends.buffer, nows: nows.buffer, verdicts }
    worker.postMessage(batch, [bytes.buffer, ends.buffer, nows.buffer])
  }

  #start (): Worker | undefined {
    if (this.#worker !== undefined) return this.#worker
    try {
      const worker = new Worker(this.#workerUrl)
      worker.on('message', this.#onAnswer)
      worker.on('error', () => { this.#fail() })
      worker.on('exit', () => { this.#fail() })
      this.#worker = worker
      return worker
    } catch {
      this.#fail()
      return undefined
    }
  }

  readonly #onAnswer = (answer: VerifyAnswer): void => {
    const batch = this.#inFlight.get(answer.id)
    if (batch !== undefined) {
      this.#inFlight.delete(answer.id)
      const { checks, taken } = batch
      // the passes before `taken` were resolved from the verdict bytes
      const failed = new Map(answer.failed.map(([i, code, reason]) => [i, { ok: false, code, reason } as const]))
      for (let i = 0; i < checks.length; i++) {
        if (i >= taken || failed.has(i)) checks[i]!.resolve(failed.get(i) ?? { ok: true })
      }
    }
    this.#pump()
  }

  #fail (): void {
    if (this.#broken) return
    this.#broken = true
    this.#worker = undefined
    for (const { checks, verdicts, taken } of this.#inFlight.values()) {
      checks.forEach((c, i) => {
        if (i >= taken || verdicts[i] !== VERDICT_PASSED) c.resolve(verifyEnvelopeBytes(c.bytes, c.now, c.constitution))
      })
    }
    this.#inFlight.clear()
  }
}

let shared: VerifyThread | undefined

/**
 * The process's verification thread (started on first use), or undefined where the machine has
 * one core: there a second thread would only take turns with the first, so verify inline.
 */
export function sharedVerifyThread (): VerifyThread | undefined {
  if (availableParallelism() < 2) return undefined
  shared ??= new VerifyThread()
  return shared
}
