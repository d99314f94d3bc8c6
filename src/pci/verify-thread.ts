import { availableParallelism } from 'node:os'
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import type { Constitution } from '../governance/constitution.ts'
import { RejectCode } from './codes.ts'
import { verifyEnvelope } from './envelope.ts'

/** The worker's verdict on one envelope: everything verifyEnvelope checks but the replay cache. */
export type ThreadVerdict = { ok: true } | { ok: false, code: RejectCode, reason: string }

/**
 * The memory the node and its verification worker share: a ring of check slots and a ring of
 * the envelopes' bytes. The node fills slots and advances WRITTEN; the worker checks them in
 * order, writes each slot's verdict and advances DONE. Sequence numbers are int32 and wrap; a
 * slot is `seq & SLOT_MASK`.
 */
export const SLOTS = 256
const SLOT_MASK = SLOTS - 1
/** bytes of envelopes the ring holds at once; a larger envelope is checked on the calling thread */
export const RING_BYTES = 4 * 1024 * 1024
const MAX_RING_ENVELOPE = RING_BYTES / 4

/** indices into the control words */
export const CTL_WRITTEN = 0
export const CTL_DONE = 1
/** the checks the node has taken the verdicts of (the worker wakes the node only when it lags) */
export const CTL_TAKEN = 2
export const CTL_CLOSING = 3
const CTL_WORDS = 4

export const VERDICT_PASSED = 1
export const VERDICT_FAILED = 2

export interface RingViews {
  ctl: Int32Array
  /** per slot: byte offset into `bytes`, then length */
  spans: Uint32Array
  /** per slot: the time (epoch ms) its envelope's TTL is checked against */
  nows: Float64Array
  /** per slot: the id of its constitution (sent over the constitution port before first use) */
  constitutions: Uint32Array
  /** per slot: 0 until checked, then VERDICT_PASSED or VERDICT_FAILED */
  verdicts: Uint8Array
  bytes: Uint8Array
}

/** the shared buffer's sections in bytes, in order (the 8-byte floats first keeps each aligned) */
const SECTIONS = { nows: SLOTS * 8, ctl: CTL_WORDS * 4, spans: SLOTS * 8, constitutions: SLOTS * 4, verdicts: SLOTS, bytes: RING_BYTES }
const RING_SAB_BYTES = Object.values(SECTIONS).reduce((sum, n) => sum + n, 0)

export function ringViews (sab: SharedArrayBuffer): RingViews {
  let at = 0
  const take = (n: number): number => { const start = at; at += n; return start }
  return {
    nows: new Float64Array(sab, take(SECTIONS.nows), SLOTS),
    ctl: new Int32Array(sab, take(SECTIONS.ctl), CTL_WORDS),
    spans: new Uint32Array(sab, take(SECTIONS.spans), SLOTS * 2),
    constitutions: new Uint32Array(sab, take(SECTIONS.constitutions), SLOTS),
    verdicts: new Uint8Array(sab, take(SECTIONS.verdicts), SLOTS),
    bytes: new Uint8Array(sab, take(SECTIONS.bytes), RING_BYTES)
  }
}

/** What the worker is given at start. */
export interface WorkerInit {
  ring: SharedArrayBuffer
  /** constitutions by id, each sent before the first slot that names it */
  constitutions: MessagePort
}

/** A constitution the worker is to know by `id`. */
export interface ConstitutionMessage {
  id: number
  constitution: Constitution
}

/**
 * From the worker: the checks that failed (by sequence number), with their reasons; every
 * other checked slot passed. Also sent, empty, to wake a node that has not taken its verdicts.
 */
export interface VerifyAnswer {
  failed: Array<[seq: number, code: RejectCode, reason: string]>
}

/** checks at the worker at once (~10 ms of its time): more wait here, where a late worker can be helped */
const MAX_IN_FLIGHT = 128
/**
 * An oldest check unfinished this long means the worker is not getting a core (128 checks take
 * it ~10 ms; at 20 ms, a worker's own GC pause on an idle machine already tripped it): the event
 * loop then checks what queues itself rather than let it wait.
 */
const LATE_ANSWER_MS = 50
/**
 * A sleeping worker is woken once WAKE_BATCH checks wait for it, once the oldest of them has
 * waited WAKE_AFTER_MS (as seen when the next check is asked for), or else at the end of the
 * event loop's turn. Waking it is a futex system call and an interrupt to its core, ~10 us of
 * the event loop when measured alone and far more under load: done for every check, as before,
 * it cost bench:gossip ~10% of its throughput, because the worker checks an envelope faster
 * than a busy node receives the next and so slept between nearly all of them (~3,000 wakes per
 * burst of 6,200 envelopes; now ~300). An awake worker takes new slots without being woken. The
 * end of the turn alone is not enough: under load a turn's poll phase can run for seconds.
 */
const WAKE_BATCH = 8
const WAKE_AFTER_MS = 1

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
 * envelope, and what checks run as when there is no worker.
 */
export function verifyEnvelopeBytes (bytes: Uint8Array, now: number, constitution: Constitution): ThreadVerdict {
  const parsed = parseEnvelopeBytes(bytes)
  if (!parsed.ok) return parsed
  const v = verifyEnvelope(parsed.value, { constitution, now, replay: false })
  return v.ok ? { ok: true } : { ok: false, code: v.code, reason: v.reason }
}

const inline = (c: Check): void => { c.resolve(verifyEnvelopeBytes(c.bytes, c.now, c.constitution)) }

/**
 * Envelope verification on a worker thread, so that a node busy with gossip checks signatures
 * on a second core while its event loop keeps moving messages. The worker runs verifyEnvelope
 * (schema, TTL, digest, Ed25519 on node:crypto, Ihsan, SNR) on the message bytes; the caller
 * then parses them once more for itself and checks its replay cache, which stays on its thread.
 *
 * The two threads share memory and exchange no message per check: envelopes asked for before
 * the current microtasks end are copied into the shared ring, and a sleeping worker is woken
 * (a futex) once a few are waiting or the turn ends (see WAKE_BATCH); it checks them in order
 * and writes each verdict into its slot, and the caller takes the passes from there whenever it
 * runs (each check asked for looks). Under load the
 * caller would see a message from the worker only at its event loop's next look at its ports,
 * after a round of every readable socket, and a message per batch cost the caller dearly
 * (profiled: ~2,000 postMessages per burst of 6,200 envelopes, 3% of the loop in postMessage
 * itself and more in the transferred buffers and their garbage).
 * Failures wait for the worker's answer message, which carries their reasons; the worker also
 * sends one, empty, when it runs out of work while the caller has not taken its verdicts (so a
 * quiet node still hears of them). At most MAX_IN_FLIGHT checks are at the worker; later ones
 * queue here.
 *
 * If the worker itself falls behind (its oldest check unfinished LATE_ANSWER_MS, 50 ms, after it
 * went: the machine's other cores are busy and it waits for one), the event loop checks what
 * queued meanwhile itself, so a starved worker costs no more than checking inline. If the worker
 * cannot start or dies, the envelopes it held and every later one are checked inline: nothing
 * is lost and no valid message is refused. An envelope too large for the ring is checked inline.
 */
export class VerifyThread {
  #worker: Worker | undefined
  #broken = false
  #queue: Check[] = []
  #pumpScheduled = false
  readonly #workerUrl: URL

  // shared ring (allocated when the worker starts)
  #ring: RingViews | undefined
  #constitutionPort: MessagePort | undefined
  readonly #constitutionIds = new WeakMap<Constitution, number>()
  #nextConstitutionId = 1

  // this thread's side of the ring, by slot
  readonly #slotChecks: Array<Check | undefined> = new Array(SLOTS)
  readonly #slotSentAt = new Float64Array(SLOTS)
  /** where the slot's bytes start, counted in bytes ever written (for the ring's free space) */
  readonly #slotStart = new Float64Array(SLOTS)
  /** checks written to the ring so far (monotonic; the ring's WRITTEN is this, wrapped to int32) */
  #written = 0
  /** checks whose verdict this thread has read */
  #taken = 0
  /** bytes ever written to the ring */
  #bytesWritten = 0
  /** failed checks whose reasons are still to come, by wrapped sequence number */
  readonly #awaitingReason = new Map<number, Check>()

  /** times checks were handed to the worker (one per pump that wrote any) */
  batches = 0
  /** checks run on the calling thread because the worker was late */
  helped = 0
  /** hand-offs that found the worker asleep and woke it (a futex wake: a system call) */
  wakes = 0
  /** messages from the worker (failures, or a wake-up for verdicts not yet taken) */
  answers = 0
  readonly #wakeBatch: number
  readonly #wakeAfterMs: number
  /** checks written since the worker was last woken, and when the first of them was */
  #unwoken = 0
  #unwokenSince = 0
  #wakeScheduled = false
  readonly #wakeAtTurnEnd = (): void => {
    this.#wakeScheduled = false
    if (this.#unwoken > 0) this.#wake()
  }

  /**
   * `workerUrl`: the worker's module (default verify-worker.ts; tests pass a slowed one).
   * `firstSequence`: the first check's sequence number (default 0; tests start near the int32
   * wrap, which a node checking 10,000 envelopes a second reaches in under three days).
   * `wakeBatch`, `wakeAfterMs`: when a sleeping worker is woken (default WAKE_BATCH and
   * WAKE_AFTER_MS; tests set one out of reach to see the other alone).
   */
  constructor (options: { workerUrl?: URL, firstSequence?: number, wakeBatch?: number, wakeAfterMs?: number } = {}) {
    this.#workerUrl = options.workerUrl ?? new URL('./verify-worker.ts', import.meta.url)
    this.#written = this.#taken = options.firstSequence ?? 0
    this.#wakeBatch = options.wakeBatch ?? WAKE_BATCH
    this.#wakeAfterMs = options.wakeAfterMs ?? WAKE_AFTER_MS
  }

  /**
   * The verdict on one envelope's bytes, checked against `constitution` at time `now`. Each
   * constitution object goes to the worker once (known by identity): pass the same object.
   */
  check (bytes: Uint8Array, now: number, constitution: Constitution): ThreadVerdict | Promise<ThreadVerdict> {
    if (this.#broken || bytes.byteLength > MAX_RING_ENVELOPE) return verifyEnvelopeBytes(bytes, now, constitution)
    return new Promise<ThreadVerdict>(resolve => {
      this.#queue.push({ bytes, now, constitution, resolve })
      if (!this.#pumpScheduled) {
        this.#pumpScheduled = true
        queueMicrotask(this.#pump)
      }
    })
  }

  /** Starts the worker now rather than on the first check (loading it takes ~100 ms). */
  warm (): void {
    if (this.#broken) return
    this.#start()
    this.#refIfBusy()
  }

  /** Stops the worker; envelopes still queued or at the worker are checked inline. */
  async close (): Promise<void> {
    const worker = this.#worker
    if (this.#ring !== undefined) {
      Atomics.store(this.#ring.ctl, CTL_CLOSING, 1)
      Atomics.notify(this.#ring.ctl, CTL_WRITTEN)
    }
    this.#fail()
    this.#pump()
    await worker?.terminate()
  }

  /** takes the verdicts the worker has written, then hands it queued checks while it has room */
  readonly #pump = (): void => {
    this.#pumpScheduled = false
    if (this.#broken) {
      this.#checkQueueInline()
      return
    }
    this.#takeVerdicts()
    if (this.#queue.length > 0) this.#write()
    else if (this.#unwoken > 0) this.#wakeIfDue(performance.now())
    // a starved worker (the machine's other cores busy): no worse than checking inline
    if (this.#queue.length > 0 && this.#oldestLate()) this.helped += this.#checkQueueInline()
    this.#refIfBusy()
  }

  /** runs every queued check on this thread; returns how many there were */
  #checkQueueInline (): number {
    const queue = this.#queue.splice(0)
    for (const c of queue) inline(c)
    return queue.length
  }

  /**
   * Resolves every check the worker has passed, from the slots' verdict bytes; failures wait
   * for their reasons (the worker's answer message). This runs whenever a check is asked for,
   * while the worker's messages reach this thread only when its event loop next looks at its
   * ports (under load, after a round of every readable socket).
   */
  #takeVerdicts (): void {
    const ring = this.#ring
    if (ring === undefined) return
    const done = this.#taken + ((Atomics.load(ring.ctl, CTL_DONE) - (this.#taken | 0)) | 0)
    for (; this.#taken < done; this.#taken++) {
      const slot = this.#taken & SLOT_MASK
      const check = this.#slotChecks[slot]!
      this.#slotChecks[slot] = undefined
      if (Atomics.load(ring.verdicts, slot) === VERDICT_PASSED) check.resolve({ ok: true })
      else this.#awaitingReason.set(this.#taken | 0, check)
    }
    Atomics.store(ring.ctl, CTL_TAKEN, this.#taken | 0)
  }

  /** copies queued checks into the ring while it has slots and bytes free, then wakes the worker */
  #write (): void {
    const worker = this.#start()
    const ring = this.#ring
    if (worker === undefined || ring === undefined) {
      this.#checkQueueInline()
      return
    }
    const oldestStart = this.#written > this.#taken ? this.#slotStart[this.#taken & SLOT_MASK]! : this.#bytesWritten
    let n = 0
    const sentAt = performance.now()
    while (n < this.#queue.length && this.#written - this.#taken < MAX_IN_FLIGHT) {
      const check = this.#queue[n]!
      const length = check.bytes.byteLength
      let at = this.#bytesWritten % RING_BYTES
      // an envelope never wraps: skip the ring's tail when it does not fit there
      const skip = at + length > RING_BYTES ? RING_BYTES - at : 0
      if (this.#bytesWritten + skip + length - oldestStart > RING_BYTES) break
      if (skip > 0) at = 0
      const start = this.#bytesWritten + skip
      ring.bytes.set(check.bytes, at)
      this.#bytesWritten = start + length
      const slot = this.#written & SLOT_MASK
      ring.spans[slot * 2] = at
      ring.spans[slot * 2 + 1] = length
      ring.nows[slot] = check.now
      ring.constitutions[slot] = this.#constitutionId(check.constitution)
      Atomics.store(ring.verdicts, slot, 0)
      this.#slotChecks[slot] = check
      this.#slotSentAt[slot] = sentAt
      this.#slotStart[slot] = start
      this.#written++
      n++
    }
    if (n === 0) return
    this.#queue.splice(0, n)
    this.batches++
    Atomics.store(ring.ctl, CTL_WRITTEN, this.#written | 0)
    if (this.#unwoken === 0) this.#unwokenSince = sentAt
    this.#unwoken += n
    this.#wakeIfDue(sentAt)
  }

  /** a no-op (no system call) when the worker is awake: it takes new slots as it goes */
  #wake (): void {
    this.#unwoken = 0
    this.wakes += Atomics.notify(this.#ring!.ctl, CTL_WRITTEN)
  }

  /** wakes the worker for what was written since it was last woken if WAKE_BATCH or WAKE_AFTER_MS says so, else at the turn's end */
  #wakeIfDue (now: number): void {
    if (this.#unwoken >= this.#wakeBatch || now - this.#unwokenSince >= this.#wakeAfterMs) this.#wake()
    else if (!this.#wakeScheduled) {
      this.#wakeScheduled = true
      setImmediate(this.#wakeAtTurnEnd)
    }
  }

  #constitutionId (constitution: Constitution): number {
    let id = this.#constitutionIds.get(constitution)
    if (id === undefined) {
      id = this.#nextConstitutionId++
      this.#constitutionIds.set(constitution, id)
      const message: ConstitutionMessage = { id, constitution }
      this.#constitutionPort!.postMessage(message)
    }
    return id
  }

  /** the oldest check the worker has not finished (as of #takeVerdicts) went over LATE_ANSWER_MS ago */
  #oldestLate (): boolean {
    return this.#written > this.#taken && performance.now() - this.#slotSentAt[this.#taken & SLOT_MASK]! > LATE_ANSWER_MS
  }

  /** the worker keeps the process alive only while it holds checks of ours */
  #refIfBusy (): void {
    if (this.#written > this.#taken || this.#awaitingReason.size > 0) this.#worker?.ref()
    else this.#worker?.unref()
  }

  #start (): Worker | undefined {
    if (this.#worker !== undefined) return this.#worker
    try {
      const ring = new SharedArrayBuffer(RING_SAB_BYTES)
      const views = ringViews(ring)
      for (const word of [CTL_WRITTEN, CTL_DONE, CTL_TAKEN]) views.ctl[word] = this.#written | 0
      const { port1, port2 } = new MessageChannel()
      const init: WorkerInit = { ring, constitutions: port2 }
      const worker = new Worker(this.#workerUrl, { workerData: init, transferList: [port2] })
      worker.on('message', this.#onAnswer)
      worker.on('error', () => { this.#fail() })
      worker.on('exit', () => { this.#fail() })
      this.#worker = worker
      this.#ring = views
      this.#constitutionPort = port1
      port1.unref()
      return worker
    } catch {
      this.#fail()
      return undefined
    }
  }

  readonly #onAnswer = (answer: VerifyAnswer): void => {
    this.answers++
    this.#takeVerdicts()
    for (const [seq, code, reason] of answer.failed) {
      const check = this.#awaitingReason.get(seq)
      this.#awaitingReason.delete(seq)
      check?.resolve({ ok: false, code, reason })
    }
    this.#pump()
  }

  /**
   * The worker is gone (or closing): what it passed is taken, every other check it held is run
   * here, and so is every later one.
   */
  #fail (): void {
    if (this.#broken) return
    this.#takeVerdicts()
    this.#broken = true
    this.#worker = undefined
    this.#constitutionPort?.close()
    for (; this.#taken < this.#written; this.#taken++) {
      const slot = this.#taken & SLOT_MASK
      inline(this.#slotChecks[slot]!)
      this.#slotChecks[slot] = undefined
    }
    for (const check of this.#awaitingReason.values()) inline(check)
    this.#awaitingReason.clear()
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
