import { loadScenario, scaleScenario, validateScenario } from '../scenario.ts'
import { engine } from './engine.ts'

export interface RealBenchStep {
  nodes: number
  completed: boolean
  wallS: number
  coverage: number
  committed: string
  why?: string
}

/** Federation sizes tried, smallest first: steps of a quarter to a half, so the answer is not off by 2x. */
export const REAL_BENCH_SIZES = [25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2000, 3000]

/**
 * The largest federation of full nodes (the real engine, its nodes spread over worker threads,
 * one per core, in real time) that completes the regional scenario: runs regional-3x100 scaled
 * to 25, 50, 75, 100, 150, … nodes (REAL_BENCH_SIZES) with its simulated time cut to
 * `seconds`, and stops at the first size that does not complete.
 * Completing means: every gossip message reached at least 99% of the live nodes on average, at
 * least 90% of the proposals committed, at least 90% of the tasks succeeded (the des engine
 * completes all of them at every size; an overloaded federation still gossips and commits,
 * seconds late, while its tasks time out), and the run kept up with the clock (its wall time
 * past start-up within 1.5x the simulated time).
 */
export async function largestRealFederation (options: { seconds?: number, maxNodes?: number, log?: (line: string) => void } = {}): Promise<{ realNodes: number | null, realWallS: number | null, steps: RealBenchStep[] }> {
  const seconds = options.seconds ?? 20
  const steps: RealBenchStep[] = []
  let best: RealBenchStep | undefined
  for (const n of REAL_BENCH_SIZES) {
    if (n > (options.maxNodes ?? 3200)) break
    const s = structuredClone(scaleScenario(loadScenario('regional-3x100'), n))
    s.durationS = seconds
    s.workload.startS = 3
    s.workload.endS = seconds - 4
    const scenario = validateScenario(s, `regional-3x100 at ${n} nodes, ${seconds} s`)
    let startedAt = 0
    const t0 = performance.now()
    const m = await engine.run(scenario, { onProgress: p => { if (startedAt === 0) startedAt = performance.now() } })
    const runWallS = (performance.now() - (startedAt || t0)) / 1000
    const coverage = m.propagation.coverage.mean
    const committedShare = m.consensus.proposals === 0 ? 1 : m.consensus.committed / m.consensus.proposals
    const why = coverage < 0.99
      ? `gossip reached ${(coverage * 100).toFixed(1)}% of nodes`
      : committedShare < 0.9
        ? `${m.consensus.committed} of ${m.consensus.proposals} proposals committed`
        : m.tasks.succeeded < 0.9 * m.tasks.submitted // tasks still pending at the end count against it here
          ? `${m.tasks.succeeded} of ${m.tasks.submitted} tasks succeeded`
          : runWallS > seconds * 1.5 ? `fell behind the clock (${runWallS.toFixed(1)} s wall for ${seconds} s)` : undefined
    const step: RealBenchStep = { nodes: m.nodes, completed: why === undefined, wallS: m.host.wallS, coverage, committed: `${m.consensus.committed}/${m.consensus.proposals}`, ...(why !== undefined ? { why } : {}) }
    steps.push(step)
    options.log?.(`real ${m.nodes} nodes: ${step.completed ? 'completed' : `did not complete (${why})`} in ${m.host.wallS} s wall, coverage ${(coverage * 100).toFixed(1)}%, propagation p50 ${m.propagation.all.p50} ms p90 ${m.propagation.all.p90} ms, ${step.committed} committed (p50 ${m.consensus.commitLatencyMs.p50} ms), tasks ${(m.tasks.successRate * 100).toFixed(1)}% ok, peak RSS ${m.host.peakRssMb} MB`)
    if (!step.completed) break
    best = step
  }
  return { realNodes: best?.nodes ?? null, realWallS: best?.wallS ?? null, steps }
}
