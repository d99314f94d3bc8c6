import { randomUUID } from 'node:crypto'
import type { TaskTransport } from './channel.ts'
import { createEnvelope, verifyEnvelope, type Envelope } from '../pci/envelope.ts'
import type { Constitution } from '../governance/constitution.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import { partsProblem, SKILL_ID_RE } from './cards.ts'
import type { AgentDirectory } from './directory.ts'
import { taskDigestOf, type TaskExecutor } from './executor.ts'
import { rankProviders } from './ranking.ts'
import type { SkillRegistry } from './skills.ts'
import { TERMINAL_STATES, type SendTaskOptions, type TaskCard, type TaskPart, type TaskRecord, type TaskState } from './types.ts'
import { ENVELOPE_TYPES, TaskErrorCode, type ExecutorFrame, type TaskResult } from './wire.ts'

export interface ProofCheck {
  taskDigest: string
  card: TaskCard
  parts: TaskPart[]
}

export interface RouterInit {
  identity: NodeIdentity
  constitution: Constitution
  skills: SkillRegistry
  executor: TaskExecutor
  directory: AgentDirectory
  /** carries task envelopes to executors on other nodes (a ChannelPool) */
  transport: TaskTransport
  /** NTU trust and membership health of a peer */
  health: (peerId: string) => { trust: number, healthy: boolean }
  /** providers found beyond gossip (kad-dht provider records) */
  findProviders?: (skill: string, signal: AbortSignal) => Promise<string[]>
  /** checks a result's Merkle proof against what was asked and answered */
  verifyProof: (proof: unknown, expected: ProofCheck) => { ok: true, head: string } | { ok: false, reason: string }
  /** providers tried per task before giving up (default 3) */
  maxAttempts?: number
  /** finished tasks remembered for `task status` (default 10,000) */
  maxRecords?: number
}

/** A caller's mistake in sendTask: the API answers 400, the CLI exits 2. */
export class TaskInputError extends Error {
  static override readonly name: string = 'TaskInputError'
  override readonly name: string = 'TaskInputError'
}

export const DEFAULT_DEADLINE_S = 60
const MAX_DEADLINE_S = 3600
/** how long past its deadline a requester waits for the executor's own DEADLINE answer */
const DEADLINE_GRACE_MS = 2_000
const DHT_LOOKUP_MS = 5_000

type Attempt =
  | { kind: 'final', state: TaskState, parts?: TaskPart[], error?: { code: string, message: string }, proof?: unknown, proofHead?: string }
  | { kind: 'retry', error: { code: string, message: string } }

interface Live {
  record: TaskRecord
  card: TaskCard
  cancel: AbortController
  to?: string
}

const RETRYABLE = new Set<string>([TaskErrorCode.UNKNOWN_SKILL, TaskErrorCode.BUSY, TaskErrorCode.SKILL_ERROR, TaskErrorCode.BAD_OUTPUT, TaskErrorCode.LOG_ERROR, TaskErrorCode.STOPPED])

/**
 * The requester's side of A2A: turns a task into a card in a signed envelope, picks providers
 * (gossiped cards, then kad-dht provider records) ranked by latency, load and trust, runs one
 * attempt at a time with failover, and accepts a result only when its envelope and Merkle
 * proof verify. Keeps each task's record for status queries and listeners.
 */
export class TaskRouter {
  readonly #init: RouterInit
  readonly #tasks = new Map<string, Live>()
  readonly #listeners = new Set<(t: TaskRecord) => void>()
  readonly #waiters = new Map<string, Set<(t: TaskRecord) => void>>()
  readonly #stopped = new AbortController()

  constructor (init: RouterInit) {
    this.#init = init
  }

  async sendTask (options: SendTaskOptions): Promise<TaskRecord> {
    if (this.#stopped.signal.aborted) throw new Error('the node is stopping')
    const card = this.#card(options)
    if (this.#tasks.has(card.id)) throw new TaskInputError(`task ${card.id} already exists`)
    const now = Date.now()
    const live: Live = {
      card,
      cancel: new AbortController(),
      to: options.to,
      record: { id: card.id, skill: card.skill, state: 'submitted', provider: null, attempts: [], result: null, progress: null, error: null, proof: null, proofHead: null, createdAt: now, updatedAt: now, deadline: card.deadline }
    }
    this.#tasks.set(card.id, live)
    this.#prune()
    this.#notify(live)
    void this.#route(live)
    return snapshot(live.record)
  }

  getTask (id: string): TaskRecord | undefined {
    const live = this.#tasks.get(id)
    return live === undefined ? undefined : snapshot(live.record)
  }

  async waitTask (id: string, signal?: AbortSignal): Promise<TaskRecord> {
    const live = this.#tasks.get(id)
    if (live === undefined) throw new TaskInputError(`no task ${id}`)
    if (TERMINAL_STATES.has(live.record.state)) return snapshot(live.record)
    return new Promise((resolve, reject) => {
      let waiters = this.#waiters.get(id)
      if (waiters === undefined) this.#waiters.set(id, waiters = new Set())
      const done = (t: TaskRecord): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve(t)
      }
      const onAbort = (): void => {
        waiters.delete(done)
        reject(signal?.reason ?? new Error('aborted'))
      }
      if (signal?.aborted === true) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      waiters.add(done)
    })
  }

  async cancelTask (id: string): Promise<TaskRecord> {
    const live = this.#tasks.get(id)
    if (live === undefined) throw new TaskInputError(`no task ${id}`)
    if (!TERMINAL_STATES.has(live.record.state)) live.cancel.abort()
    return this.waitTask(id)
  }

  onTask (listener: (t: TaskRecord) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Fails every task still in flight; called when the node stops. */
  stop (): void {
    this.#stopped.abort()
    for (const live of this.#tasks.values()) {
      if (!TERMINAL_STATES.has(live.record.state)) this.#end(live, { kind: 'final', state: 'failed', error: { code: TaskErrorCode.STOPPED, message: 'the node stopped before the task finished' } })
    }
  }

  #card (o: SendTaskOptions): TaskCard {
    if (typeof o.skill !== 'string' || !SKILL_ID_RE.test(o.skill)) throw new TaskInputError('skill must be a skill id (1-64 characters [a-z0-9._-])')
    const parts = partsProblem(o.message?.parts)
    if (parts !== undefined) throw new TaskInputError(`message: ${parts}`)
    const deadlineS = o.deadlineS ?? DEFAULT_DEADLINE_S
    if (typeof deadlineS !== 'number' || !(deadlineS > 0 && deadlineS <= MAX_DEADLINE_S)) throw new TaskInputError(`deadline must be 0-${MAX_DEADLINE_S} seconds`)
    const id = o.id ?? randomUUID()
    if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id)) throw new TaskInputError('task id must be 1-128 characters [A-Za-z0-9._:-]')
    if (o.to !== undefined && (typeof o.to !== 'string' || !/^[1-9A-HJ-NP-Za-km-z]{40,128}$/.test(o.to))) throw new TaskInputError('to must be a PeerId')
    return { id, skill: o.skill, message: { parts: structuredClone(o.message.parts) }, requester: this.#init.identity.id, deadline: Date.now() + Math.round(deadlineS * 1000) }
  }

  async #providers (live: Live, signal: AbortSignal): Promise<string[]> {
    const self = this.#init.identity.id
    if (live.to !== undefined) return [live.to]
    const ids = new Set(this.#init.directory.providers(live.card.skill))
    if (this.#init.skills.has(live.card.skill)) ids.add(self)
    if (ids.size === 0 && this.#init.findProviders !== undefined) {
      try {
        const found = await this.#init.findProviders(live.card.skill, AbortSignal.any([signal, AbortSignal.timeout(DHT_LOOKUP_MS)]))
        for (const p of found) if (p !== self) ids.add(p)
      } catch {
        // no records, or the lookup timed out: same as no providers
      }
    }
    return rankProviders([...ids].map(p => p === self
      ? { peerId: p, latencyMs: 0.01, load: this.#init.executor.active, trust: 1, healthy: true, failures: 0 }
      : this.#init.directory.candidate(p, this.#init.health(p))))
  }

  async #route (live: Live): Promise<void> {
    const { card } = live
    // one controller and one timer per task (AbortSignal.any/timeout per task cost measurably in GC)
    const life = new AbortController()
    const lifetime = life.signal
    const expire = setTimeout(() => life.abort(new Error('deadline exceeded')), Math.max(0, card.deadline - Date.now()) + DEADLINE_GRACE_MS)
    const onStop = (): void => life.abort(new Error('the node is stopping'))
    this.#stopped.signal.addEventListener('abort', onStop, { once: true })
    try {
      await this.#attempts(live, lifetime)
    } finally {
      clearTimeout(expire)
      this.#stopped.signal.removeEventListener('abort', onStop)
    }
  }

  async #attempts (live: Live, lifetime: AbortSignal): Promise<void> {
    const { card } = live
    const ttl = Math.min(MAX_DEADLINE_S, Math.ceil((card.deadline - Date.now()) / 1000) + 30)
    const envelope = createEnvelope(this.#init.identity, { type: ENVELOPE_TYPES.task, payload: card, ttl, ihsan: 1, snr: 1 })
    const taskDigest = taskDigestOf(envelope)
    let last: { code: string, message: string } | undefined
    try {
      const providers = await this.#providers(live, lifetime)
      if (providers.length === 0) {
        return this.#end(live, { kind: 'final', state: 'rejected', error: { code: TaskErrorCode.UNKNOWN_SKILL, message: `no node in the federation offers skill "${card.skill}"` } })
      }
      const tries = live.to !== undefined ? providers : providers.slice(0, this.#init.maxAttempts ?? 3)
      for (const provider of tries) {
        if (live.cancel.signal.aborted) return this.#end(live, canceled())
        if (lifetime.aborted) break
        live.record.provider = provider
        live.record.attempts.push({ provider, state: 'submitted' })
        this.#notify(live)
        const started = Date.now()
        const self = provider === this.#init.identity.id
        if (!self) this.#init.directory.started(provider)
        const outcome = self
          ? await this.#attemptLocal(live, envelope, taskDigest)
          : await this.#attemptRemote(live, provider, envelope, taskDigest, lifetime)
        const ms = Date.now() - started
        const attempt = live.record.attempts[live.record.attempts.length - 1]!
        attempt.ms = ms
        if (!self) this.#init.directory.finished(provider, ms, outcome.kind === 'final')
        if (outcome.kind === 'final') {
          attempt.state = outcome.state
          if (outcome.error !== undefined) attempt.error = `${outcome.error.code}: ${outcome.error.message}`
          return this.#end(live, outcome)
        }
        attempt.state = 'failed'
        attempt.error = `${outcome.error.code}: ${outcome.error.message}`
        last = outcome.error
      }
      if (live.cancel.signal.aborted) return this.#end(live, canceled())
      if (lifetime.aborted && !this.#stopped.signal.aborted) {
        return this.#end(live, { kind: 'final', state: 'failed', error: { code: TaskErrorCode.DEADLINE, message: `deadline exceeded${last !== undefined ? ` (last error: ${last.message})` : ''}` } })
      }
      if (this.#stopped.signal.aborted) return
      const n = live.record.attempts.length
      if (last?.code === TaskErrorCode.UNKNOWN_SKILL && live.record.attempts.every(a => a.error?.startsWith(TaskErrorCode.UNKNOWN_SKILL) === true)) {
        return this.#end(live, { kind: 'final', state: 'rejected', error: { code: TaskErrorCode.UNKNOWN_SKILL, message: `skill "${card.skill}" is not offered by ${live.to ?? 'any reachable provider'}` } })
      }
      return this.#end(live, { kind: 'final', state: 'failed', error: { code: TaskErrorCode.PROVIDER_FAILED, message: `${n} provider${n === 1 ? '' : 's'} tried, none finished the task${last !== undefined ? `; last: ${last.message}` : ''}` } })
    } catch (err) {
      return this.#end(live, { kind: 'final', state: 'failed', error: { code: TaskErrorCode.PROVIDER_FAILED, message: (err as Error).message } })
    }
  }

  async #attemptLocal (live: Live, envelope: Envelope<TaskCard>, taskDigest: string): Promise<Attempt> {
    const result = await this.#init.executor.execute(envelope, { signal: live.cancel.signal, onStatus: f => this.#status(live, f) })
    return this.#judge(live, this.#init.identity.id, result, taskDigest)
  }

  async #attemptRemote (live: Live, provider: string, envelope: Envelope<TaskCard>, taskDigest: string, lifetime: AbortSignal): Promise<Attempt> {
    try {
      const result = await this.#init.transport.run(provider, envelope, { onStatus: f => this.#status(live, f), cancel: live.cancel.signal, signal: lifetime })
      return this.#judge(live, provider, result, taskDigest)
    } catch (err) {
      if (live.cancel.signal.aborted) return canceled()
      return { kind: 'retry', error: { code: TaskErrorCode.PROVIDER_FAILED, message: `${provider} did not finish: ${(err as Error).message}` } }
    }
  }

  /** Accepts a result only from the provider, for this task, and (if completed) with a proof that holds. */
  #judge (live: Live, provider: string, input: unknown, taskDigest: string): Attempt {
    const verified = verifyEnvelope(input, { constitution: this.#init.constitution, replay: false })
    const bad = (message: string): Attempt => ({ kind: 'retry', error: { code: TaskErrorCode.BAD_RESULT, message: `${provider} sent a bad result: ${message}` } })
    if (!verified.ok) return bad(`${verified.code} ${verified.reason}`)
    const e = verified.envelope as Envelope<TaskResult>
    if (e.sender !== provider) return bad('signed by another node')
    if (e.type !== ENVELOPE_TYPES.result) return bad(`envelope type ${e.type}`)
    const r = e.payload
    if (r === null || typeof r !== 'object' || r.taskId !== live.card.id) return bad('for another task')
    if (r.state === 'completed') {
      if (partsProblem(r.parts) !== undefined) return bad('completed without valid output')
      const proof = this.#init.verifyProof(r.proof, { taskDigest, card: live.card, parts: r.parts! })
      if (!proof.ok) return bad(`proof does not verify: ${proof.reason}`)
      return { kind: 'final', state: 'completed', parts: r.parts!, proof: r.proof, proofHead: proof.head }
    }
    const error = r.error !== null && typeof r.error === 'object' && typeof r.error.code === 'string' && typeof r.error.message === 'string'
      ? { code: r.error.code.slice(0, 64), message: r.error.message.slice(0, 1024) }
      : { code: 'UNKNOWN', message: 'no reason given' }
    if (r.state === 'canceled') return canceled()
    if ((r.state === 'failed' || r.state === 'rejected') && RETRYABLE.has(error.code)) return { kind: 'retry', error }
    if (r.state === 'failed' || r.state === 'rejected') return { kind: 'final', state: r.state, error }
    return bad(`final state ${String(r.state)}`)
  }

  #status (live: Live, frame: Extract<ExecutorFrame, { kind: 'status' }>): void {
    if (TERMINAL_STATES.has(live.record.state)) return
    live.record.state = frame.state === 'input-required' ? 'input-required' : 'working'
    const last = live.record.attempts[live.record.attempts.length - 1]
    if (last !== undefined) last.state = live.record.state
    if (frame.progress !== undefined && partsProblem(frame.progress) === undefined) live.record.progress = frame.progress
    this.#notify(live)
  }

  #end (live: Live, outcome: Extract<Attempt, { kind: 'final' }>): void {
    if (TERMINAL_STATES.has(live.record.state)) return
    const r = live.record
    r.state = outcome.state
    r.result = outcome.parts ?? null
    r.error = outcome.error ?? null
    r.proof = outcome.proof ?? null
    r.proofHead = outcome.proofHead ?? null
    this.#notify(live)
    const waiters = this.#waiters.get(r.id)
    this.#waiters.delete(r.id)
    for (const w of waiters ?? []) w(snapshot(r))
  }

  #notify (live: Live): void {
    live.record.updatedAt = Date.now()
    if (this.#listeners.size === 0) return
    const copy = snapshot(live.record)
    for (const l of this.#listeners) l(copy)
  }

  /** Forgets the oldest finished tasks past maxRecords. */
  #prune (): void {
    const max = this.#init.maxRecords ?? 10_000
    if (this.#tasks.size <= max) return
    for (const [id, live] of this.#tasks) {
      if (this.#tasks.size <= max) break
      if (TERMINAL_STATES.has(live.record.state)) this.#tasks.delete(id)
    }
  }
}

/**
 * A copy a listener may keep: the record's own fields and attempts are copied; result,
 * progress, error and proof are replaced whole when they change, never mutated, so they are shared.
 */
function snapshot (r: TaskRecord): TaskRecord {
  return { ...r, attempts: r.attempts.map(a => ({ ...a })) }
}

function canceled (): Extract<Attempt, { kind: 'final' }> {
  return { kind: 'final', state: 'canceled', error: { code: TaskErrorCode.CANCELED, message: 'canceled by the requester' } }
}
