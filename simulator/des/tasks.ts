import { createMembership, stepMembership, type Membership } from '../../src/net/membership.ts'
import { rankProviders, smooth, type ProviderCandidate } from '../../src/a2a/ranking.ts'
import { LatencyHistogram } from '../report/metrics.ts'
import type { Rng } from './rng.ts'
import { ENVELOPE_OVERHEAD, EV_MODULE, K_HEARTBEAT, K_SPAM, K_TASK, type Sim, type SimModule } from './sim.ts'

/**
 * Membership and task routing in the simulator.
 *
 * Observers: a sample of nodes (default 200) run the membership state machine of
 * src/net/membership.ts (phi-accrual), fed through `stepMembership` with the heartbeats of the
 * peers they track (their connections and their candidate providers; heartbeats are node-info
 * messages every `membership.heartbeatMs`, carried here point to point with the link's latency
 * and loss) and ticked twice per interval. Their peer:suspect / peer:dead transitions against
 * the real crash times give failure-detection latency. A node that restarts starts a fresh
 * membership, as a real node does.
 *
 * Tasks: observers are the requesters (routing needs their membership view). A task goes to
 * the provider that src/a2a/ranking.ts ranks first among the requester's candidates (latency
 * smoothed as the router does, load = tasks in flight at the provider, trust and health from
 * membership, failures since the last success), one attempt at a time; a crashed provider is
 * noticed after a round trip (connection refused / reset), a request or result cut off by a
 * partition after the attempt timeout; then the next provider, up to maxAttempts.
 */

export const EV_TASK_GEN = EV_MODULE + 8
const EV_TASK_ARRIVE = EV_MODULE + 9
const EV_TASK_DONE = EV_MODULE + 10
const EV_TASK_RESULT = EV_MODULE + 11
const EV_TASK_FAIL = EV_MODULE + 12
const EV_MHB_SEND = EV_MODULE + 13
const EV_MHB_ARRIVE = EV_MODULE + 14
const EV_MTICK = EV_MODULE + 15
const FIRST = EV_TASK_GEN
const COUNT = 8

const TASK_BYTES = 900
const RESULT_BYTES = 1400
const HEARTBEAT_BYTES = 420
const CANDIDATES_LOCAL = 5
const CANDIDATES_REMOTE = 2
const TRACKED_CONNECTIONS = 12

interface Observer {
  node: number
  membership: Membership
  tracked: number[]
  providers: number[]
  stats: Map<number, { latencyMs: number | null, failures: number }>
}

interface Task {
  requester: number
  observer: number
  start: number
  attempt: number
  provider: number
  tried: number[]
  done: boolean
}

export class TaskModule implements SimModule {
  readonly sim: Sim
  readonly observers: Observer[] = []
  readonly observerOf: Int32Array
  readonly providers: number[] = []
  readonly isProvider: Uint8Array
  readonly inflight: Int32Array
  readonly tasks: Task[] = []
  readonly atProvider = new Map<number, Set<number>>()
  readonly latency = new LatencyHistogram()
  readonly suspectLatency = new LatencyHistogram()
  readonly deadLatency = new LatencyHistogram()
  falseSuspicions = 0
  succeeded = 0
  failed = 0
  attempts = 0
  failovers = 0
  readonly hbMs: number
  readonly serviceMean: number
  readonly serviceJitter: number
  readonly attemptTimeoutMs: number
  readonly maxAttempts: number
  /** tasks draw from their own stream */
  readonly gen: Rng

  constructor (sim: Sim) {
    this.sim = sim
    const s = sim.scenario
    const n = sim.n
    this.hbMs = s.membership?.heartbeatMs ?? 10_000
    this.serviceMean = s.workload.taskServiceMs?.mean ?? 50
    this.serviceJitter = Math.min(this.serviceMean, s.workload.taskServiceMs?.jitter ?? 25)
    this.attemptTimeoutMs = s.workload.taskAttemptTimeoutMs ?? 10_000
    this.maxAttempts = s.workload.taskMaxAttempts ?? 3
    this.gen = sim.stream('tasks')
    this.observerOf = new Int32Array(n).fill(-1)
    this.isProvider = new Uint8Array(n)
    this.inflight = new Int32Array(n)
    const rng = sim.rng
    const { regionStart, isSuper, connOff, conn } = sim.topo

    // providers: a share of each region's nodes
    const share = s.workload.providerShare ?? 0.1
    const byRegion: number[][] = []
    for (let r = 0; r < sim.R; r++) {
      const start = regionStart[r]!
      const size = regionStart[r + 1]! - start
      const k = Math.max(1, Math.round(size * share))
      const list = rng.sample(size, Math.min(size, k)).map(x => start + x).sort((a, b) => a - b)
      for (const p of list) { this.isProvider[p] = 1; this.providers.push(p) }
      byRegion.push(list)
    }

    // observers: random nodes that are not super-peers (when there are enough of those)
    const want = Math.min(n, s.membership?.observers ?? 200)
    const plain = n - sim.topo.superPeers.length
    const picks = rng.sample(n, Math.min(n, want + sim.topo.superPeers.length))
    const chosen: number[] = []
    for (const x of picks) if (chosen.length < want && (isSuper[x] === 0 || plain < want)) chosen.push(x)
    chosen.sort((a, b) => a - b)
    for (const node of chosen) {
      const r = sim.topo.region[node]!
      const local = byRegion[r]!
      const cand = new Set<number>()
      for (const x of rng.sample(local.length, Math.min(local.length, CANDIDATES_LOCAL))) if (local[x] !== node) cand.add(local[x]!)
      for (let k = 0; k < CANDIDATES_REMOTE && this.providers.length > local.length; k++) {
        const p = this.providers[rng.int(this.providers.length)]!
        if (p !== node) cand.add(p)
      }
      const tracked = new Set<number>(cand)
      for (let k = connOff[node]!, e = Math.min(connOff[node + 1]!, connOff[node]! + TRACKED_CONNECTIONS); k < e; k++) tracked.add(conn[k]!)
      this.observerOf[node] = this.observers.length
      this.observers.push({ node, membership: this.#freshMembership(node, [...tracked]), tracked: [...tracked].sort((a, b) => a - b), providers: [...cand].sort((a, b) => a - b), stats: new Map() })
    }
    sim.register(this, FIRST, COUNT)
    // heartbeats from every tracked peer at its own phase, ticks twice per interval
    this.observers.forEach((o, k) => {
      for (const p of o.tracked) sim.schedule(rng.next() * this.hbMs, EV_MHB_SEND, p, k, 0)
      sim.schedule(rng.next() * (this.hbMs / 2), EV_MTICK, o.node, k, 0)
    })
    if (s.workload.tasksPerS > 0 && this.observers.length > 0) sim.schedule(sim.workStart + this.gen.exp(1000 / s.workload.tasksPerS), EV_TASK_GEN, -1, 0, 0)
  }

  #freshMembership (node: number, tracked: number[]): Membership {
    const m = createMembership({ selfId: `n${node}`, heartbeatIntervalMs: this.hbMs })
    for (const p of tracked) stepMembership(m, { type: 'connected', peerId: `n${p}`, now: this.sim.now })
    return m
  }

  onEvent (type: number, node: number, a: number, b: number): void {
    const sim = this.sim
    switch (type) {
      case EV_TASK_GEN: {
        if (sim.now > sim.workEnd) return
        let k = this.gen.int(this.observers.length)
        for (let t = 0; t < 8 && sim.alive[this.observers[k]!.node] === 0; t++) k = this.gen.int(this.observers.length)
        const o = this.observers[k]!
        if (sim.alive[o.node] === 1) {
          const task: Task = { requester: o.node, observer: k, start: sim.now, attempt: 0, provider: -1, tried: [], done: false }
          this.tasks.push(task)
          this.#tryNext(this.tasks.length - 1)
        }
        sim.schedule(sim.now + this.gen.exp(1000 / sim.scenario.workload.tasksPerS), EV_TASK_GEN, -1, 0, 0)
        return
      }
      case EV_TASK_ARRIVE: {
        const task = this.tasks[a]!
        if (task.done || task.attempt !== b) return
        if (sim.alive[node] === 0) return this.#failBack(node, a, b)
        sim.countRecv(node, TASK_BYTES + ENVELOPE_OVERHEAD)
        this.inflight[node]!++
        let set = this.atProvider.get(node)
        if (set === undefined) { set = new Set(); this.atProvider.set(node, set) }
        set.add(a)
        const service = this.serviceMean + this.serviceJitter * (2 * this.gen.next() - 1)
        sim.schedule(sim.now + Math.max(0.1, service), EV_TASK_DONE, node, a, b)
        return
      }
      case EV_TASK_DONE: {
        const set = this.atProvider.get(node)
        if (sim.alive[node] === 0 || set === undefined || !set.has(a)) return // it crashed meanwhile
        set.delete(a)
        this.inflight[node]!--
        const task = this.tasks[a]!
        sim.countSent(node, K_TASK, RESULT_BYTES)
        const d = sim.linkDelay(node, task.requester)
        if (d >= 0) sim.schedule(sim.now + d, EV_TASK_RESULT, task.requester, a, b)
        return
      }
      case EV_TASK_RESULT: {
        const task = this.tasks[a]!
        if (task.done || task.attempt !== b || sim.alive[node] === 0) return
        sim.countRecv(node, RESULT_BYTES)
        task.done = true
        this.succeeded++
        this.latency.add(sim.now - task.start)
        const st = this.#stats(task.observer, task.provider)
        st.latencyMs = smooth(st.latencyMs, sim.now - task.start)
        st.failures = 0
        return
      }
      case EV_TASK_FAIL: {
        const task = this.tasks[a]!
        if (task.done || task.attempt !== b) return
        if (sim.alive[task.requester] === 0) { task.done = true; this.failed++; return }
        this.#stats(task.observer, task.provider).failures++
        this.#tryNext(a)
        return
      }
      case EV_MHB_SEND: {
        sim.schedule(sim.now + this.hbMs, EV_MHB_SEND, node, a, 0)
        if (sim.alive[node] === 0) return
        const o = this.observers[a]!
        sim.countSent(node, K_HEARTBEAT, HEARTBEAT_BYTES)
        const d = sim.linkDelay(node, o.node)
        if (d >= 0) sim.schedule(sim.now + d, EV_MHB_ARRIVE, o.node, node, a)
        return
      }
      case EV_MHB_ARRIVE: {
        if (sim.alive[node] === 0) return
        sim.countRecv(node, HEARTBEAT_BYTES)
        const o = this.observers[b]!
        stepMembership(o.membership, { type: 'heartbeat', peerId: `n${a}`, now: sim.now, info: { load: this.inflight[a]! } })
        return
      }
      case EV_MTICK: {
        sim.schedule(sim.now + this.hbMs / 2, EV_MTICK, node, a, 0)
        if (sim.alive[node] === 0) return
        const o = this.observers[a]!
        for (const e of stepMembership(o.membership, { type: 'tick', now: sim.now })) {
          if (e.type !== 'peer:suspect' && e.type !== 'peer:dead') continue
          const p = Number(e.peerId.slice(1))
          const down = sim.alive[p] === 0
          if (e.type === 'peer:suspect') {
            if (down) this.suspectLatency.add(sim.now - sim.crashedAt[p]!)
            else this.falseSuspicions++
          } else if (down) this.deadLatency.add(sim.now - sim.crashedAt[p]!)
        }
      }
    }
  }

  /** rejected messages lower the sender's NTU trust at observers that track it */
  onMessage (node: number, _msg: number, kind: number, from: number): void {
    if (kind !== K_SPAM) return
    const k = this.observerOf[node]!
    if (k >= 0) stepMembership(this.observers[k]!.membership, { type: 'message', peerId: `n${from}`, ok: false, now: this.sim.now })
  }

  onCrash (node: number): void {
    const sim = this.sim
    const set = this.atProvider.get(node)
    if (set !== undefined) {
      // the requesters' streams are reset: they hear of it after one link delay
      for (const t of set) {
        const task = this.tasks[t]!
        const d = sim.linkDelay(node, task.requester)
        if (d >= 0) sim.schedule(sim.now + d, EV_TASK_FAIL, task.requester, t, task.attempt)
      }
      this.inflight[node] = 0
      this.atProvider.delete(node)
    }
  }

  onRestart (node: number): void {
    const k = this.observerOf[node]!
    if (k >= 0) {
      const o = this.observers[k]!
      o.membership = this.#freshMembership(node, o.tracked)
    }
  }

  #stats (k: number, provider: number): { latencyMs: number | null, failures: number } {
    const o = this.observers[k]!
    let st = o.stats.get(provider)
    if (st === undefined) { st = { latencyMs: null, failures: 0 }; o.stats.set(provider, st) }
    return st
  }

  #failBack (provider: number, t: number, attempt: number): void {
    // connection refused: the requester hears of it after a round trip
    const sim = this.sim
    const task = this.tasks[t]!
    const d = sim.linkDelay(provider, task.requester)
    if (d >= 0) sim.schedule(sim.now + d, EV_TASK_FAIL, task.requester, t, attempt)
  }

  #tryNext (t: number): void {
    const sim = this.sim
    const task = this.tasks[t]!
    const o = this.observers[task.observer]!
    const left = o.providers.filter(p => !task.tried.includes(p))
    if (task.tried.length >= this.maxAttempts || left.length === 0) {
      task.done = true
      this.failed++
      return
    }
    const now = sim.now
    const candidates: ProviderCandidate[] = left.map(p => {
      const v = o.membership.view(`n${p}`, now)
      const st = o.stats.get(p)
      return {
        peerId: `n${p}`,
        latencyMs: st?.latencyMs ?? null,
        load: this.inflight[p]!,
        trust: v?.trust ?? 0.5,
        healthy: v === undefined || v.state === 'ACTIVE' || v.state === 'JOINING',
        failures: st?.failures ?? 0
      }
    })
    const best = Number(rankProviders(candidates)[0]!.slice(1))
    task.tried.push(best)
    task.provider = best
    task.attempt++
    this.attempts++
    if (task.attempt > 1) this.failovers++
    const attempt = task.attempt
    sim.schedule(now + this.attemptTimeoutMs, EV_TASK_FAIL, task.requester, t, attempt)
    sim.countSent(task.requester, K_TASK, TASK_BYTES + ENVELOPE_OVERHEAD)
    const d = sim.linkDelay(task.requester, best)
    if (d < 0) return // partitioned: the attempt times out
    sim.schedule(now + d, EV_TASK_ARRIVE, best, t, attempt)
  }
}
