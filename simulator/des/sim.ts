import type { Scenario } from '../scenario.ts'
import { LatencyHistogram, type FaultEvent, type FaultKind } from '../report/metrics.ts'
import { EventQueue } from './queue.ts'
import { Rng } from './rng.ts'
import { buildTopology, type Topology } from './topology.ts'

/**
 * The core of the discrete-event simulator: a virtual clock, the event queue, the modelled
 * network and the gossipsub model. Consensus, tasks, membership and faults live in their own
 * modules and use this core through `publish`, `schedule` and `linkDelay`.
 *
 * Network: a message from node a to node b takes the latency of their regions' link (intra- or
 * inter-region: mean +- uniform jitter). Links are TCP connections, so loss does not lose a
 * message: with the link's loss probability it pays one retransmission timeout,
 * max(200 ms, 3 x mean latency), as the real engine's link transport does (head-of-line
 * blocking of what follows on that connection is not modelled). While a partition cuts a
 * region off, every message across that region's border is dropped. Messages to a crashed
 * node are dropped.
 *
 * Gossipsub (per topic, after the v1.1 spec and js-gossipsub's defaults): a mesh of degree D
 * (D_lo..D_hi) kept by a heartbeat every second (drop dead and negatively scored peers, GRAFT
 * up to D when below D_lo, PRUNE down to D when above D_hi, refuse GRAFTs past D_hi); a
 * message's publisher floods it to every connected peer (floodPublish); a node forwards a
 * message it sees for the first time to its mesh and direct peers except the one it came
 * from; duplicates are counted and dropped (message-id dedup); each heartbeat sends IHAVE with
 * the ids it saw in the last `historyGossip` heartbeats to max(D_lazy, 0.25 x other peers)
 * random non-mesh peers, who IWANT what they lack and get it. GRAFT/PRUNE take effect at
 * once (they travel in the heartbeat; the one-way delay is not modelled) but are counted.
 *
 * Node state is typed arrays indexed by node; mesh lists are fixed D_hi-wide rows. A message
 * keeps 2 bits per node (seen; asked for by IWANT) until it is retired, 10+ s after
 * publication. Each node keeps, per topic, the message cache gossipsub keeps (mcache): a ring
 * of the last RING ids it saw with their arrival times, from which its IHAVEs are drawn (a
 * node that saw more than RING messages on one topic within the gossip window advertises only
 * the latest RING). A ring is one 512-byte block: its count, then its entries.
 */

export const EPOCH_MS = Date.parse('2025-01-01T00:00:00.000Z')

export const TOPICS = ['/bizra/1/node-info', '/bizra/1/patterns', '/bizra/1/votes'] as const
export const T_INFO = 0
export const T_PATTERNS = 1
export const T_VOTES = 2

// message kinds (gossip payloads), then control and point-to-point kinds for byte accounting
export const K_GOSSIP = 0
export const K_PROPOSAL = 1
export const K_VOTE = 2
export const K_CERT = 3
export const K_EVIDENCE = 4
export const K_FORGED = 5
export const K_IHAVE = 6
export const K_IWANT = 7
export const K_GRAFT = 8
export const K_PRUNE = 9
export const K_SPAM = 10
export const K_TASK = 11
export const K_HEARTBEAT = 12
export const KIND_NAMES = ['gossip', 'proposal', 'vote', 'certificate', 'evidence', 'forged-vote', 'ihave', 'iwant', 'graft', 'prune', 'spam', 'task', 'heartbeat'] as const

// event types
export const EV_DELIVER = 1
export const EV_IHAVE = 2
export const EV_GOSSIP_GEN = 3
export const EV_SPAM_GEN = 4
export const EV_SPAM_DELIVER = 5
export const EV_CRASH_GEN = 6
export const EV_RESTART = 7
export const EV_PARTITION = 8
export const EV_RETIRE = 9
/** events from 32 up belong to a module (consensus, tasks, membership) */
export const EV_MODULE = 32

const CONTROL_BYTES = 64
const IHAVE_BASE = 48
const MSG_ID_BYTES = 34
/** a PCI envelope around a payload: sender, ts, nonce, signature, gates, framing */
export const ENVELOPE_OVERHEAD = 360
const GOSSIP_FACTOR = 0.25
/** TCP's minimum retransmission timeout */
const MIN_RTO_MS = 200
/** slots for the IHAVE accelerator (messages beyond these are checked in their bitsets) */
const SLOTS = 128
const SLOT_WORDS = SLOTS / 32
/** mcache entries kept per node and topic */
const RING = 63
/** 8-byte slots per ring block: the count, then RING entries */
const RING_SLOTS = RING + 1

/** A module handles its own event types (EV_MODULE and up) and hears about crashes. */
export interface SimModule {
  onEvent: (type: number, node: number, a: number, b: number, t0: number) => void
  /** a gossip message this module published arrived at `node` for the first time (validated) */
  onMessage?: (node: number, msg: number, kind: number, from: number) => void
  onCrash?: (node: number) => void
  onRestart?: (node: number) => void
}

export interface GossipParams {
  D: number
  Dlo: number
  Dhi: number
  Dlazy: number
  heartbeatMs: number
  historyGossip: number
}

export class Sim {
  readonly scenario: Scenario
  /** the network's and gossip's draws (latency, loss, mesh and gossip peers) */
  readonly rng: Rng
  /** workload and faults draw from their own streams, so the same seed gives the same workload whatever the network does */
  readonly gossipGen: Rng
  readonly churnGen: Rng
  readonly spamGen: Rng
  readonly q: EventQueue
  readonly topo: Topology
  readonly n: number
  readonly R: number
  readonly gp: GossipParams
  now = 0
  events = 0
  /** wall ms spent in runUntil (the event loop proper, without set-up and reporting) */
  loopMs = 0
  readonly endMs: number

  // nodes
  readonly alive: Uint8Array
  aliveCount: number
  readonly crashedAt: Float64Array
  /** per node [sent msgs, sent bytes] and [received msgs, received bytes], pairs side by side */
  readonly sent: Float64Array
  readonly recv: Float64Array
  readonly kindMsgs = new Float64Array(KIND_NAMES.length)
  readonly kindBytes = new Float64Array(KIND_NAMES.length)

  // network
  readonly latMean: Float64Array
  readonly latJit: Float64Array
  readonly loss: Float64Array
  /** what a lost segment costs on each link: one retransmission timeout */
  readonly rto: Float64Array
  readonly cut: Int32Array
  dropLoss = 0
  dropPartition = 0
  dropDown = 0

  // gossip mesh: row (topic * n + node) of width Dhi
  readonly mesh: Int32Array
  readonly meshN: Uint8Array
  readonly hbOrder: Int32Array
  readonly hbPhase: Float64Array
  hbCycle = 0
  hbCursor = 0
  hbNext: number

  // messages
  msgCap = 1024
  msgCount = 0
  msgTopic = new Uint8Array(1024)
  msgKind = new Uint8Array(1024)
  msgPub = new Float64Array(1024)
  msgOrigin = new Int32Array(1024)
  msgSize = new Int32Array(1024)
  msgReached = new Int32Array(1024)
  msgAliveAt = new Int32Array(1024)
  /** per message, 2 bits per node: 1 seen, 2 asked for by IWANT (null once retired) */
  msgBits: Array<Uint8Array | null> = []
  msgObj: unknown[] = []
  readonly bitsPool: Uint8Array[] = []
  retireCursor = 0
  readonly retainMs: number
  readonly historyMs: number
  // mcache: per (topic, node) a block of RING_SLOTS 8-byte slots: slot 0 holds the count (in
  // ringId), slot 1 + (k mod RING) the k-th message id (ringId) and its arrival time (ringTime)
  /** entry k of ring r: id at ringId[2k], arrival time at ringTime[2k + 1] (one buffer, interleaved) */
  readonly ringId: Int32Array
  readonly ringTime: Float32Array
  // IHAVE accelerator: young messages get one of SLOTS slots, and each node a bit per slot it saw
  readonly seenMask: Uint32Array
  msgSlot = new Int16Array(1024)
  readonly slotFree: number[] = []

  // metrics
  readonly propagation: LatencyHistogram[]
  coverageSum = 0
  coverageMin = 1
  coverageCount = 0
  readonly faults: FaultEvent[] = []
  faultsDropped = 0
  crashes = 0
  restarts = 0

  // spam scoring (gossipsub P4): (receiver, spammer) -> invalid deliveries, decayed 0.9/s
  readonly spammerIndex: Int32Array
  spammerCount = 0
  readonly spamScore = new Map<number, { c: number, t: number }>()
  spamSent = 0
  spamRejected = 0
  graylistedBy = 0
  readonly spamRate: number[] = []

  readonly modules: SimModule[] = []
  readonly #moduleOf = new Map<number, SimModule>()
  readonly workStart: number
  readonly workEnd: number
  readonly gossipBytes: number

  // churn
  readonly meanDowntimeMs: number

  constructor (scenario: Scenario) {
    this.scenario = scenario
    this.rng = new Rng(scenario.seed)
    this.gossipGen = this.stream('gossip')
    this.churnGen = this.stream('churn')
    this.spamGen = this.stream('spam')
    this.topo = buildTopology(scenario, this.rng)
    const n = this.n = this.topo.n
    const R = this.R = scenario.regions.length
    this.q = new EventQueue(Math.min(1 << 22, Math.max(1 << 12, n * 4)))
    const g = scenario.gossip ?? {}
    const D = g.D ?? 6
    this.gp = { D, Dlo: g.Dlo ?? Math.min(4, D), Dhi: g.Dhi ?? Math.max(12, D), Dlazy: g.Dlazy ?? 6, heartbeatMs: g.heartbeatMs ?? 1000, historyGossip: g.historyGossip ?? 3 }
    this.endMs = scenario.durationS * 1000
    this.workStart = (scenario.workload.startS ?? Math.min(2, scenario.durationS / 10)) * 1000
    this.workEnd = (scenario.workload.endS ?? Math.max(this.workStart / 1000, scenario.durationS - Math.min(5, scenario.durationS / 4))) * 1000
    this.gossipBytes = scenario.workload.gossipBytes ?? 512

    this.alive = new Uint8Array(n).fill(1)
    this.aliveCount = n
    this.crashedAt = new Float64Array(n)
    this.sent = new Float64Array(2 * n)
    this.recv = new Float64Array(2 * n)

    this.latMean = new Float64Array(R * R)
    this.latJit = new Float64Array(R * R)
    this.loss = new Float64Array(R * R)
    this.rto = new Float64Array(R * R)
    let maxLat = 0
    for (let a = 0; a < R; a++) {
      for (let b = 0; b < R; b++) {
        const spec = a === b ? scenario.regions[a]! : scenario.interRegion
        this.latMean[a * R + b] = spec.latencyMs.mean
        this.latJit[a * R + b] = Math.min(spec.latencyMs.jitter, spec.latencyMs.mean)
        this.loss[a * R + b] = spec.loss
      }
    }
    for (const l of scenario.interRegion.links ?? []) {
      const a = scenario.regions.findIndex(r => r.name === l.between[0])
      const b = scenario.regions.findIndex(r => r.name === l.between[1])
      for (const k of [a * R + b, b * R + a]) {
        this.latMean[k] = l.latencyMs.mean
        this.latJit[k] = Math.min(l.latencyMs.jitter, l.latencyMs.mean)
        this.loss[k] = l.loss
      }
    }
    for (let k = 0; k < R * R; k++) {
      maxLat = Math.max(maxLat, this.latMean[k]! + this.latJit[k]!)
      this.rto[k] = Math.max(MIN_RTO_MS, 3 * this.latMean[k]!)
    }
    this.cut = new Int32Array(R)
    this.historyMs = this.gp.historyGossip * this.gp.heartbeatMs
    this.retainMs = Math.max(10_000, this.historyMs + 2 * this.gp.heartbeatMs + 40 * maxLat)

    const T = TOPICS.length
    const ringBuf = new ArrayBuffer(T * n * RING_SLOTS * 8)
    this.ringId = new Int32Array(ringBuf)
    this.ringTime = new Float32Array(ringBuf)
    this.seenMask = new Uint32Array((SLOTS / 32) * n)
    for (let k = SLOTS - 1; k >= 0; k--) this.slotFree.push(k)
    this.mesh = new Int32Array(T * n * this.gp.Dhi)
    this.meshN = new Uint8Array(T * n)

    // heartbeats: each node at its own phase; nodes kept sorted by phase (counting sort on ms)
    const hb = this.gp.heartbeatMs
    this.hbPhase = new Float64Array(n)
    const counts = new Int32Array(hb + 1)
    const phaseMs = new Int32Array(n)
    for (let i = 0; i < n; i++) { phaseMs[i] = this.rng.int(hb); counts[phaseMs[i]! + 1]!++ }
    for (let k = 0; k < hb; k++) counts[k + 1]! += counts[k]!
    this.hbOrder = new Int32Array(n)
    for (let i = 0; i < n; i++) { this.hbOrder[counts[phaseMs[i]!]!++] = i; this.hbPhase[i] = phaseMs[i]! }
    this.hbNext = this.hbPhase[this.hbOrder[0]!]!

    this.propagation = Array.from({ length: R }, () => new LatencyHistogram())
    this.spammerIndex = new Int32Array(n).fill(-1)

    const churn = scenario.churn
    this.meanDowntimeMs = churn !== undefined && churn.restartPerHour > 0 ? 3_600_000 / churn.restartPerHour : Infinity
    this.noChurn = new Uint8Array(n)
  }

  /** nodes that never crash: super-peers, and validators unless churn.includeValidators */
  readonly noChurn: Uint8Array
  churnEligible = new Int32Array(0)

  /** an independent random stream for one purpose, derived from the seed and its name */
  stream (name: string): Rng {
    let h = (this.scenario.seed ^ 0x9e3779b9) >>> 0
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0
    return new Rng(h)
  }

  /** Registers a module for event types [first, first + count). */
  register (m: SimModule, first: number, count: number): void {
    this.modules.push(m)
    for (let t = first; t < first + count; t++) this.#moduleOf.set(t, m)
  }

  /** Called once every module is registered: seeds the generators. */
  start (): void {
    const s = this.scenario
    const w = s.workload
    if (w.gossipPerS > 0) this.schedule(this.workStart + this.gossipGen.exp(1000 / w.gossipPerS), EV_GOSSIP_GEN, -1, 0, 0)
    s.partitions?.forEach((p, k) => {
      this.schedule(p.startS * 1000, EV_PARTITION, -1, k, 1)
      this.schedule(p.endS * 1000, EV_PARTITION, -1, k, 0)
    })
    const churn = s.churn
    if (churn !== undefined && churn.crashPerHour > 0) {
      const eligible: number[] = []
      for (let i = 0; i < this.n; i++) if (this.topo.isSuper[i] === 0 && this.noChurn[i] === 0) eligible.push(i)
      this.churnEligible = Int32Array.from(eligible)
      if (eligible.length > 0) this.#nextCrash()
    }
    for (let k = 0; k < this.spamRate.length; k++) {
      const rate = this.spamRate[k]!
      if (rate > 0) this.schedule(this.workStart + this.spamGen.exp(1000 / rate), EV_SPAM_GEN, -1, k, 0)
    }
    this.schedule(this.retainMs, EV_RETIRE, -1, 0, 0)
  }

  markSpammer (node: number, ratePerS: number): void {
    this.spammerIndex[node] = this.spammerCount++
    this.spamRate.push(ratePerS)
    this.spamNodes.push(node)
  }

  readonly spamNodes: number[] = []

  schedule (at: number, type: number, node: number, a: number, b: number, t0 = 0): void {
    this.q.push(at, type, node, a, b, t0)
  }

  fault (kind: FaultKind, detail: string): void {
    if (this.faults.length < 5000) this.faults.push({ t: Math.round(this.now * 1000) / 1000, kind, detail })
    else this.faultsDropped++
  }

  /** One-way delay of a message from a to b, or -1 when a partition drops it. */
  linkDelay (a: number, b: number): number {
    const region = this.topo.region
    const ra = region[a]!
    const rb = region[b]!
    if (ra !== rb && (this.cut[ra]! | this.cut[rb]!) !== 0) { this.dropPartition++; return -1 }
    const k = ra * this.R + rb
    const d = this.latMean[k]! + this.latJit[k]! * (2 * this.rng.next() - 1)
    const loss = this.loss[k]!
    if (loss > 0 && this.rng.next() < loss) { this.dropLoss++; return (d > 0.05 ? d : 0.05) + this.rto[k]! }
    return d > 0.05 ? d : 0.05
  }

  /** Counts a point-to-point message (task, heartbeat, control) sent a -> b. */
  count (a: number, b: number, kind: number, bytes: number): void {
    this.sent[2 * a]!++
    this.sent[2 * a + 1]! += bytes
    this.recv[2 * b]!++
    this.recv[2 * b + 1]! += bytes
    this.kindMsgs[kind]!++
    this.kindBytes[kind]! += bytes
  }

  countSent (a: number, kind: number, bytes: number): void {
    this.sent[2 * a]!++
    this.sent[2 * a + 1]! += bytes
    this.kindMsgs[kind]!++
    this.kindBytes[kind]! += bytes
  }

  countRecv (b: number, bytes: number): void {
    this.recv[2 * b]!++
    this.recv[2 * b + 1]! += bytes
  }

  /** one column of the per-node counters (0 sent msgs, 1 sent bytes, 2 received msgs, 3 received bytes) */
  column (k: number): Float64Array {
    const out = new Float64Array(this.n)
    const a = k < 2 ? this.sent : this.recv
    for (let i = 0; i < this.n; i++) out[i] = a[2 * i + (k & 1)]!
    return out
  }

  // ---- messages --------------------------------------------------------------------------

  #newMsg (topic: number, kind: number, origin: number, size: number, obj: unknown): number {
    if (this.msgCount === this.msgCap) {
      const cap = this.msgCap * 2
      const u8 = (x: Uint8Array): Uint8Array<ArrayBuffer> => { const y = new Uint8Array(cap); y.set(x); return y }
      const i32 = (x: Int32Array): Int32Array<ArrayBuffer> => { const y = new Int32Array(cap); y.set(x); return y }
      const f64 = (x: Float64Array): Float64Array<ArrayBuffer> => { const y = new Float64Array(cap); y.set(x); return y }
      this.msgTopic = u8(this.msgTopic)
      this.msgKind = u8(this.msgKind)
      this.msgPub = f64(this.msgPub)
      this.msgOrigin = i32(this.msgOrigin)
      this.msgSize = i32(this.msgSize)
      this.msgReached = i32(this.msgReached)
      this.msgAliveAt = i32(this.msgAliveAt)
      const slot = new Int16Array(cap); slot.set(this.msgSlot); this.msgSlot = slot
      this.msgCap = cap
    }
    const m = this.msgCount++
    this.msgTopic[m] = topic
    this.msgKind[m] = kind
    this.msgPub[m] = this.now
    this.msgOrigin[m] = origin
    this.msgSize[m] = size
    this.msgReached[m] = 1
    this.msgAliveAt[m] = this.aliveCount
    let bits = this.bitsPool.pop()
    if (bits === undefined) bits = new Uint8Array((this.n + 3) >> 2)
    else bits.fill(0)
    bits[origin >> 2]! |= 1 << ((origin & 3) << 1)
    const slot = this.slotFree.length > 0 ? this.slotFree.pop()! : -1
    this.msgSlot[m] = slot
    if (slot >= 0) this.seenMask[SLOT_WORDS * origin + (slot >> 5)]! |= 1 << (slot & 31)
    this.msgBits.push(bits)
    this.msgObj.push(obj)
    this.#cache(topic, origin, m)
    return m
  }

  /** puts message m in node i's mcache for topic t */
  #cache (t: number, i: number, m: number): void {
    const idx = t * this.n + i
    const head = 2 * idx * RING_SLOTS
    const c = this.ringId[head]!
    const pos = head + 2 * (1 + (c % RING))
    this.ringId[pos] = m
    this.ringTime[pos + 1] = this.now
    this.ringId[head] = c + 1
  }

  /** `origin` publishes a gossip message: floods it to every connected peer. Returns its id. */
  publish (origin: number, topic: number, kind: number, size: number, obj: unknown): number {
    const m = this.#newMsg(topic, kind, origin, size, obj)
    const { connOff, conn } = this.topo
    for (let k = connOff[origin]!, e = connOff[origin + 1]!; k < e; k++) {
      const p = conn[k]!
      if (this.spammerIndex[p]! >= 0 && this.#graylisted(origin, p)) continue
      this.#send(origin, p, m)
    }
    return m
  }

  #send (a: number, b: number, m: number): void {
    if (this.alive[b] === 0) return // the connection is gone
    const size = this.msgSize[m]!
    this.countSent(a, this.msgKind[m]!, size)
    const d = this.linkDelay(a, b)
    if (d < 0) return
    this.q.push(this.now + d, EV_DELIVER, b, m, a, 0)
  }

  #deliver (j: number, m: number, from: number): void {
    const bits = this.msgBits[m]
    if (bits === null || bits === undefined) return
    const bi = j >> 2
    const shift = (j & 3) << 1
    if (this.alive[j] === 0) {
      this.dropDown++
      bits[bi]! &= ~(2 << shift) // an IWANT answer lost: it may be asked for again
      return
    }
    const size = this.msgSize[m]!
    const rs = this.recv
    rs[2 * j]!++
    rs[2 * j + 1]! += size
    if (this.spammerCount > 0 && this.spammerIndex[from]! >= 0 && this.#graylisted(j, from)) return
    const v = bits[bi]!
    if ((v >> shift) & 1) return // duplicate
    bits[bi] = (v & ~(3 << shift)) | (1 << shift)
    const slot = this.msgSlot[m]!
    if (slot >= 0) this.seenMask[SLOT_WORDS * j + (slot >> 5)]! |= 1 << (slot & 31)
    const now = this.now
    const age = now - this.msgPub[m]!
    this.msgReached[m]!++
    const region = this.topo.region
    const rj = region[j]!
    this.propagation[rj]!.add(age)
    const kind = this.msgKind[m]!
    if (kind !== K_GOSSIP) {
      for (const mod of this.modules) mod.onMessage?.(j, m, kind, from)
    }
    // forward to mesh and direct peers: the link model inlined (this is the hot path)
    const topic = this.msgTopic[m]!
    this.#cache(topic, j, m)
    const Dhi = this.gp.Dhi
    const idx = topic * this.n + j
    const row = idx * Dhi
    const cnt = this.meshN[idx]!
    const mesh = this.mesh
    const alive = this.alive
    const R = this.R
    const rng = this.rng
    const q = this.q
    const latMean = this.latMean
    const latJit = this.latJit
    const lossM = this.loss
    const cut = this.cut
    let sent = 0
    for (let k = 0; k < cnt; k++) {
      const p = mesh[row + k]!
      if (p === from || alive[p] === 0) continue
      sent++
      const rp = region[p]!
      if (rp !== rj && (cut[rj]! | cut[rp]!) !== 0) { this.dropPartition++; continue }
      const lk = rj * R + rp
      let d = latMean[lk]! + latJit[lk]! * (2 * rng.next() - 1)
      if (d < 0.05) d = 0.05
      const loss = lossM[lk]!
      if (loss > 0 && rng.next() < loss) { this.dropLoss++; d += this.rto[lk]! }
      q.push(now + d, EV_DELIVER, p, m, j, 0)
    }
    this.sent[2 * j]! += sent
    this.sent[2 * j + 1]! += sent * size
    this.kindMsgs[kind]! += sent
    this.kindBytes[kind]! += sent * size
    if (this.topo.isSuper[j] === 1) {
      const { directOff, direct } = this.topo
      for (let k = directOff[j]!, e = directOff[j + 1]!; k < e; k++) {
        const p = direct[k]!
        if (p !== from) this.#send(j, p, m)
      }
    }
  }

  // ---- gossipsub heartbeat -----------------------------------------------------------------

  #inMesh (row: number, cnt: number, p: number): boolean {
    const mesh = this.mesh
    for (let k = 0; k < cnt; k++) if (mesh[row + k] === p) return true
    return false
  }

  #removeFromMesh (topic: number, node: number, p: number): void {
    const Dhi = this.gp.Dhi
    const idx = topic * this.n + node
    const row = idx * Dhi
    const cnt = this.meshN[idx]!
    const mesh = this.mesh
    for (let k = 0; k < cnt; k++) {
      if (mesh[row + k] === p) {
        mesh[row + k] = mesh[row + cnt - 1]!
        this.meshN[idx] = cnt - 1
        return
      }
    }
  }

  #heartbeat (i: number): void {
    if (this.alive[i] === 0) return
    const { connOff, conn, isSuper } = this.topo
    const off = connOff[i]!
    const deg = connOff[i + 1]! - off
    if (deg === 0) return
    const { D, Dlo, Dhi, Dlazy } = this.gp
    const n = this.n
    const mesh = this.mesh
    const meshN = this.meshN
    const alive = this.alive
    const rng = this.rng
    const spamming = this.spammerCount > 0
    const superI = isSuper[i] === 1
    for (let t = 0; t < TOPICS.length; t++) {
      const idx = t * n + i
      const row = idx * Dhi
      let cnt = meshN[idx]!
      // 1. prune negatively scored peers (crashed ones left the mesh when their connection closed)
      if (spamming) {
        for (let k = 0; k < cnt;) {
          const p = mesh[row + k]!
          if (this.spammerIndex[p]! >= 0 && this.#score(i, p) < 0) {
            mesh[row + k] = mesh[row + cnt - 1]!
            cnt--
            this.#removeFromMesh(t, p, i)
            this.count(i, p, K_PRUNE, CONTROL_BYTES)
          } else k++
        }
        meshN[idx] = cnt
      }
      // 2. GRAFT up to D
      if (cnt < Dlo) {
        let tries = (D - cnt) * 3
        while (cnt < D && tries-- > 0) {
          const p = conn[off + ((rng.next() * deg) | 0)]!
          if (alive[p] === 0 || (superI && isSuper[p] === 1) || this.#inMesh(row, cnt, p)) continue
          if (spamming && this.spammerIndex[p]! >= 0 && this.#score(i, p) < 0) continue
          this.count(i, p, K_GRAFT, CONTROL_BYTES)
          const pidx = t * n + p
          if (meshN[pidx]! >= Dhi || (spamming && this.spammerIndex[i]! >= 0 && this.#score(p, i) < 0)) {
            this.count(p, i, K_PRUNE, CONTROL_BYTES) // refused
            continue
          }
          mesh[row + cnt++] = p
          mesh[pidx * Dhi + meshN[pidx]!] = i
          meshN[pidx]!++
        }
        meshN[idx] = cnt
      }
      // 3. PRUNE down to D
      if (cnt > Dhi) {
        while (cnt > D) {
          const k = (rng.next() * cnt) | 0
          const p = mesh[row + k]!
          mesh[row + k] = mesh[row + cnt - 1]!
          cnt--
          this.#removeFromMesh(t, p, i)
          this.count(i, p, K_PRUNE, CONTROL_BYTES)
        }
        meshN[idx] = cnt
      }
      // 4. IHAVE to random non-mesh peers, when there is something to gossip about
      if (Dlazy > 0) {
        const ids = this.#windowCount(t, i, this.now)
        if (ids > 0) {
          const others = deg - cnt
          const targets = Math.min(others, Math.max(Dlazy, Math.floor(GOSSIP_FACTOR * others)))
          let sent = 0
          let tries = targets * 3
          const bytes = IHAVE_BASE + MSG_ID_BYTES * ids
          while (sent < targets && tries-- > 0) {
            const p = conn[off + ((rng.next() * deg) | 0)]!
            if (alive[p] === 0 || (superI && isSuper[p] === 1) || this.#inMesh(row, cnt, p)) continue
            sent++
            this.countSent(i, K_IHAVE, bytes)
            const d = this.linkDelay(i, p)
            if (d >= 0) this.q.push(this.now + d, EV_IHAVE, p, i, t | (Math.min(ids, 1 << 20) << 4), this.now)
          }
        }
      }
    }
  }

  /** how many message ids node i holds in its gossip window for topic t at time `at` */
  #windowCount (t: number, i: number, at: number): number {
    const idx = t * this.n + i
    const head = 2 * idx * RING_SLOTS
    const c = this.ringId[head]!
    if (c === 0) return 0
    const from = at - this.historyMs
    const ringTime = this.ringTime
    let k = 0
    const max = c < RING ? c : RING
    while (k < max && ringTime[head + 2 * (1 + ((c - 1 - k) % RING)) + 1]! > from) k++
    return k
  }

  #ihave (p: number, i: number, tb: number, sentAt: number): void {
    if (this.alive[p] === 0) { this.dropDown++; return }
    const t = tb & 15
    this.countRecv(p, IHAVE_BASE + MSG_ID_BYTES * (tb >> 4))
    if (this.spammerIndex[i]! >= 0 && this.#graylisted(p, i)) return
    const idx = t * this.n + i
    const head = 2 * idx * RING_SLOTS
    const c = this.ringId[head]!
    const from = sentAt - this.historyMs
    const max = c < RING ? c : RING
    const pi = p >> 2
    const pshift = (p & 3) << 1
    let wants = 0
    let iDelay = -2
    const maskBase = SLOT_WORDS * p
    const seenMask = this.seenMask
    for (let k = 0; k < max; k++) {
      const pos = head + 2 * (1 + ((c - 1 - k) % RING))
      const got = this.ringTime[pos + 1]!
      if (got <= from) break
      if (got > sentAt) continue // i got it after it sent the IHAVE
      const m = this.ringId[pos]!
      const slot = this.msgSlot[m]!
      if (slot >= 0 && (seenMask[maskBase + (slot >> 5)]! & (1 << (slot & 31))) !== 0) continue // p has it: the usual case
      const bits = this.msgBits[m]
      if (bits === null || bits === undefined) continue
      if (((bits[pi]! >> pshift) & 3) !== 0) continue // p has it, or asked for it
      if (wants === 0) {
        // one IWANT for all the ids wanted (its size is counted per id below)
        this.count(p, i, K_IWANT, IHAVE_BASE)
        iDelay = this.alive[i] === 1 ? this.linkDelay(p, i) : -1
      }
      wants++
      this.sent[2 * p + 1]! += MSG_ID_BYTES
      this.recv[2 * i + 1]! += MSG_ID_BYTES
      this.kindBytes[K_IWANT]! += MSG_ID_BYTES
      if (iDelay < 0) continue
      // i answers with the message
      this.countSent(i, this.msgKind[m]!, this.msgSize[m]!)
      const back = this.linkDelay(i, p)
      if (back < 0) continue
      bits[pi]! |= 2 << pshift
      this.q.push(this.now + iDelay + back, EV_DELIVER, p, m, i, 0)
    }
  }

  // ---- spam and peer score ------------------------------------------------------------------

  #scoreEntry (j: number, s: number): { c: number, t: number } | undefined {
    const e = this.spamScore.get(j * this.spammerCount + this.spammerIndex[s]!)
    if (e !== undefined) {
      const steps = Math.floor((this.now - e.t) / 1000)
      if (steps > 0) {
        e.c *= Math.pow(0.9, steps)
        if (e.c < 0.1) e.c = 0
        e.t += steps * 1000
      }
    }
    return e
  }

  /** gossipsub score node j gives spammer s: P4 = -10 x (invalid deliveries)^2 */
  #score (j: number, s: number): number {
    const e = this.#scoreEntry(j, s)
    return e === undefined ? 0 : -10 * e.c * e.c
  }

  #graylisted (j: number, s: number): boolean {
    return this.#score(j, s) < -80
  }

  #spamDeliver (j: number, s: number): void {
    if (this.alive[j] === 0) { this.dropDown++; return }
    this.countRecv(j, 200)
    if (this.#graylisted(j, s)) return // ignored without validation
    this.spamRejected++
    const key = j * this.spammerCount + this.spammerIndex[s]!
    let e = this.#scoreEntry(j, s)
    if (e === undefined) { e = { c: 0, t: this.now }; this.spamScore.set(key, e) }
    e.c += 1
    if (-10 * e.c * e.c < -80 && -10 * (e.c - 1) * (e.c - 1) >= -80) this.graylistedBy++
    for (const mod of this.modules) mod.onMessage?.(j, -1, K_SPAM, s)
  }

  // ---- faults ------------------------------------------------------------------------------

  #nextCrash (): void {
    const churn = this.scenario.churn!
    const rate = (churn.crashPerHour / 3_600_000) * this.churnEligible.length // per ms
    this.schedule(this.now + this.churnGen.exp(1 / rate), EV_CRASH_GEN, -1, 0, 0)
  }

  crash (node: number): void {
    if (this.alive[node] === 0) return
    this.alive[node] = 0
    this.aliveCount--
    this.crashedAt[node] = this.now
    this.crashes++
    // its peers see the connections close (a killed process's sockets are reset at once) and
    // drop it from their meshes; its own state is gone
    for (let t = 0; t < TOPICS.length; t++) {
      const idx = t * this.n + node
      const row = idx * this.gp.Dhi
      for (let k = 0; k < this.meshN[idx]!; k++) this.#removeFromMesh(t, this.mesh[row + k]!, node)
      this.meshN[idx] = 0
      this.ringId[2 * idx * RING_SLOTS] = 0
    }
    this.fault('crash', `node ${node}`)
    for (const m of this.modules) m.onCrash?.(node)
    if (Number.isFinite(this.meanDowntimeMs)) this.schedule(this.now + this.churnGen.exp(this.meanDowntimeMs), EV_RESTART, node, 0, 0)
  }

  restart (node: number): void {
    if (this.alive[node] === 1) return
    this.alive[node] = 1
    this.aliveCount++
    this.restarts++
    this.fault('restart', `node ${node}`)
    for (const m of this.modules) m.onRestart?.(node)
  }

  #partition (k: number, on: boolean): void {
    const p = this.scenario.partitions![k]!
    for (const name of p.regions) {
      const r = this.scenario.regions.findIndex(x => x.name === name)
      this.cut[r]! += on ? 1 : -1
    }
    this.fault(on ? 'partition-start' : 'partition-end', p.regions.join(','))
  }

  #retire (): void {
    const limit = this.now - this.retainMs
    while (this.retireCursor < this.msgCount && this.msgPub[this.retireCursor]! <= limit) {
      this.#retireOne(this.retireCursor++)
    }
  }

  #retireOne (m: number): void {
    const bits = this.msgBits[m]
    if (bits === null || bits === undefined) return
    if (this.msgKind[m] !== K_SPAM) {
      const share = Math.min(1, this.msgReached[m]! / Math.max(1, this.msgAliveAt[m]!))
      this.coverageSum += share
      this.coverageCount++
      if (share < this.coverageMin) this.coverageMin = share
    }
    this.msgBits[m] = null
    this.msgObj[m] = undefined
    const slot = this.msgSlot[m]!
    if (slot >= 0) {
      const w = slot >> 5
      const clear = ~(1 << (slot & 31))
      const mask = this.seenMask
      for (let i = w; i < mask.length; i += SLOT_WORDS) mask[i]! &= clear
      this.msgSlot[m] = -1
      this.slotFree.push(slot)
    }
    if (this.bitsPool.length < 256) this.bitsPool.push(bits)
  }

  /** retires every message still held (end of run), so coverage counts them all */
  retireAll (): void {
    while (this.retireCursor < this.msgCount) this.#retireOne(this.retireCursor++)
  }

  // ---- the loop ----------------------------------------------------------------------------

  #dispatch (type: number, node: number, a: number, b: number, t0: number): void {
    switch (type) {
      case EV_DELIVER: this.#deliver(node, a, b); return
      case EV_IHAVE: this.#ihave(node, a, b, t0); return
      case EV_GOSSIP_GEN: {
        const w = this.scenario.workload
        if (this.now > this.workEnd) return
        let origin = this.gossipGen.int(this.n)
        for (let k = 0; k < 8 && this.alive[origin] === 0; k++) origin = this.gossipGen.int(this.n)
        if (this.alive[origin] === 1) this.publish(origin, T_INFO, K_GOSSIP, this.gossipBytes + ENVELOPE_OVERHEAD, null)
        this.schedule(this.now + this.gossipGen.exp(1000 / w.gossipPerS), EV_GOSSIP_GEN, -1, 0, 0)
        return
      }
      case EV_SPAM_GEN: {
        if (this.now > this.workEnd) return
        const s = this.spamNodes[a]!
        if (this.alive[s] === 1) {
          this.spamSent++
          const { connOff, conn } = this.topo
          for (let k = connOff[s]!, e = connOff[s + 1]!; k < e; k++) {
            const p = conn[k]!
            if (this.alive[p] === 0) continue
            this.countSent(s, K_SPAM, 200)
            const d = this.linkDelay(s, p)
            if (d >= 0) this.q.push(this.now + d, EV_SPAM_DELIVER, p, s, 0, 0)
          }
          if (this.spamSent <= 3 || this.spamSent % 100 === 0) this.fault('spam', `node ${s}`)
        }
        this.schedule(this.now + this.spamGen.exp(1000 / this.spamRate[a]!), EV_SPAM_GEN, -1, a, 0)
        return
      }
      case EV_SPAM_DELIVER: this.#spamDeliver(node, a); return
      case EV_CRASH_GEN: {
        const el = this.churnEligible
        let v = el[this.churnGen.int(el.length)]!
        for (let k = 0; k < 8 && this.alive[v] === 0; k++) v = el[this.churnGen.int(el.length)]!
        this.crash(v)
        this.#nextCrash()
        return
      }
      case EV_RESTART: this.restart(node); return
      case EV_PARTITION: this.#partition(a, b === 1); return
      case EV_RETIRE:
        this.#retire()
        this.schedule(this.now + 1000, EV_RETIRE, -1, 0, 0)
        return
      default: {
        const m = this.#moduleOf.get(type)
        if (m === undefined) throw new Error(`no handler for event type ${type}`)
        m.onEvent(type, node, a, b, t0)
      }
    }
  }

  /**
   * Runs events in time order until the clock passes `until` or `budget` events ran.
   * Returns true when the run reached `until`.
   */
  runUntil (until: number, budget: number): boolean {
    const t = performance.now()
    try {
      return this.#run(until, budget)
    } finally {
      this.loopMs += performance.now() - t
    }
  }

  #run (until: number, budget: number): boolean {
    const q = this.q
    const hbMs = this.gp.heartbeatMs
    const order = this.hbOrder
    const phase = this.hbPhase
    const n = this.n
    let left = budget
    while (left-- > 0) {
      const qt = q.peekTime()
      const ht = this.hbNext
      if (qt <= ht) {
        if (qt > until) { this.now = until; return true }
        this.now = qt
        q.pop()
        this.#dispatch(q.type, q.node, q.a, q.b, q.t0)
      } else {
        if (ht > until) { this.now = until; return true }
        this.now = ht
        this.#heartbeat(order[this.hbCursor]!)
        if (++this.hbCursor === n) { this.hbCursor = 0; this.hbCycle++ }
        this.hbNext = this.hbCycle * hbMs + phase[order[this.hbCursor]!]!
      }
      this.events++
    }
    return false
  }
}
