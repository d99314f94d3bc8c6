import { randomBytes } from 'node:crypto'
import { MemoryLevel } from 'memory-level'
import { multiaddr } from '@multiformats/multiaddr'
import { BizraNode } from '../../src/node/node.ts'
import { DEFAULT_CONFIG } from '../../src/node/config.ts'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'
import type { Genesis } from '../../src/node/genesis.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { TOPICS } from '../../src/net/protocols.ts'
import { ENVELOPE_TYPES } from '../../src/consensus/service.ts'
import { signVote } from '../../src/consensus/crypto.ts'
import type { Decision, Proposal } from '../../src/consensus/types.ts'
import { scaleScenario, type LatencySpec, type Scenario } from '../scenario.ts'
import type { Engine, Progress, RunOptions } from '../engine.ts'
import { countHistogram, distribution, LatencyHistogram, peakRssMb, round, type FaultEvent, type Metrics } from '../report/metrics.ts'
import { Rng } from '../des/rng.ts'
import { buildTopology, type Topology } from '../des/topology.ts'
import { simLinks, type LinkModel } from './links.ts'

/**
 * The `real` engine: every node is a full BizraNode (libp2p with the private network, Noise,
 * yamux, gossipsub; real envelopes, the real consensus service and A2A router) built from parts
 * with an in-memory store and no DHT, API or IPC, all in this process, connected by the link
 * transport (links.ts) with the scenario's per-region latency, jitter and loss. The topology
 * is the des engine's (same seed, same graph). Time is wall-clock time: a scenario of
 * durationS seconds runs that long. The workload, faults and measurements follow the scenario
 * and report the Metrics shape the des engine reports, so the two can be compared.
 *
 * Not modelled here (the des engine covers them at scale): worker threads (all nodes share
 * this thread), and nodes beyond what one process can hold. `timeScale` slows a run down so
 * that the thread keeps up.
 */

const SWARM_KEY = randomBytes(32)
const SKILL = 'sim-work'
const GOSSIP_TYPE = 'sim.gossip'

interface Sim {
  s: Scenario
  rng: Rng
  topo: Topology
  ids: NodeIdentity[]
  nodes: Array<BizraNode | undefined>
  dbs: Array<MemoryLevel<string, string>>
  validators: Set<number>
  byzantine: Map<number, string>
  cuts: Set<string>
  started: number
}

function linkSpec (s: Scenario, a: number, b: number): { latency: LatencySpec, loss: number } {
  if (a === b) return { latency: s.regions[a]!.latencyMs, loss: s.regions[a]!.loss }
  const names = [s.regions[a]!.name, s.regions[b]!.name]
  const link = s.interRegion.links?.find(l => l.between.includes(names[0]!) && l.between.includes(names[1]!))
  return link !== undefined ? { latency: link.latencyMs, loss: link.loss } : { latency: s.interRegion.latencyMs, loss: s.interRegion.loss }
}

const cutKey = (a: number, b: number): string => a < b ? `${a}:${b}` : `${b}:${a}`
const address = (i: number): string => `/memory/bizra-sim-${i}`

export interface RealRunOptions extends RunOptions {
  /**
   * Run in slow motion: every latency, interval, timeout and rate of the scenario is stretched
   * by this factor in wall time and measurements are scaled back. All nodes share one thread, so
   * a federation that would overload it at full speed can be measured faithfully this way.
   */
  timeScale?: number
}

async function run (input: Scenario, options: RunOptions = {}): Promise<Metrics> {
  const s = options.nodes !== undefined ? scaleScenario(input, options.nodes) : input
  const wallStart = performance.now()
  /** wall-clock ms per simulated ms (RealRunOptions.timeScale, default 1) */
  const k = Math.max(1, (options as RealRunOptions).timeScale ?? 1)
  const rng = new Rng(s.seed)
  const topo = buildTopology(s, rng)
  const n = topo.n
  const seedBytes = (i: number): Uint8Array => {
    const b = new Uint8Array(32)
    new DataView(b.buffer).setUint32(0, s.seed >>> 0)
    new DataView(b.buffer).setUint32(4, i)
    b[8] = 0x51
    return b
  }
  const ids = await Promise.all(Array.from({ length: n }, (_, i) => NodeIdentity.fromSeed(seedBytes(i))))
  const regionByPeer = new Map(ids.map((id, i) => [id.id, topo.region[i]!]))
  const indexByPeer = new Map(ids.map((id, i) => [id.id, i]))
  const v = Math.min(s.consensus.validators, n)
  const validators = new Set(Array.from({ length: v }, (_, k) => Math.floor((k * n) / v)))
  const byzantine = new Map<number, string>()
  const honestValidators = [...validators]
  for (const b of s.byzantine ?? []) {
    for (let k = 0; k < b.count && honestValidators.length > 0; k++) byzantine.set(honestValidators.pop()!, b.behaviour)
  }
  const genesis: Genesis = { federationId: `sim-${s.name}`, validators: [...validators].map(i => ids[i]!.id), constitution: { ...DEFAULT_CONSTITUTION }, bootstrap: [] }

  // per-node traffic, as the links see it
  const sentMsgs = new Float64Array(n)
  const recvMsgs = new Float64Array(n)
  const sentBytes = new Float64Array(n)
  const recvBytes = new Float64Array(n)
  const cuts = new Set<string>()
  const model: LinkModel = {
    regionOf: p => regionByPeer.get(p),
    latency: (a, b) => { const l = linkSpec(s, a, b).latency; return { mean: l.mean * k, jitter: l.jitter * k } },
    loss: (a, b) => linkSpec(s, a, b).loss,
    cut: (a, b) => a !== b && cuts.has(cutKey(a, b)),
    random: () => rng.next(),
    stats: { chunks: 0, bytes: 0, retransmits: 0 }
  }
  const sim: Sim = { s, rng, topo, ids, nodes: new Array(n).fill(undefined), dbs: [], validators, byzantine, cuts, started: 0 }

  // measurements
  const published = new Map<string, { at: number, alive: number, reached: Set<number> }>()
  const propAll = new LatencyHistogram()
  const propByRegion = s.regions.map(() => new LatencyHistogram())
  const commitLatency = new LatencyHistogram()
  const learnLatency = new LatencyHistogram()
  const proposals = new Map<string, { at: number, expected: Decision, decisions: Set<string>, committedAt: Set<number>, expired: boolean }>()
  const taskLatency = new LatencyHistogram()
  const tasks = { submitted: 0, succeeded: 0, failed: 0, attempts: 0, failovers: 0 }
  const crashedAt = new Map<string, number>()
  const suspectLatency = new LatencyHistogram()
  const deadLatency = new LatencyHistogram()
  let falseSuspicions = 0
  let equivocationsDetected = 0
  let forgedRejected = 0
  let votesWithheld = 0
  const spam = { sent: 0, rejected: 0 }
  const faults = { crashes: 0, restarts: 0, partitions: 0 }
  const timeline: FaultEvent[] = []
  const fault = (kind: FaultEvent['kind'], detail: string): void => { if (timeline.length < 2000) timeline.push({ t: Math.round(now()), kind, detail }) }
  // simulated ms: wall ms / timeScale (a slowed-down run spreads the same work over more wall time)
  const now = (): number => (performance.now() - sim.started) / k
  const wall = (simMs: number): number => simMs * k
  let delivered = 0
  const debugCounts = new Map<string, number>()

  const observe = (i: number, node: BizraNode): void => {
    node.gossip.onMessage(m => {
      delivered++
      recvMsgs[i]!++
      if (m.envelope.type !== GOSSIP_TYPE) return
      const p = m.envelope.payload as { id?: string }
      const rec = typeof p?.id === 'string' ? published.get(p.id) : undefined
      if (rec === undefined || rec.reached.has(i)) return
      rec.reached.add(i)
      const ms = now() - rec.at
      propAll.add(ms)
      propByRegion[topo.region[i]!]!.add(ms)
    })
    node.onEvent(e => {
      if (process.env.SIM_DEBUG !== undefined && e.type.startsWith('pattern:')) debugCounts.set(e.type, (debugCounts.get(e.type) ?? 0) + 1)
      if (process.env.SIM_DEBUG !== undefined && e.type === 'message:rejected') debugCounts.set(`rejected:${e.code}:${e.reason.slice(0, 40)}`, (debugCounts.get(`rejected:${e.code}:${e.reason.slice(0, 40)}`) ?? 0) + 1)
      if (e.type === 'message:rejected' && e.code === 'R005') spam.rejected++
      if (e.type === 'message:rejected' && e.code === 'R002') forgedRejected++
      if (e.type === 'pattern:equivocation') equivocationsDetected++
      if (e.type === 'pattern:committed') {
        const p = proposals.get(e.id)
        if (p === undefined || p.committedAt.has(i)) return
        p.committedAt.add(i)
        p.decisions.add(e.decision)
        const ms = now() - p.at
        learnLatency.add(ms)
        if (validators.has(i) && !byzantine.has(i)) commitLatency.add(ms)
      }
      if (e.type === 'pattern:expired') {
        const p = proposals.get(e.id)
        if (p !== undefined && !p.expired) { p.expired = true; fault('expired', e.id) }
      }
      if (e.type === 'peer:suspect' || e.type === 'peer:dead') {
        const crashed = crashedAt.get(e.peerId)
        if (crashed === undefined) {
          if (e.type === 'peer:suspect') falseSuspicions++
          return
        }
        ;(e.type === 'peer:suspect' ? suspectLatency : deadLatency).add(now() - crashed)
      }
    })
  }

  const providers = new Set<number>()
  const providerShare = s.workload.providerShare ?? 0.1
  for (let i = 0; i < n; i++) if (rng.next() < providerShare) providers.add(i)
  if (providers.size === 0) providers.add(n - 1)
  const service = s.workload.taskServiceMs ?? { mean: 50, jitter: 25 }

  const startNode = async (i: number): Promise<BizraNode> => {
    let db = sim.dbs[i]
    if (db === undefined) {
      db = new MemoryLevel<string, string>()
      sim.dbs[i] = db
    }
    await db.open()
    const node = await BizraNode.create({
      identity: ids[i]!,
      swarmKey: SWARM_KEY,
      genesis,
      config: {
        ...DEFAULT_CONFIG,
        listen: [address(i)],
        bootstrap: [],
        api: null,
        heartbeatMs: Math.round(wall(s.membership?.heartbeatMs ?? 10_000)),
        proposalTimeoutMs: Math.round(wall(s.consensus.timeoutMs ?? 30_000))
      },
      // the node closes its store on stop; a restart reopens the same one, as a disk would be
      db: { ...dbView(db), close: async () => {} },
      transport: simLinks(model),
      dht: false,
      libp2pMetrics: false,
      // super-peers are gossipsub direct peers of one another, as in the des engine's topology
      directPeers: directOf(i).map(j => ({ id: ids[j]!.peerId, addrs: [multiaddr(address(j))] })),
      logger: false,
      ipc: false
    })
    sim.nodes[i] = node
    observe(i, node)
    if (providers.has(i)) {
      node.skills.register({ id: SKILL, name: 'Simulated work', description: 'sleeps the scenario\'s service time', tags: ['sim'], inputModes: ['text/plain'], outputModes: ['text/plain'] }, async (m, ctx) => {
        const ms = Math.max(0, service.mean + (rng.next() * 2 - 1) * service.jitter)
        await new Promise((resolve, reject) => {
          const t = setTimeout(resolve, wall(ms))
          ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(ctx.signal.reason) }, { once: true })
        })
        return { parts: m.parts }
      })
    }
    const behaviour = byzantine.get(i)
    if (behaviour === 'withhold') node.patterns.stop()
    return node
  }

  const dial = async (i: number, j: number): Promise<void> => {
    const a = sim.nodes[i]
    if (a === undefined || sim.nodes[j] === undefined) return
    try {
      await a.libp2p.dial(multiaddr(`${address(j)}/p2p/${ids[j]!.id}`), { signal: AbortSignal.timeout(10_000) })
    } catch {
      // a partitioned or crashed peer: the topology is re-dialled when it comes back
    }
  }
  const directOf = (i: number): number[] => {
    const out: number[] = []
    for (let k = topo.directOff[i]!; k < topo.directOff[i + 1]!; k++) out.push(topo.direct[k]!)
    return out
  }
  const neighbours = (i: number): number[] => {
    const out: number[] = []
    for (let k = topo.connOff[i]!; k < topo.connOff[i + 1]!; k++) out.push(topo.conn[k]!)
    for (let k = topo.directOff[i]!; k < topo.directOff[i + 1]!; k++) out.push(topo.direct[k]!)
    return out
  }
  const dialAll = async (which: (i: number, j: number) => boolean): Promise<void> => {
    const jobs: Array<[number, number]> = []
    for (let i = 0; i < n; i++) for (const j of neighbours(i)) if (i < j && which(i, j)) jobs.push([i, j])
    // a few hundred dials at a time: every dial is a Noise handshake on this one thread
    for (let k = 0; k < jobs.length; k += 256) await Promise.all(jobs.slice(k, k + 256).map(([i, j]) => dial(i, j)))
  }

  // bring the federation up
  for (let i = 0; i < n; i++) {
    await startNode(i)
    options.signal?.throwIfAborted()
  }
  await dialAll(() => true)
  // the scenario's clock starts once the federation is connected
  sim.started = performance.now()

  const timers: NodeJS.Timeout[] = []
  const at = (sec: number, fn: () => void): void => { timers.push(setTimeout(fn, Math.max(0, wall(sec * 1000 - now())))) }
  const every = (perS: number, fn: () => void): void => {
    if (!(perS > 0)) return
    const tick = (): void => {
      fn()
      timers.push(setTimeout(tick, wall(rng.exp(1000 / perS))))
    }
    timers.push(setTimeout(tick, wall(rng.exp(1000 / perS))))
  }
  const alive = (): number[] => sim.nodes.flatMap((x, i) => x === undefined ? [] : [i])
  const pick = (from: number[]): number | undefined => from.length === 0 ? undefined : from[rng.int(from.length)]

  const wl = s.workload
  const wlStart = wl.startS ?? 2
  const wlEnd = wl.endS ?? Math.max(wlStart, s.durationS - 5)
  let seq = 0
  at(wlStart, () => {
    const stopAt = wlEnd * 1000
    const gate = (fn: () => void) => () => { if (now() < stopAt) fn() }
    every(wl.gossipPerS, gate(() => {
      const i = pick(alive())
      if (i === undefined) return
      const id = `g${seq++}`
      published.set(id, { at: now(), alive: alive().length, reached: new Set([i]) })
      sentMsgs[i]!++
      void sim.nodes[i]!.gossip.publish(TOPICS.patterns, GOSSIP_TYPE, { id, pad: 'x'.repeat(Math.max(0, (wl.gossipBytes ?? 512) - 64)) }, { ihsan: 1, snr: 1 }).catch(() => {})
    }))
    every(wl.proposalsPerS, gate(() => {
      const i = pick(alive())
      if (i === undefined) return
      const id = `p${seq++}`
      const reject = rng.next() < (wl.rejectShare ?? 0.2)
      const snr = reject ? 0.9 : 0.97
      proposals.set(id, { at: now(), expected: reject ? 'reject' : 'accept', decisions: new Set(), committedAt: new Set(), expired: false })
      void sim.nodes[i]!.propose({ id, content: { sim: id }, snr, ihsan: 0.97 }).catch(() => {})
    }))
    every(wl.tasksPerS, gate(() => {
      const i = pick(alive())
      if (i === undefined) return
      tasks.submitted++
      const started = now()
      const node = sim.nodes[i]!
      void node.tasks.sendTask({ skill: SKILL, message: { parts: [{ text: `t${seq++}` }] }, deadlineS: Math.max(1, wall((wl.taskAttemptTimeoutMs ?? 10_000) * (wl.taskMaxAttempts ?? 3)) / 1000) })
        .then(async t => node.tasks.waitTask(t.id))
        .then(t => {
          tasks.attempts += t.attempts.length
          tasks.failovers += Math.max(0, t.attempts.length - 1)
          if (t.state === 'completed') {
            tasks.succeeded++
            taskLatency.add(now() - started)
          } else {
            tasks.failed++
          }
        }, () => { tasks.failed++ })
    }))
  })

  // Byzantine validators act on every proposal they see
  for (const [i, behaviour] of byzantine) {
    const node = sim.nodes[i]!
    if (behaviour === 'spam') {
      every(s.byzantine!.find(b => b.behaviour === 'spam')?.ratePerS ?? 20, () => {
        if (sim.nodes[i] === undefined) return
        spam.sent++
        void node.gossip.publishRaw(TOPICS.patterns, new TextEncoder().encode(`{"junk":${seq++}}`)).catch(() => {})
      })
      continue
    }
    if (behaviour === 'withhold') {
      node.onEvent(e => { if (e.type === 'pattern:proposed') votesWithheld++ })
      continue
    }
    node.gossip.onMessage(m => {
      if (m.envelope.type !== ENVELOPE_TYPES.proposal) return
      const p = m.envelope.payload as Proposal
      const digest = (m.envelope.payload as { digest?: string }).digest
      void digest
      void actOn(node, ids[i]!, p, behaviour).catch(() => {})
    })
  }
  async function actOn (node: BizraNode, id: NodeIdentity, p: Proposal, behaviour: string): Promise<void> {
    const { proposalDigest } = await import('../../src/consensus/crypto.ts')
    const d = proposalDigest(p)
    const body = (decision: Decision) => ({ proposal: d, proposalId: p.id, decision, voter: id.id })
    if (behaviour === 'equivocate') {
      fault('equivocate', `${id.id.slice(-6)} on ${p.id}`)
      for (const decision of ['accept', 'reject'] as const) await node.gossip.publish(TOPICS.votes, ENVELOPE_TYPES.vote, signVote(body(decision), data => id.sign(data)), { ihsan: 1, snr: 1 })
    } else if (behaviour === 'forge') {
      fault('forge', `${id.id.slice(-6)} on ${p.id}`)
      const vote = signVote(body('accept'), data => id.sign(data))
      const env = JSON.parse(JSON.stringify((await import('../../src/pci/envelope.ts')).createEnvelope(id, { type: ENVELOPE_TYPES.vote, payload: vote, ihsan: 1, snr: 1 })))
      env.sig = env.sig.slice(0, 10) + (env.sig[10] === 'A' ? 'B' : 'A') + env.sig.slice(11)
      await node.gossip.publishRaw(TOPICS.votes, new TextEncoder().encode(JSON.stringify(env)))
    }
  }

  // churn
  const churn = s.churn
  if (churn !== undefined && churn.crashPerHour > 0) {
    every((churn.crashPerHour * n) / 3600, () => {
      const candidates = alive().filter(i => churn.includeValidators === true || !validators.has(i))
      const i = pick(candidates)
      if (i === undefined) return
      void crash(i).then(() => {
        timers.push(setTimeout(() => { void restart(i) }, wall(rng.exp(3_600_000 / Math.max(churn.restartPerHour, 1e-9)))))
      })
    })
  }
  async function crash (i: number): Promise<void> {
    const node = sim.nodes[i]
    if (node === undefined) return
    sim.nodes[i] = undefined
    faults.crashes++
    fault('crash', String(i))
    crashedAt.set(ids[i]!.id, now())
    // a crash: connections drop first, then whatever is left is torn down
    for (const c of node.libp2p.getConnections()) c.abort(new Error('crashed'))
    await node.stop()
  }
  async function restart (i: number): Promise<void> {
    if (sim.nodes[i] !== undefined || now() > s.durationS * 1000) return
    faults.restarts++
    fault('restart', String(i))
    crashedAt.delete(ids[i]!.id)
    await startNode(i)
    await Promise.all(neighbours(i).map(j => dial(i, j)))
  }

  // partitions
  for (const p of s.partitions ?? []) {
    const cutOff = p.regions.map(name => s.regions.findIndex(r => r.name === name)).filter(r => r >= 0)
    at(p.startS, () => {
      faults.partitions++
      fault('partition-start', p.regions.join(','))
      for (const r of cutOff) for (let o = 0; o < s.regions.length; o++) if (o !== r) cuts.add(cutKey(r, o))
      for (const node of sim.nodes) {
        if (node === undefined) continue
        const mine = regionByPeer.get(node.peerId)!
        for (const c of node.libp2p.getConnections()) {
          const theirs = regionByPeer.get(c.remotePeer.toString())
          if (theirs !== undefined && model.cut(mine, theirs)) c.abort(new Error('partitioned'))
        }
      }
    })
    at(p.endS, () => {
      fault('partition-end', p.regions.join(','))
      for (const r of cutOff) for (let o = 0; o < s.regions.length; o++) if (o !== r) cuts.delete(cutKey(r, o))
      void dialAll((i, j) => topo.region[i] !== topo.region[j])
    })
  }

  // progress and the end
  const totalMs = s.durationS * 1000
  let lagAt = performance.now()
  const progress = setInterval(() => {
    if (process.env.SIM_DEBUG !== undefined) {
      const t = performance.now()
      console.error(`t=${Math.round(now())} lag=${Math.round(t - lagAt - 500)}ms delivered=${delivered} committed=${[...proposals.values()].filter(p => p.committedAt.size > 0).length}/${proposals.size} tasks=${tasks.succeeded}/${tasks.submitted} providersKnown=${sim.nodes[0]?.a2a.directory.providers(SKILL).length} conns=${sim.nodes.reduce((a, x) => a + (x?.libp2p.getConnections().length ?? 0), 0)} isolated=${sim.nodes.filter(x => x !== undefined && x.libp2p.getConnections().length === 0).length} ${JSON.stringify(Object.fromEntries(debugCounts))}`)
      lagAt = t
    }
    const p: Progress = { simulatedMs: Math.min(now(), totalMs), totalMs, fraction: Math.min(1, now() / totalMs), events: delivered, wallS: (performance.now() - wallStart) / 1000 }
    options.onProgress?.(p)
  }, 500)
  try {
    await new Promise<void>((resolve, reject) => {
      const done = setTimeout(resolve, Math.max(0, wall(totalMs - now())))
      options.signal?.addEventListener('abort', () => { clearTimeout(done); reject(options.signal!.reason) }, { once: true })
    })
  } finally {
    clearInterval(progress)
    for (const t of timers) clearTimeout(t)
  }
  const simulatedS = now() / 1000
  options.onProgress?.({ simulatedMs: totalMs, totalMs, fraction: 1, events: delivered, wallS: (performance.now() - wallStart) / 1000 })
  await Promise.all(sim.nodes.map(x => x?.stop()))

  // per-node traffic from the libp2p metrics is not split by node here: count envelopes instead
  for (const rec of published.values()) void rec
  const coverage = [...published.values()].map(r => r.reached.size / Math.max(1, r.alive))
  const committed = [...proposals.values()].filter(p => p.committedAt.size > 0)
  const accept = committed.filter(p => p.decisions.has('accept')).length
  const metrics: Metrics = {
    engine: 'real',
    scenario: s.name,
    seed: s.seed,
    nodes: n,
    regions: s.regions.map(r => r.name),
    simulatedS: round(simulatedS, 3),
    eventsProcessed: delivered,
    propagation: {
      all: propAll.summary(),
      byRegion: Object.fromEntries(s.regions.map((r, k) => [r.name, { ...propByRegion[k]!.summary(), cdf: propByRegion[k]!.cdf() }])),
      coverage: { messages: coverage.length, mean: round(coverage.reduce((a, b) => a + b, 0) / Math.max(1, coverage.length), 4), min: round(coverage.length === 0 ? 0 : Math.min(...coverage), 4) }
    },
    consensus: {
      mode: 'machine',
      validators: v,
      byzantine: Object.fromEntries([...new Set(byzantine.values())].map(b => [b, [...byzantine.values()].filter(x => x === b).length])),
      quorum: v - Math.floor((v - 1) / 3),
      proposals: proposals.size,
      committed: committed.length,
      committedAccept: accept,
      committedReject: committed.length - accept,
      expired: [...proposals.values()].filter(p => p.expired && p.committedAt.size === 0).length,
      pending: [...proposals.values()].filter(p => !p.expired && p.committedAt.size === 0).length,
      commitLatencyMs: commitLatency.summary(),
      commitLatencyHistogram: commitLatency.histogram(),
      learnLatencyMs: learnLatency.summary(),
      equivocationsDetected,
      forgedVotesRejected: forgedRejected,
      votesWithheld,
      safetyViolations: [...proposals.values()].filter(p => p.decisions.size > 1).length,
      wrongDecisions: committed.filter(p => !p.decisions.has(p.expected)).length
    },
    messages: {
      totalMessages: sumOf(recvMsgs),
      totalBytes: model.stats.bytes,
      byKind: { envelopes: { messages: sumOf(recvMsgs), bytes: model.stats.bytes } },
      perNode: { sent: distribution(sentMsgs), received: distribution(recvMsgs) },
      bytesPerNode: { sent: distribution(sentBytes), received: distribution(recvBytes) },
      perNodeHistogram: countHistogram(recvMsgs.map((x, i) => x + sentMsgs[i]!)),
      dropped: { loss: model.stats.retransmits, partition: 0, down: 0 }
    },
    tasks: {
      submitted: tasks.submitted,
      succeeded: tasks.succeeded,
      failed: tasks.failed,
      pending: tasks.submitted - tasks.succeeded - tasks.failed,
      successRate: round(tasks.submitted === 0 ? 1 : tasks.succeeded / tasks.submitted, 4),
      latencyMs: taskLatency.summary(),
      attempts: tasks.attempts,
      failovers: tasks.failovers
    },
    membership: {
      observers: n,
      suspectLatencyMs: suspectLatency.summary(),
      deadLatencyMs: deadLatency.summary(),
      falseSuspicions
    },
    spam: { sent: spam.sent, rejected: spam.rejected, graylistedBy: 0 },
    faults: { ...faults, timeline, timelineDropped: 0 },
    host: { wallS: round((performance.now() - wallStart) / 1000, 2), eventsPerSec: round(delivered / Math.max(0.001, (performance.now() - wallStart) / 1000), 1), peakRssMb: peakRssMb(), node: process.version }
  }
  return metrics
}

function sumOf (a: Float64Array): number {
  let s = 0
  for (const x of a) s += x
  return s
}

/** A MemoryLevel seen through the node's store interface (the node never closes it here). */
function dbView (db: MemoryLevel<string, string>): Omit<import('../../src/node/node.ts').NodeDb, 'close'> {
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

export const engine: Engine = { name: 'real', run }
