import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { Engine, RunOptions } from '../engine.ts'
import { scaleScenario, type Scenario } from '../scenario.ts'
import { countHistogram, distribution, LatencyHistogram, peakRssMb, round, taskOutcome, type Metrics } from '../report/metrics.ts'
import { quorum } from '../../src/consensus/crypto.ts'
import { ConsensusModule } from './consensus.ts'
import { KIND_NAMES, Sim } from './sim.ts'
import { TaskModule } from './tasks.ts'

/** Events run between two looks at the clock (progress, abort, yielding to the event loop). */
const SLICE = 250_000

export const engine: Engine = {
  name: 'des',
  run: runDes
}

export async function runDes (input: Scenario, options: RunOptions = {}): Promise<Metrics> {
  return (await simulate(input, options)).metrics
}

/** Runs a scenario and returns the metrics with the simulator's state (tests look inside). */
export async function simulate (input: Scenario, options: RunOptions = {}): Promise<{ metrics: Metrics, sim: Sim, consensus: ConsensusModule, tasks: TaskModule }> {
  const scenario = options.nodes === undefined ? input : scaleScenario(input, options.nodes)
  const wallStart = performance.now()
  const sim = new Sim(scenario)
  const consensus = await ConsensusModule.create(sim)
  const tasks = new TaskModule(sim)
  sim.start()
  const total = sim.endMs
  let lastReport = 0
  for (;;) {
    options.signal?.throwIfAborted()
    const done = sim.runUntil(total, SLICE)
    const wall = performance.now()
    if (options.onProgress !== undefined && (done || wall - lastReport > 200)) {
      lastReport = wall
      options.onProgress({ simulatedMs: sim.now, totalMs: total, fraction: total === 0 ? 1 : Math.min(1, sim.now / total), events: sim.events, wallS: (wall - wallStart) / 1000 })
    }
    if (done) break
    await yieldToLoop()
  }
  sim.retireAll()
  const wallS = (performance.now() - wallStart) / 1000
  return { metrics: collect(sim, consensus, tasks, wallS), sim, consensus, tasks }
}

function collect (sim: Sim, c: ConsensusModule, t: TaskModule, wallS: number): Metrics {
  const s = sim.scenario
  const all = new LatencyHistogram()
  const byRegion: Metrics['propagation']['byRegion'] = {}
  s.regions.forEach((r, i) => {
    const h = sim.propagation[i]!
    all.merge(h)
    byRegion[r.name] = { ...h.summary(), cdf: h.cdf() }
  })
  const cs = c.summary()
  const byz: Record<string, number> = {}
  for (const b of s.byzantine ?? []) byz[b.behaviour] = (byz[b.behaviour] ?? 0) + b.count
  const byKind: Metrics['messages']['byKind'] = {}
  let totalMessages = 0
  let totalBytes = 0
  KIND_NAMES.forEach((name, k) => {
    const m = sim.kindMsgs[k]!
    if (m === 0) return
    byKind[name] = { messages: m, bytes: sim.kindBytes[k]! }
    totalMessages += m
    totalBytes += sim.kindBytes[k]!
  })
  const [sentMsgs, sentBytes, recvMsgs, recvBytes] = [0, 1, 2, 3].map(k => sim.column(k)) as [Float64Array, Float64Array, Float64Array, Float64Array]
  const both = new Float64Array(sim.n)
  for (let i = 0; i < sim.n; i++) both[i] = sentMsgs[i]! + recvMsgs[i]!
  return {
    engine: 'des',
    scenario: s.name,
    seed: s.seed,
    nodes: sim.n,
    regions: s.regions.map(r => r.name),
    simulatedS: round(sim.now / 1000),
    eventsProcessed: sim.events,
    propagation: {
      all: all.summary(),
      byRegion,
      coverage: { messages: sim.coverageCount, mean: round(sim.coverageCount === 0 ? 0 : sim.coverageSum / sim.coverageCount, 6), min: round(sim.coverageCount === 0 ? 0 : sim.coverageMin, 6) }
    },
    consensus: {
      mode: c.mode,
      validators: c.validators.length,
      byzantine: byz,
      quorum: quorum(c.validators.length).q,
      ...cs,
      commitLatencyMs: c.commitLatency.summary(),
      commitLatencyHistogram: c.commitLatency.histogram(30),
      learnLatencyMs: c.learnLatency.summary(),
      equivocationsDetected: c.equivocations.size,
      forgedVotesRejected: c.forgedRejected,
      votesWithheld: c.votesWithheld,
      wrongDecisions: c.wrongDecisions
    },
    messages: {
      totalMessages,
      totalBytes,
      byKind,
      perNode: { sent: distribution(sentMsgs), received: distribution(recvMsgs) },
      bytesPerNode: { sent: distribution(sentBytes), received: distribution(recvBytes) },
      perNodeHistogram: countHistogram(both, 30),
      dropped: { loss: sim.dropLoss, partition: sim.dropPartition, down: sim.dropDown }
    },
    tasks: taskOutcome({ submitted: t.tasks.length, succeeded: t.succeeded, failed: t.failed, attempts: t.attempts, failovers: t.failovers }, t.latency),
    membership: {
      observers: t.observers.length,
      suspectLatencyMs: t.suspectLatency.summary(),
      deadLatencyMs: t.deadLatency.summary(),
      falseSuspicions: t.falseSuspicions
    },
    spam: { sent: sim.spamSent, rejected: sim.spamRejected, graylistedBy: sim.graylistedBy },
    faults: { crashes: sim.crashes, restarts: sim.restarts, partitions: s.partitions?.length ?? 0, timeline: sim.faults, timelineDropped: sim.faultsDropped },
    host: { wallS: round(wallS, 3), eventsPerSec: Math.round(sim.events / Math.max(sim.loopMs / 1000, 1e-9)), peakRssMb: peakRssMb(), node: process.version }
  }
}
