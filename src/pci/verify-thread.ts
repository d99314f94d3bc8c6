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
}

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
 * buffer, transferred) and come back as one answer. With MAX_IN_FLIGHT batches out, further
 * envelopes queue and leave together when an answer comes, at most MAX_BATCH at a time. A lone
 * message waits for no one; under load one hop serves many; and small batches keep both threads
 * busy at once (one large batch leaves the event loop idle while the worker works through it,
 * then the worker idle while the loop forwards). A flush per event-loop turn (setImmediate)
 * starved: with many peers on loopback the poll phase finds readable sockets for seconds.
 *
 * If the worker's answers come late (LATE_ANSWER_MS, 50 ms: the machine's other cores are busy and
 * it waits for one), the event loop checks what queued meanwhile itself, so a starved worker
 * costs no more than checking inline. If the worker cannot start or dies, the envelopes it held
 * and every later one are checked inline: nothing is lost and no valid message is refused.
 */
export class VerifyThread {
  #worker: Worker | undefined
  #broken = false
  #queue: Check[] = []
  #flushScheduled = false
  #nextId = 1
  /** the batches out, oldest first, with when each was sent (performance.now()) */
  readonly #inFlight = new Map<number, { checks: Check[], sentAt: number }>()
  /** the id of the last batch the worker finished, written by the worker */
  readonly #finished = new BigInt64Array(new SharedArrayBuffer(8))

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

  /** sends queued checks while fewer than MAX_IN_FLIGHT batches are out */
  readonly #pump = (): void => {
    this.#flushScheduled = false
    while (this.#queue.length > 0 && (this.#broken || this.#inFlight.size < MAX_IN_FLIGHT)) {
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

  /** the oldest batch out has waited over LATE_ANSWER_MS and the worker has not finished it */
  #oldestAnswerLate (): boolean {
    const oldest = this.#inFlight.entries().next()
    if (oldest.done === true) return false
    const [id, { sentAt }] = oldest.value
    // (an answer the worker wrote while this thread was busy is not late: the worker is keeping up)
    return performance.now() - sentAt > LATE_ANSWER_MS && Atomics.load(this.#finished, 0) < BigInt(id)
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
    this.#inFlight.set(id, { checks, sentAt: performance.now() })
    if (this.#inFlight.size === 1) worker.ref()
    this.batches++
    const batch: VerifyBatch = { id, constitution: checks[0]!.constitution, bytes: bytes.buffer, ends: ends.buffer, nows: nows.buffer }
    worker.postMessage(batch, [bytes.buffer, ends.buffer, nows.buffer])
  }

  #start (): Worker | undefined {
    if (this.#worker !== undefined) return this.#worker
    try {
      const worker = new Worker(this.#workerUrl, { workerData: { finished: this.#finished } })
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
    const checks = this.#inFlight.get(answer.id)?.checks
    if (checks === undefined) return
    this.#inFlight.delete(answer.id)
    // idle, the worker must not keep the process alive
    if (this.#inFlight.size === 0) this.#worker?.unref()
    const verdicts: ThreadVerdict[] = checks.map(() => ({ ok: true }))
    for (const [i, code, reason] of answer.failed) verdicts[i] = { ok: false, code, reason }
    for (let i = 0; i < checks.length; i++) checks[i]!.resolve(verdicts[i]!)
    this.#pump()
  }

  #fail (): void {
    if (this.#broken) return
    this.#broken = true
    this.#worker = undefined
    for (const { checks } of this.#inFlight.values()) {
      for (const c of checks) c.resolve(verifyEnvelopeBytes(c.bytes, c.now, c.constitution))
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
