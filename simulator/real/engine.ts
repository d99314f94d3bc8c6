import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'
import type { Genesis } from '../../src/node/genesis.ts'
import type { AgentCard } from '../../src/a2a/types.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { scaleScenario, type Scenario } from '../scenario.ts'
import type { Engine, Progress, RunOptions } from '../engine.ts'
import { countHistogram, distribution, LatencyHistogram, peakRssMb, round, taskOutcome, type FaultEvent, type Metrics } from '../report/metrics.ts'
import { Rng } from '../des/rng.ts'
import { buildTopology } from '../des/topology.ts'
import { clock, cutKey, identitySeed, NodeHost, type HostCommand, type HostEvent, type HostInit, type HostTotals } from './host.ts'

/**
 * The `real` engine: every node is a full BizraNode (libp2p with the private network, Noise,
 * yamux, gossipsub; real envelopes, the real consensus service and A2A router) built from parts
 * with an in-memory store and no DHT, API or IPC, connected by the link transport (links.ts)
 * with the scenario's per-region latency, jitter and loss. The topology is the des engine's
 * (same seed, same graph). Time is wall-clock time: a scenario of durationS seconds runs that
 * long. The workload, faults and measurements follow the scenario and report the Metrics shape
 * the des engine reports, so the two can be compared.
 *
 * The nodes are spread over worker threads (host.ts, worker.ts), one per core by default, in
 * contiguous index ranges (regions stay mostly together); links between threads go over
 * MessagePorts with the same per-link latency and loss. This thread only directs: it draws the
 * workload and the faults, sends them to the thread that hosts the node concerned, and builds
 * the metrics from the events the threads send back, stamped with a clock all threads share.
 * A small federation runs in this thread (`workers: 0`).
 */

const SMALL = 16

export interface RealRunOptions extends RunOptions {
  /**
   * Run in slow motion: every latency, interval, timeout and rate of the scenario is stretched
   * by this factor in wall time and measurements are scaled back, so a federation that would
   * overload the machine at full speed can be measured faithfully.
   */
  timeScale?: number
  /** worker threads to spread the nodes over; 0: all in this thread (default: 0 up to 16 nodes, else one per core) */
  workers?: number
}

interface HostHandle {
  send: (cmd: HostCommand) => void
  terminate: () => Promise<void>
}

async function run (input: Scenario, options: RunOptions = {}): Promise<Metrics> {
  const s = options.nodes !== undefined ? scaleScenario(input, options.nodes) : input
  const opts = options as RealRunOptions
  const wallStart = performance.now()
  /** wall-clock ms per simulated ms (RealRunOptions.timeScale, default 1) */
  const k = Math.max(1, opts.timeScale ?? 1)
  const rng = new Rng(s.seed)
  const topo = buildTopology(s, rng)
  const n = topo.n
  const peerIds = (await Promise.all(Array.from({ length: n }, async (_, i) => NodeIdentity.fromSeed(identitySeed(s.seed, i))))).map(id => id.id)
  const v = Math.min(s.consensus.validators, n)
  const validators = new Set(Array.from({ length: v }, (_, x) => Math.floor((x * n) / v)))
  const byzantine = new Map<number, string>()
  const honestValidators = [...validators]
  for (const b of s.byzantine ?? []) {
    for (let x = 0; x < b.count && honestValidators.length > 0; x++) byzantine.set(honestValidators.pop()!, b.behaviour)
  }
  const genesis: Genesis = { federationId: `sim-${s.name}`, validators: [...validators].map(i => peerIds[i]!), constitution: { ...DEFAULT_CONSTITUTION }, bootstrap: [] }
  const providers = new Set<number>()
  const providerShare = s.workload.providerShare ?? 0.1
  for (let i = 0; i < n; i++) if (rng.next() < providerShare) providers.add(i)
  if (providers.size === 0) providers.add(n - 1)

  // the hosts: worker threads, or this thread for a small federation
  const workers = Math.max(0, Math.floor(opts.workers ?? (n > SMALL ? availableParallelism() : 0)))
  const H = Math.max(1, Math.min(workers, n))
  const hostOf = new Int32Array(n)
  for (let i = 0; i < n; i++) hostOf[i] = Math.min(H - 1, Math.floor((i * H) / n))
  const run = randomBytes(4).toString('hex')
  const swarmKey = randomBytes(32)
  const initFor = (h: number): HostInit => ({
    index: h, hosts: H, run, scenario: s, k, swarmKey, peerIds, topo, hostOf,
    validators: [...validators], byzantine: [...byzantine], providers: [...providers], genesis
  })

  // measurements
  const now = (): number => (clock() - startedAt) / k
  const simT = (t: number): number => (t - startedAt) / k
  let startedAt = Number.POSITIVE_INFINITY
  const alive = new Uint8Array(n).fill(1)
  let aliveCount = n
  const published = new Map<string, { from: number, alive: number, at: number | undefined, arrivals: Map<number, number> }>()
  const proposals = new Map<string, { at: number | undefined, expected: 'accept' | 'reject', commits: Array<{ node: number, t: number, decision: string }>, expired: boolean }>()
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
  const fault = (kind: FaultEvent['kind'], detail: string, t = now()): void => { if (timeline.length < 2000) timeline.push({ t: Math.round(t), kind, detail }) }
  const delivered = new Float64Array(H)
  const elu = new Float64Array(H).fill(1)
  /** over the measured run, per host: event-loop busy wall ms and the thread's CPU ms in the same time */
  const busyMs = new Float64Array(H)
  const cpuMs = new Float64Array(H)
  const connections = new Float64Array(H)
  const totals: HostTotals[] = []

  // events from the hosts
  let failed: ((err: Error) => void) | undefined
  const waiting = new Map<string, { left: Set<number>, resolve: () => void }>()
  const arrived = (kind: string, h: number): void => {
    const w = waiting.get(kind)
    if (w === undefined) return
    w.left.delete(h)
    if (w.left.size === 0) { waiting.delete(kind); w.resolve() }
  }
  let missingLinks = 0
  const providerCards: AgentCard[] = []
  const onEvent = (h: number, ev: HostEvent): void => {
    switch (ev.e) {
      case 'started': providerCards.push(...ev.cards); arrived('started', h); break
      case 'dialed': missingLinks += ev.missing; arrived('dialed', h); break
      case 'learned': arrived('learned', h); break
      case 'stopped': totals[h] = ev.totals; arrived('stopped', h); break
      case 'stats':
        delivered[h] = ev.delivered
        elu[h] = ev.elu
        connections[h] = ev.connections
        if (startedAt !== Number.POSITIVE_INFINITY) { busyMs[h]! += ev.busyMs; cpuMs[h]! += ev.cpuMs }
        if (process.env.SIM_DEBUG !== undefined && startedAt === Number.POSITIVE_INFINITY && h === 0) console.error(`set-up: load ${[...elu].map(x => x.toFixed(2)).join(',')} delivered ${delivered.reduce((a, b) => a + b, 0)} connections ${connections.reduce((a, b) => a + b, 0)}`)
        break
      case 'published': { const r = published.get(ev.id); if (r !== undefined) r.at = simT(ev.t); break }
      case 'reached': {
        const r = published.get(ev.id)
        if (r !== undefined && !r.arrivals.has(ev.node)) r.arrivals.set(ev.node, simT(ev.t))
        break
      }
      case 'proposed': {
        const p = proposals.get(ev.id)
        if (p !== undefined) p.at = simT(ev.t)
        break
      }
      case 'committed': proposals.get(ev.id)?.commits.push({ node: ev.node, t: simT(ev.t), decision: ev.decision }); break
      case 'expired': {
        const p = proposals.get(ev.id)
        if (p !== undefined && !p.expired) { p.expired = true; fault('expired', ev.id) }
        break
      }
      case 'rejected':
        if (ev.code === 'R005') spam.rejected++
        if (ev.code === 'R002') forgedRejected++
        break
      case 'equivocation': equivocationsDetected++; break
      case 'member': {
        if (ev.t < startedAt) break // set-up: peers still starting
        const crashed = crashedAt.get(ev.peer)
        if (crashed === undefined) {
          if (ev.kind === 'suspect') falseSuspicions++
          break
        }
        ;(ev.kind === 'suspect' ? suspectLatency : deadLatency).add(simT(ev.t) - crashed)
        break
      }
      case 'task':
        tasks.attempts += ev.attempts
        tasks.failovers += Math.max(0, ev.attempts - 1)
        if (ev.ok) { tasks.succeeded++; taskLatency.add((ev.end - ev.start) / k) } else tasks.failed++
        if (!ev.ok && process.env.SIM_DEBUG !== undefined) console.error(`task failed at ${Math.round(simT(ev.start))} ms after ${ev.attempts} attempts: ${ev.error ?? '?'}`)
        break
      case 'fault': fault(ev.kind, ev.detail, simT(ev.t)); break
      case 'withheld': votesWithheld++; break
      case 'spam': spam.sent++; break
      case 'warning': if (process.env.SIM_DEBUG !== undefined) console.error(`host ${h}: ${ev.message}`); break
      case 'error': failed?.(new Error(`real engine, host ${h}: ${ev.message}`)); break
    }
  }

  const hosts: HostHandle[] = []
  const failure = new Promise<never>((_resolve, reject) => { failed = reject })
  failure.catch(() => {})
  if (workers === 0) {
    const host = new NodeHost(initFor(0), ev => onEvent(0, ev))
    hosts.push({ send: cmd => host.handle(cmd), terminate: async () => {} })
  } else {
    const ports: Array<Array<[number, MessagePort]>> = Array.from({ length: H }, () => [])
    for (let a = 0; a < H; a++) {
      for (let b = a + 1; b < H; b++) {
        const { port1, port2 } = new MessageChannel()
        ports[a]!.push([b, port1])
        ports[b]!.push([a, port2])
      }
    }
    let ending = false
    for (let h = 0; h < H; h++) {
      const w = new Worker(new URL('./worker.ts', import.meta.url), {
        workerData: { init: initFor(h), ports: ports[h] },
        transferList: ports[h]!.map(([, p]) => p),
        // ~10 MB a node: a worker may hold more than V8's default old space allows
        resourceLimits: { maxOldGenerationSizeMb: Math.max(2048, Math.ceil((n / H) * 16)) }
      })
      w.on('message', (batch: HostEvent[]) => { for (const ev of batch) onEvent(h, ev) })
      w.on('error', err => failed?.(err))
      w.on('exit', code => { if (!ending) failed?.(new Error(`real engine: worker ${h} exited with code ${code}`)) })
      hosts.push({ send: cmd => w.postMessage(cmd), terminate: async () => { ending = true; await w.terminate() } })
    }
  }
  /** sends each host its command and waits until every one has answered with event `kind` */
  const all = async (kind: string, cmd: (h: number) => HostCommand): Promise<void> => {
    const done = new Promise<void>(resolve => waiting.set(kind, { left: new Set(hosts.map((_, h) => h)), resolve }))
    hosts.forEach((host, h) => host.send(cmd(h)))
    await Promise.race([done, failure, aborted()])
  }
  const abortedP = new Promise<never>((_resolve, reject) => {
    if (options.signal?.aborted === true) reject(options.signal.reason)
    options.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true })
  })
  abortedP.catch(() => {})
  const aborted = async (): Promise<never> => abortedP
  const sendTo = (i: number, cmd: HostCommand): void => { hosts[hostOf[i]!]!.send(cmd) }

  const timers: NodeJS.Timeout[] = []
  let progress: NodeJS.Timeout | undefined
  try {
    // bring the federation up: nodes start spread over one membership heartbeat (their
    // periodic work falls at different moments, as in a federation whose nodes started at
    // different times), then the topology is dialled and the federation left to settle (meshes
    // formed, agent cards and the first heartbeats gossiped) before the scenario's clock starts
    const spread = k * Math.min(10_000, s.membership?.heartbeatMs ?? 10_000)
    const phases = Array.from({ length: n }, () => rng.next() * spread)
    await all('started', h => ({ op: 'start', phases: phases.filter((_, i) => hostOf[i] === h) }))
    await all('dialed', () => ({ op: 'dial' }))
    // every node learns where the providers listen and their cards (the DHT's part, see host.ts)
    await all('learned', () => ({ op: 'learn', cards: providerCards }))
    const settleFrom = performance.now()
    while (performance.now() - settleFrom < Math.max(1000 * k, 1500)) await Promise.race([sleep(100), failure, aborted()])
    while (performance.now() - settleFrom < 60_000 * k && Math.max(...elu) > 0.5) await Promise.race([sleep(250), failure, aborted()])
    if (process.env.SIM_DEBUG !== undefined) console.error(`set-up ${Math.round(performance.now() - wallStart)} ms (settled in ${Math.round(performance.now() - settleFrom)} ms), ${H} host(s), ${missingLinks} links missing, load ${[...elu].map(x => x.toFixed(2)).join(' ')}`)
    // the scenario's clock: the hosts stamp their events with the shared clock, and this thread
    // turns the stamps into simulated time
    startedAt = clock()

    const at = (sec: number, fn: () => void): void => { timers.push(setTimeout(fn, Math.max(0, (sec * 1000 - now()) * k))) }
    const every = (perS: number, fn: () => void): void => {
      if (!(perS > 0)) return
      const tick = (): void => {
        fn()
        timers.push(setTimeout(tick, k * rng.exp(1000 / perS)))
      }
      timers.push(setTimeout(tick, k * rng.exp(1000 / perS)))
    }
    const aliveList = (): number[] => { const out: number[] = []; for (let i = 0; i < n; i++) if (alive[i] === 1) out.push(i); return out }
    const pick = (from: number[]): number | undefined => from.length === 0 ? undefined : from[rng.int(from.length)]

    const wl = s.workload
    const wlStart = wl.startS ?? 2
    const wlEnd = wl.endS ?? Math.max(wlStart, s.durationS - 5)
    let seq = 0
    at(wlStart, () => {
      const stopAt = wlEnd * 1000
      const gate = (fn: () => void) => () => { if (now() < stopAt) fn() }
      every(wl.gossipPerS, gate(() => {
        const i = pick(aliveList())
        if (i === undefined) return
        const id = `g${seq++}`
        published.set(id, { from: i, alive: aliveCount, at: undefined, arrivals: new Map() })
        sendTo(i, { op: 'gossip', node: i, id, bytes: wl.gossipBytes ?? 512 })
      }))
      every(wl.proposalsPerS, gate(() => {
        const i = pick(aliveList())
        if (i === undefined) return
        const id = `p${seq++}`
        const reject = rng.next() < (wl.rejectShare ?? 0.2)
        proposals.set(id, { at: undefined, expected: reject ? 'reject' : 'accept', commits: [], expired: false })
        sendTo(i, { op: 'propose', node: i, id, snr: reject ? 0.9 : 0.97 })
      }))
      every(wl.tasksPerS, gate(() => {
        const i = pick(aliveList())
        if (i === undefined) return
        tasks.submitted++
        sendTo(i, { op: 'task', node: i, text: `t${seq++}` })
      }))
    })

    // Byzantine validators that spam; the others act inside their host on what they receive
    for (const [i, behaviour] of byzantine) {
      if (behaviour !== 'spam') continue
      every(s.byzantine!.find(b => b.behaviour === 'spam')?.ratePerS ?? 20, () => {
        if (alive[i] === 1) sendTo(i, { op: 'spam', node: i, seq: seq++ })
      })
    }

    // churn (super-peers never crash, validators only with includeValidators, as in des)
    const churn = s.churn
    if (churn !== undefined && churn.crashPerHour > 0) {
      every((churn.crashPerHour * n) / 3600, () => {
        const i = pick(aliveList().filter(x => topo.isSuper[x] === 0 && (churn.includeValidators === true || !validators.has(x))))
        if (i === undefined) return
        alive[i] = 0
        aliveCount--
        faults.crashes++
        fault('crash', String(i))
        crashedAt.set(peerIds[i]!, now())
        sendTo(i, { op: 'crash', node: i })
        timers.push(setTimeout(() => {
          if (now() > s.durationS * 1000) return
          alive[i] = 1
          aliveCount++
          faults.restarts++
          fault('restart', String(i))
          crashedAt.delete(peerIds[i]!)
          sendTo(i, { op: 'restart', node: i })
        }, k * rng.exp(3_600_000 / Math.max(churn.restartPerHour, 1e-9))))
      })
    }

    // partitions
    for (const p of s.partitions ?? []) {
      const cutOff = p.regions.map(name => s.regions.findIndex(r => r.name === name)).filter(r => r >= 0)
      const keys: string[] = []
      for (const r of cutOff) for (let o = 0; o < s.regions.length; o++) if (o !== r) keys.push(cutKey(r, o))
      at(p.startS, () => {
        faults.partitions++
        fault('partition-start', p.regions.join(','))
        for (const h of hosts) h.send({ op: 'cut', keys, on: true })
      })
      at(p.endS, () => {
        fault('partition-end', p.regions.join(','))
        for (const h of hosts) h.send({ op: 'cut', keys, on: false })
      })
    }

    // progress and the end
    const totalMs = s.durationS * 1000
    let lagAt = performance.now()
    const sum = (a: Float64Array): number => a.reduce((x, y) => x + y, 0)
    progress = setInterval(() => {
      if (process.env.SIM_DEBUG !== undefined) {
        const t = performance.now()
        const cu = process.cpuUsage()
        const committed = [...proposals.values()].filter(p => p.commits.length > 0).length
        console.error(`t=${Math.round(now())} lag=${Math.round(t - lagAt - 500)}ms cpu=${Math.round((cu.user + cu.system) / 1000)} load=${[...elu].map(x => x.toFixed(2)).join(',')} connections=${connections.reduce((a, b) => a + b, 0)} delivered=${sum(delivered)} committed=${committed}/${proposals.size} tasks=${tasks.succeeded}/${tasks.submitted}`)
        lagAt = t
      }
      const p: Progress = { simulatedMs: Math.min(now(), totalMs), totalMs, fraction: Math.min(1, now() / totalMs), events: sum(delivered), wallS: (performance.now() - wallStart) / 1000 }
      options.onProgress?.(p)
    }, 500)
    await Promise.race([sleep(Math.max(0, (totalMs - now()) * k)), failure, aborted()])
    clearInterval(progress)
    for (const t of timers) clearTimeout(t)
    const simulatedS = now() / 1000
    options.onProgress?.({ simulatedMs: totalMs, totalMs, fraction: 1, events: sum(delivered), wallS: (performance.now() - wallStart) / 1000 })
    await all('stopped', () => ({ op: 'stop' }))
    return metrics(simulatedS)
  } finally {
    if (progress !== undefined) clearInterval(progress)
    for (const t of timers) clearTimeout(t)
    await Promise.all(hosts.map(async h => h.terminate()))
  }

  function metrics (simulatedS: number): Metrics {
    const propAll = new LatencyHistogram()
    const propByRegion = s.regions.map(() => new LatencyHistogram())
    const coverage: number[] = []
    for (const rec of published.values()) {
      if (rec.at === undefined) continue // its node crashed before it could publish
      for (const [node, t] of rec.arrivals) {
        if (node === rec.from) continue
        const ms = Math.max(0, t - rec.at)
        propAll.add(ms)
        propByRegion[topo.region[node]!]!.add(ms)
      }
      coverage.push(Math.min(1, (rec.arrivals.size + (rec.arrivals.has(rec.from) ? 0 : 1)) / Math.max(1, rec.alive)))
    }
    const commitLatency = new LatencyHistogram()
    const learnLatency = new LatencyHistogram()
    let committed = 0
    let accept = 0
    let safetyViolations = 0
    let wrongDecisions = 0
    let expired = 0
    let pending = 0
    for (const p of proposals.values()) {
      if (p.commits.length === 0) {
        if (p.expired) expired++
        else pending++
        continue
      }
      committed++
      const decisions = new Set(p.commits.map(c => c.decision))
      if (decisions.has('accept')) accept++
      if (decisions.size > 1) safetyViolations++
      if (!decisions.has(p.expected)) wrongDecisions++
      const seen = new Set<number>()
      for (const c of p.commits) {
        if (seen.has(c.node) || p.at === undefined) continue
        seen.add(c.node)
        const ms = Math.max(0, c.t - p.at)
        learnLatency.add(ms)
        if (validators.has(c.node) && !byzantine.has(c.node)) commitLatency.add(ms)
      }
    }
    const sumTotals = (f: (t: HostTotals) => Float64Array): Float64Array => {
      const out = new Float64Array(n)
      for (const t of totals) { const a = f(t); for (let i = 0; i < n; i++) out[i]! += a[i]! }
      return out
    }
    const sentChunks = sumTotals(t => t.sentChunks)
    const recvChunks = sumTotals(t => t.recvChunks)
    const sentBytes = sumTotals(t => t.sentBytes)
    const recvBytes = sumTotals(t => t.recvBytes)
    const deliveredPerNode = sumTotals(t => t.delivered)
    const chunks = totals.reduce((a, t) => a + t.chunks, 0)
    const bytes = totals.reduce((a, t) => a + t.bytes, 0)
    const envelopes = deliveredPerNode.reduce((a, b) => a + b, 0)
    const wallS = (performance.now() - wallStart) / 1000
    return {
      engine: 'real',
      scenario: s.name,
      seed: s.seed,
      nodes: n,
      regions: s.regions.map(r => r.name),
      simulatedS: round(simulatedS, 3),
      eventsProcessed: envelopes,
      propagation: {
        all: propAll.summary(),
        byRegion: Object.fromEntries(s.regions.map((r, x) => [r.name, { ...propByRegion[x]!.summary(), cdf: propByRegion[x]!.cdf() }])),
        coverage: { messages: coverage.length, mean: round(coverage.reduce((a, b) => a + b, 0) / Math.max(1, coverage.length), 4), min: round(coverage.length === 0 ? 0 : Math.min(...coverage), 4) }
      },
      consensus: {
        mode: 'machine',
        validators: v,
        byzantine: Object.fromEntries([...new Set(byzantine.values())].map(b => [b, [...byzantine.values()].filter(x => x === b).length])),
        quorum: v - Math.floor((v - 1) / 3),
        proposals: proposals.size,
        committed,
        committedAccept: accept,
        committedReject: committed - accept,
        expired,
        pending,
        commitLatencyMs: commitLatency.summary(),
        commitLatencyHistogram: commitLatency.histogram(),
        learnLatencyMs: learnLatency.summary(),
        equivocationsDetected,
        forgedVotesRejected: forgedRejected,
        votesWithheld,
        safetyViolations,
        wrongDecisions
      },
      messages: {
        // link chunks (a frame of Noise-encrypted yamux data: gossipsub RPCs, streams, their control)
        totalMessages: chunks,
        totalBytes: bytes,
        byKind: { 'link chunks': { messages: chunks, bytes }, 'verified envelopes delivered': { messages: envelopes, bytes: 0 } },
        perNode: { sent: distribution(sentChunks), received: distribution(recvChunks) },
        bytesPerNode: { sent: distribution(sentBytes), received: distribution(recvBytes) },
        perNodeHistogram: countHistogram(recvChunks.map((x, i) => x + sentChunks[i]!)),
        dropped: { loss: totals.reduce((a, t) => a + t.retransmits, 0), partition: 0, down: 0 }
      },
      tasks: taskOutcome(tasks, taskLatency),
      membership: {
        observers: n,
        suspectLatencyMs: suspectLatency.summary(),
        deadLatencyMs: deadLatency.summary(),
        falseSuspicions
      },
      spam: { sent: spam.sent, rejected: spam.rejected, graylistedBy: 0 },
      faults: { ...faults, timeline, timelineDropped: 0 },
      host: {
        wallS: round(wallS, 2),
        eventsPerSec: round(envelopes / Math.max(0.001, wallS), 1),
        peakRssMb: peakRssMb(),
        node: process.version,
        cpuStarved: round(Math.max(0, ...[...busyMs].map((b, h) => b > 0 ? 1 - cpuMs[h]! / b : 0)), 3),
        busyShare: round(Math.max(...busyMs) / Math.max(1, simulatedS * 1000 * k), 3)
      }
    }
  }
}

async function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

export const engine: Engine = { name: 'real', run }
