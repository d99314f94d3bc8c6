import type { MessagePort } from 'node:worker_threads'
import { MemoryLevel } from 'memory-level'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { BizraNode, type NodeDb } from '../../src/node/node.ts'
import { DEFAULT_CONFIG } from '../../src/node/config.ts'
import type { Genesis } from '../../src/node/genesis.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { TOPICS } from '../../src/net/protocols.ts'
import { ENVELOPE_TYPES } from '../../src/consensus/service.ts'
import { proposalDigest, signVote } from '../../src/consensus/crypto.ts'
import { createEnvelope } from '../../src/pci/envelope.ts'
import type { Decision, Proposal } from '../../src/consensus/types.ts'
import type { AgentCard } from '../../src/a2a/types.ts'
import type { LatencySpec, Scenario } from '../scenario.ts'
import { Rng } from '../des/rng.ts'
import type { Topology } from '../des/topology.ts'
import { LinkBridge, simLinks, type LinkModel } from './links.ts'

/**
 * A share of a `real` federation: the full BizraNodes of one thread (a worker, or the engine's
 * own thread for a small run) and their links. The engine (engine.ts) decides what happens
 * (workload, faults) and sends commands; a host carries them out on its nodes and reports what
 * its nodes observe as events stamped with the shared clock, from which the engine computes
 * the metrics. Links to nodes of other hosts go through LinkBridges (links.ts).
 */

export const SKILL = 'sim-work'
export const GOSSIP_TYPE = 'sim.gossip'

/** ms on a clock every thread of the process shares (performance.now() is per thread) */
export const clock = (): number => performance.timeOrigin + performance.now()

export interface HostInit {
  /** this host's index and how many hosts there are */
  index: number
  hosts: number
  /** tells this run's addresses from those of another run in the same thread */
  run: string
  scenario: Scenario
  /** wall ms per simulated ms */
  k: number
  swarmKey: Uint8Array
  peerIds: string[]
  topo: Topology
  /** node -> host index */
  hostOf: Int32Array
  validators: number[]
  byzantine: Array<[number, string]>
  providers: number[]
  genesis: Genesis
}

export type HostCommand =
  | { op: 'start', phases: number[] }
  | { op: 'dial' }
  | { op: 'learn', cards: AgentCard[] }
  | { op: 'gossip', node: number, id: string, bytes: number }
  | { op: 'propose', node: number, id: string, snr: number }
  | { op: 'task', node: number, text: string }
  | { op: 'spam', node: number, seq: number }
  | { op: 'crash', node: number }
  | { op: 'restart', node: number }
  | { op: 'cut', keys: string[], on: boolean }
  | { op: 'stop' }

/** Per-node traffic and link counters, reported once at the end. */
export interface HostTotals {
  /** link chunks and bytes sent and received per node (whole federation, as seen by this host's senders) */
  sentChunks: Float64Array
  recvChunks: Float64Array
  sentBytes: Float64Array
  recvBytes: Float64Array
  /** verified gossip messages delivered to each node */
  delivered: Float64Array
  chunks: number
  bytes: number
  retransmits: number
}

export type HostEvent =
  /** with the agent cards of this host's providers */
  | { e: 'started', cards: AgentCard[] }
  | { e: 'dialed', connections: number, missing: number }
  | { e: 'learned' }
  /**
   * every 500 ms: elu, the event loop's busy share; busyMs and cpuMs, the busy wall time and the
   * thread's CPU time since the last stats (busy time with no CPU: the thread was ready to run and
   * the machine ran something else)
   */
  | { e: 'stats', delivered: number, elu: number, busyMs: number, cpuMs: number, connections: number }
  | { e: 'published', id: string, t: number }
  | { e: 'reached', id: string, node: number, t: number }
  | { e: 'proposed', id: string, t: number }
  | { e: 'committed', id: string, node: number, decision: string, t: number }
  | { e: 'expired', id: string }
  | { e: 'rejected', code: string }
  | { e: 'equivocation' }
  | { e: 'member', kind: 'suspect' | 'dead', peer: string, t: number }
  | { e: 'task', ok: boolean, start: number, end: number, attempts: number, error?: string }
  | { e: 'fault', kind: 'equivocate' | 'forge', detail: string, t: number }
  | { e: 'withheld' }
  | { e: 'spam' }
  | { e: 'stopped', totals: HostTotals }
  /** a command failed: the run cannot go on */
  | { e: 'error', message: string }
  /** something went wrong that the nodes survive (logged with SIM_DEBUG) */
  | { e: 'warning', message: string }

export const cutKey = (a: number, b: number): string => a < b ? `${a}:${b}` : `${b}:${a}`

export function linkSpec (s: Scenario, a: number, b: number): { latency: LatencySpec, loss: number } {
  if (a === b) return { latency: s.regions[a]!.latencyMs, loss: s.regions[a]!.loss }
  const names = [s.regions[a]!.name, s.regions[b]!.name]
  const link = s.interRegion.links?.find(l => l.between.includes(names[0]!) && l.between.includes(names[1]!))
  return link !== undefined ? { latency: link.latencyMs, loss: link.loss } : { latency: s.interRegion.latencyMs, loss: s.interRegion.loss }
}

/** The 32-byte seed of node i's identity: the same in every thread. */
export function identitySeed (seed: number, i: number): Uint8Array {
  const b = new Uint8Array(32)
  new DataView(b.buffer).setUint32(0, seed >>> 0)
  new DataView(b.buffer).setUint32(4, i)
  b[8] = 0x51
  return b
}

export class NodeHost {
  readonly #init: HostInit
  readonly #emit: (e: HostEvent) => void
  readonly #s: Scenario
  readonly #k: number
  readonly #topo: Topology
  readonly #rng: Rng
  readonly #model: LinkModel
  readonly #bridges = new Map<number, LinkBridge>()
  readonly #indexByPeer: Map<string, number>
  readonly #mine: number[]
  readonly #nodes: Array<BizraNode | undefined>
  readonly #dbs: Array<MemoryLevel<string, string> | undefined>
  readonly #ids = new Map<number, NodeIdentity>()
  readonly #cuts = new Set<string>()
  readonly #providers: Set<number>
  readonly #byzantine: Map<number, string>
  readonly #totals: HostTotals
  #deliveredAll = 0
  /** the providers' agent cards, once they offer the skill (see #learnProviders) */
  #providerCards: AgentCard[] = []
  #stats: NodeJS.Timeout | undefined
  #elu = performance.eventLoopUtilization()
  #cpu = process.threadCpuUsage()
  #stopped = false
  readonly #stopping = new Map<number, Promise<void>>()

  constructor (init: HostInit, emit: (e: HostEvent) => void) {
    this.#init = init
    this.#emit = emit
    this.#s = init.scenario
    this.#k = init.k
    this.#topo = init.topo
    const n = init.topo.n
    this.#rng = new Rng((init.scenario.seed ^ Math.imul(init.index + 1, 0x9e3779b1)) >>> 0)
    this.#indexByPeer = new Map(init.peerIds.map((p, i) => [p, i]))
    this.#mine = []
    for (let i = 0; i < n; i++) if (init.hostOf[i] === init.index) this.#mine.push(i)
    this.#nodes = new Array(n).fill(undefined)
    this.#dbs = new Array(n).fill(undefined)
    this.#providers = new Set(init.providers)
    this.#byzantine = new Map(init.byzantine)
    this.#totals = {
      sentChunks: new Float64Array(n),
      recvChunks: new Float64Array(n),
      sentBytes: new Float64Array(n),
      recvBytes: new Float64Array(n),
      delivered: new Float64Array(n),
      chunks: 0,
      bytes: 0,
      retransmits: 0
    }
    const R = this.#s.regions.length
    const specs = Array.from({ length: R * R }, (_, x) => {
      const spec = linkSpec(this.#s, Math.floor(x / R), x % R)
      return { latency: { mean: spec.latency.mean * this.#k, jitter: spec.latency.jitter * this.#k }, loss: spec.loss }
    })
    const t = this.#totals
    const stats = { chunks: 0, bytes: 0, retransmits: 0 }
    this.#model = {
      indexOf: p => this.#indexByPeer.get(p),
      regionOf: i => this.#topo.region[i]!,
      latency: (a, b) => specs[a * R + b]!.latency,
      loss: (a, b) => specs[a * R + b]!.loss,
      cut: (a, b) => a !== b && this.#cuts.has(cutKey(a, b)),
      random: () => this.#rng.next(),
      remote: address => {
        const m = /-(\d+)$/.exec(address)
        const i = m === null ? -1 : Number(m[1])
        if (!(i >= 0 && i < n) || address !== this.#address(i)) return undefined
        const bridge = this.#bridges.get(init.hostOf[i]!)
        return bridge === undefined ? undefined : { peerId: init.peerIds[i]!, bridge }
      },
      onSend: (from, to, bytes) => {
        t.sentChunks[from]!++
        t.sentBytes[from]! += bytes
        t.recvChunks[to]!++
        t.recvBytes[to]! += bytes
      },
      stats
    }
  }

  /** The MessagePort to host `other` (the engine made one per pair of hosts). */
  attachBridge (other: number, port: MessagePort): void {
    this.#bridges.set(other, new LinkBridge(port, this.#model, this.#init.index < other))
  }

  handle (cmd: HostCommand): void {
    const done = (p: Promise<unknown>): void => { p.catch(err => this.#emit({ e: 'error', message: `${cmd.op}: ${(err as Error).stack ?? String(err)}` })) }
    switch (cmd.op) {
      case 'start': done(this.#startAll(cmd.phases)); break
      case 'dial': done(this.#dialTopology()); break
      case 'learn':
        this.#providerCards = cmd.cards
        done(this.#learnAll())
        break
      case 'gossip': this.#gossip(cmd.node, cmd.id, cmd.bytes); break
      case 'propose': this.#propose(cmd.node, cmd.id, cmd.snr); break
      case 'task': this.#task(cmd.node, cmd.text); break
      case 'spam': this.#spam(cmd.node, cmd.seq); break
      case 'crash': done(this.#crash(cmd.node)); break
      case 'restart': done(this.#restart(cmd.node)); break
      case 'cut': this.#cut(cmd.keys, cmd.on); break
      case 'stop': done(this.#stop()); break
    }
  }

  #address (i: number): string {
    return `/memory/bizra-sim-${this.#init.run}-${i}`
  }

  #wall (simMs: number): number {
    return simMs * this.#k
  }

  // ---- nodes ---------------------------------------------------------------------------------

  async #startAll (phases: number[]): Promise<void> {
    // nodes start spread over one membership heartbeat (phases, ms), as nodes of a federation
    // start at different times: their heartbeats, gossipsub heartbeats and other periodic
    // work then fall at different moments instead of all in one tick
    const t0 = performance.now()
    await Promise.all(this.#mine.map(async (i, x) => {
      const wait = t0 + (phases[x] ?? 0) - performance.now()
      if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
      await this.#startNode(i)
    }))
    this.#stats = setInterval(() => {
      const elu = performance.eventLoopUtilization(this.#elu)
      this.#elu = performance.eventLoopUtilization()
      const cpu = process.threadCpuUsage(this.#cpu)
      this.#cpu = process.threadCpuUsage()
      let connections = 0
      for (const i of this.#mine) connections += this.#nodes[i]?.libp2p.getConnections().length ?? 0
      this.#emit({ e: 'stats', delivered: this.#deliveredAll, elu: elu.utilization, busyMs: elu.active, cpuMs: (cpu.user + cpu.system) / 1000, connections })
    }, 500)
    const cards: AgentCard[] = []
    for (const i of this.#mine) if (this.#providers.has(i)) cards.push(this.#nodes[i]!.a2a.agentCard())
    this.#emit({ e: 'started', cards })
  }

  async #identity (i: number): Promise<NodeIdentity> {
    let id = this.#ids.get(i)
    if (id === undefined) {
      id = await NodeIdentity.fromSeed(identitySeed(this.#s.seed, i))
      this.#ids.set(i, id)
    }
    return id
  }

  async #startNode (i: number): Promise<BizraNode> {
    let db = this.#dbs[i]
    if (db === undefined) {
      db = new MemoryLevel<string, string>()
      this.#dbs[i] = db
    }
    await db.open()
    const s = this.#s
    const node = await BizraNode.create({
      identity: await this.#identity(i),
      swarmKey: this.#init.swarmKey,
      genesis: this.#init.genesis,
      config: {
        ...DEFAULT_CONFIG,
        listen: [this.#address(i)],
        bootstrap: [],
        api: null,
        heartbeatMs: Math.round(this.#wall(s.membership?.heartbeatMs ?? 10_000)),
        proposalTimeoutMs: Math.round(this.#wall(s.consensus.timeoutMs ?? 30_000))
      },
      // the node closes its store on stop; a restart reopens the same one, as a disk would be
      db: { ...dbView(db), close: async () => {} },
      transport: simLinks(this.#model),
      dht: false,
      libp2pMetrics: false,
      // super-peers are gossipsub direct peers of one another, as in the des engine's topology
      directPeers: this.#direct(i).map(j => ({ id: peerIdOf(this.#init.peerIds[j]!), addrs: [multiaddr(this.#address(j))] })),
      logger: false,
      ipc: false,
      // the engine already runs a worker thread per core: a verification thread per worker
      // would only take turns with them (it doubled the time hosts waited for a CPU)
      gossipVerify: 'inline'
    })
    this.#nodes[i] = node
    this.#observe(i, node)
    this.#offer(i)
    this.#byzantineSetup(i, node)
    return node
  }

  /** A provider offers the scenario's skill from its start, so its card and the digest its heartbeats carry never change. */
  #offer (i: number): void {
    const node = this.#nodes[i]
    if (node === undefined || !this.#providers.has(i) || node.skills.list().some(x => x.id === SKILL)) return
    const service = this.#s.workload.taskServiceMs ?? { mean: 50, jitter: 25 }
    node.skills.register({ id: SKILL, name: 'Simulated work', description: 'sleeps the scenario\'s service time', tags: ['sim'], inputModes: ['text/plain'], outputModes: ['text/plain'] }, async (m, ctx) => {
      const ms = Math.max(0, service.mean + (this.#rng.next() * 2 - 1) * service.jitter)
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, this.#wall(ms))
        ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(ctx.signal.reason) }, { once: true })
      })
      return { parts: m.parts }
    })
  }

  async #learnAll (): Promise<void> {
    for (const i of this.#mine) await this.#learnProviders(i)
    this.#emit({ e: 'learned' })
  }

  /**
   * The simulator's nodes run without the DHT, whose provider records would tell a requester
   * where a provider listens: in their place each node is told, once connected, the providers'
   * addresses and agent cards, so a task can go to any provider (as in the des engine), not
   * only to a neighbour. The cards matter: a card a provider gossips when it starts reaches no
   * one (it has no connection yet), and a node that knows a peer's address but not the card its
   * heartbeats announce dials that peer to fetch it, so addresses alone would connect every
   * node to every provider (simulator/README.md).
   */
  async #learnProviders (i: number): Promise<void> {
    const node = this.#nodes[i]
    if (node === undefined) return
    const now = Date.now()
    for (const card of this.#providerCards) {
      const p = this.#indexByPeer.get(card.peerId)
      if (p === undefined || p === i) continue
      if (node.a2a.directory.card(card.peerId, now) === undefined) node.a2a.directory.upsert(card, now)
      await node.libp2p.peerStore.merge(peerIdOf(card.peerId), { multiaddrs: [multiaddr(this.#address(p))] }).catch(() => {})
    }
  }

  #observe (i: number, node: BizraNode): void {
    const t = this.#totals
    node.gossip.onMessage(m => {
      this.#deliveredAll++
      t.delivered[i]!++
      if (m.envelope.type !== GOSSIP_TYPE) return
      const p = m.envelope.payload as { id?: unknown }
      if (typeof p?.id === 'string') this.#emit({ e: 'reached', id: p.id, node: i, t: clock() })
    })
    node.onEvent(e => {
      switch (e.type) {
        case 'message:rejected': this.#emit({ e: 'rejected', code: e.code }); break
        case 'pattern:equivocation': this.#emit({ e: 'equivocation' }); break
        case 'pattern:committed': this.#emit({ e: 'committed', id: e.id, node: i, decision: e.decision, t: clock() }); break
        case 'pattern:expired': this.#emit({ e: 'expired', id: e.id }); break
        case 'peer:suspect':
        case 'peer:dead': this.#emit({ e: 'member', kind: e.type === 'peer:suspect' ? 'suspect' : 'dead', peer: e.peerId, t: clock() }); break
        default: break
      }
    })
  }

  #direct (i: number): number[] {
    const { directOff, direct } = this.#topo
    const out: number[] = []
    for (let k = directOff[i]!; k < directOff[i + 1]!; k++) out.push(direct[k]!)
    return out
  }

  #neighbours (i: number): number[] {
    const { connOff, conn } = this.#topo
    const out = new Set<number>(this.#direct(i))
    for (let k = connOff[i]!; k < connOff[i + 1]!; k++) out.add(conn[k]!)
    return [...out]
  }

  async #dial (i: number, j: number): Promise<boolean> {
    const a = this.#nodes[i]
    if (a === undefined) return false
    try {
      await a.libp2p.dial(multiaddr(`${this.#address(j)}/p2p/${this.#init.peerIds[j]!}`), { signal: AbortSignal.timeout(Math.max(10_000, this.#wall(4_000))) })
      return true
    } catch {
      return false
    }
  }

  #connected (i: number, j: number): boolean {
    const a = this.#nodes[i]
    const peer = this.#init.peerIds[j]!
    return a !== undefined && a.libp2p.getConnections().some(c => c.remotePeer.toString() === peer && c.status === 'open')
  }

  /**
   * Dials the topology's edges this host owns (i here, i < j), a bounded number at a time, and
   * again for those that failed: a node refuses inbound upgrades past 10 pending at once, and a
   * dial can time out while thousands of handshakes share two cores.
   */
  async #dialEdges (which: (i: number, j: number) => boolean, rounds: number): Promise<number> {
    let jobs: Array<[number, number]> = []
    for (const i of this.#mine) for (const j of this.#neighbours(i)) if (i < j && which(i, j)) jobs.push([i, j])
    // in random order, so no node meets all its inbound dials at once
    for (let x = jobs.length - 1; x > 0; x--) {
      const y = this.#rng.int(x + 1)
      const t = jobs[x]!; jobs[x] = jobs[y]!; jobs[y] = t
    }
    for (let round = 0; round < rounds && jobs.length > 0 && !this.#stopped; round++) {
      const failed: Array<[number, number]> = []
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < jobs.length) {
          const [i, j] = jobs[next++]!
          if (this.#connected(i, j)) continue
          if (!await this.#dial(i, j) && !this.#connected(i, j)) failed.push([i, j])
        }
      }
      await Promise.all(Array.from({ length: 32 }, worker))
      jobs = failed
      if (jobs.length > 0) await new Promise(resolve => setTimeout(resolve, 200 * (round + 1)))
    }
    return jobs.length
  }

  async #dialTopology (): Promise<void> {
    const missing = await this.#dialEdges(() => true, 6)
    let connections = 0
    for (const i of this.#mine) connections += this.#nodes[i]?.libp2p.getConnections().length ?? 0
    this.#emit({ e: 'dialed', connections, missing })
  }

  // ---- workload ------------------------------------------------------------------------------

  #gossip (i: number, id: string, bytes: number): void {
    const node = this.#nodes[i]
    if (node === undefined) return
    this.#emit({ e: 'published', id, t: clock() })
    void node.gossip.publish(TOPICS.patterns, GOSSIP_TYPE, { id, pad: 'x'.repeat(Math.max(0, bytes - 64)) }, { ihsan: 1, snr: 1 }).catch(() => {})
  }

  #propose (i: number, id: string, snr: number): void {
    const node = this.#nodes[i]
    if (node === undefined) return
    this.#emit({ e: 'proposed', id, t: clock() })
    void node.propose({ id, content: { sim: id }, snr, ihsan: 0.97 }).catch(() => {})
  }

  #task (i: number, text: string): void {
    const node = this.#nodes[i]
    if (node === undefined) return
    const wl = this.#s.workload
    const start = clock()
    void node.tasks.sendTask({ skill: SKILL, message: { parts: [{ text }] }, deadlineS: Math.max(1, this.#wall((wl.taskAttemptTimeoutMs ?? 10_000) * (wl.taskMaxAttempts ?? 3)) / 1000) })
      .then(async t => node.tasks.waitTask(t.id))
      .then(
        t => { this.#emit({ e: 'task', ok: t.state === 'completed', start, end: clock(), attempts: t.attempts.length, ...(t.error !== null ? { error: `${t.error.code}: ${t.error.message}` } : {}) }) },
        err => { this.#emit({ e: 'task', ok: false, start, end: clock(), attempts: 0, error: String(err) }) }
      )
  }

  // ---- Byzantine validators ------------------------------------------------------------------

  #byzantineSetup (i: number, node: BizraNode): void {
    const behaviour = this.#byzantine.get(i)
    if (behaviour === undefined) return
    if (behaviour === 'withhold') {
      // its consensus service stopped, it casts no vote: one withheld vote per proposal it hears of
      node.patterns.stop()
      node.gossip.onMessage(m => { if (m.envelope.type === ENVELOPE_TYPES.proposal) this.#emit({ e: 'withheld' }) })
      return
    }
    if (behaviour !== 'equivocate' && behaviour !== 'forge') return
    node.gossip.onMessage(m => {
      if (m.envelope.type !== ENVELOPE_TYPES.proposal) return
      void this.#actOn(i, node, m.envelope.payload as Proposal, behaviour).catch(() => {})
    })
  }

  async #actOn (i: number, node: BizraNode, p: Proposal, behaviour: string): Promise<void> {
    const id = await this.#identity(i)
    const body = (decision: Decision) => ({ proposal: proposalDigest(p), proposalId: p.id, decision, voter: id.id })
    if (behaviour === 'equivocate') {
      this.#emit({ e: 'fault', kind: 'equivocate', detail: `${id.id.slice(-6)} on ${p.id}`, t: clock() })
      for (const decision of ['accept', 'reject'] as const) await node.gossip.publish(TOPICS.votes, ENVELOPE_TYPES.vote, signVote(body(decision), data => id.sign(data)), { ihsan: 1, snr: 1 })
    } else {
      this.#emit({ e: 'fault', kind: 'forge', detail: `${id.id.slice(-6)} on ${p.id}`, t: clock() })
      const vote = signVote(body('accept'), data => id.sign(data))
      const env = JSON.parse(JSON.stringify(createEnvelope(id, { type: ENVELOPE_TYPES.vote, payload: vote, ihsan: 1, snr: 1 })))
      env.sig = env.sig.slice(0, 10) + (env.sig[10] === 'A' ? 'B' : 'A') + env.sig.slice(11)
      await node.gossip.publishRaw(TOPICS.votes, new TextEncoder().encode(JSON.stringify(env)))
    }
  }

  #spam (i: number, seq: number): void {
    const node = this.#nodes[i]
    if (node === undefined) return
    this.#emit({ e: 'spam' })
    void node.gossip.publishRaw(TOPICS.patterns, new TextEncoder().encode(`{"junk":${seq}}`)).catch(() => {})
  }

  // ---- faults --------------------------------------------------------------------------------

  async #crash (i: number): Promise<void> {
    const node = this.#nodes[i]
    if (node === undefined) return
    this.#nodes[i] = undefined
    // a crash: connections drop first, then whatever is left is torn down
    for (const c of node.libp2p.getConnections()) c.abort(new Error('crashed'))
    const stopping = node.stop()
    this.#stopping.set(i, stopping)
    await stopping
    this.#stopping.delete(i)
  }

  async #restart (i: number): Promise<void> {
    await this.#stopping.get(i) // a restart right after the crash waits for its listener to close
    if (this.#nodes[i] !== undefined || this.#stopped) return
    await this.#startNode(i)
    await Promise.all(this.#neighbours(i).map(async j => this.#dial(i, j)))
    await this.#learnProviders(i)
  }

  #cut (keys: string[], on: boolean): void {
    for (const key of keys) {
      if (on) this.#cuts.add(key)
      else this.#cuts.delete(key)
    }
    if (on) {
      const region = this.#topo.region
      for (const i of this.#mine) {
        const node = this.#nodes[i]
        if (node === undefined) continue
        for (const c of node.libp2p.getConnections()) {
          const j = this.#indexByPeer.get(c.remotePeer.toString())
          if (j !== undefined && this.#model.cut(region[i]!, region[j]!)) c.abort(new Error('partitioned'))
        }
      }
    } else {
      const region = this.#topo.region
      void this.#dialEdges((i, j) => region[i] !== region[j], 3)
    }
  }

  async #stop (): Promise<void> {
    this.#stopped = true
    if (this.#stats !== undefined) clearInterval(this.#stats)
    await Promise.all(this.#mine.map(async i => this.#nodes[i]?.stop()))
    const stats = this.#model.stats
    this.#emit({ e: 'stopped', totals: { ...this.#totals, chunks: stats.chunks, bytes: stats.bytes, retransmits: stats.retransmits } })
    for (const b of this.#bridges.values()) b.close()
  }
}

/** A MemoryLevel seen through the node's store interface (the node never closes it here). */
function dbView (db: MemoryLevel<string, string>): Omit<NodeDb, 'close'> {
  return {
    get: async k => db.get(k),
    // memory-level has nothing to sync: the options are for a disk
    put: async (k, v) => db.put(k, v),
    del: async k => db.del(k),
    batch: async ops => db.batch(ops),
    iterator: r => db.iterator(r ?? {}),
    keys: r => db.keys(r ?? {}),
    values: r => db.values(r ?? {})
  }
}

function peerIdOf (id: string): PeerId {
  return peerIdFromString(id)
}
