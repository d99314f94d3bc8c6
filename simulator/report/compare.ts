import type { Metrics } from './metrics.ts'

/**
 * Compares two runs of one scenario (typically `des` and `real`) on the metrics both engines
 * measure the same way. Each entry names a metric, its value in each run and whether the two
 * agree within the tolerance: |a - b| <= max(abs, rel x max(|a|, |b|)).
 */
export interface Agreement {
  metric: string
  a: number
  b: number
  ok: boolean
  tolerance: { rel: number, abs: number }
}

type Pick = (m: Metrics) => number

/** metric -> (how to read it, default tolerance) */
export const COMPARABLE: Record<string, { get: Pick, rel: number, abs: number }> = {
  'propagation.p50': { get: m => m.propagation.all.p50, rel: 0.5, abs: 5 },
  'propagation.p90': { get: m => m.propagation.all.p90, rel: 0.5, abs: 10 },
  'propagation.coverage.mean': { get: m => m.propagation.coverage.mean, rel: 0, abs: 0.02 },
  'consensus.proposals': { get: m => m.consensus.proposals, rel: 0.5, abs: 2 },
  'consensus.committedShare': { get: m => m.consensus.proposals === 0 ? 1 : m.consensus.committed / m.consensus.proposals, rel: 0, abs: 0.1 },
  'consensus.commitLatency.p50': { get: m => m.consensus.commitLatencyMs.p50, rel: 0.5, abs: 20 },
  'consensus.safetyViolations': { get: m => m.consensus.safetyViolations, rel: 0, abs: 0 },
  'tasks.successRate': { get: m => m.tasks.successRate, rel: 0, abs: 0.1 },
  'tasks.latency.p50': { get: m => m.tasks.latencyMs.p50, rel: 0.5, abs: 20 }
}

export function compareMetrics (a: Metrics, b: Metrics, overrides: Partial<Record<keyof typeof COMPARABLE, { rel: number, abs: number }>> = {}): Agreement[] {
  return Object.entries(COMPARABLE).map(([metric, spec]) => {
    const tol = overrides[metric] ?? { rel: spec.rel, abs: spec.abs }
    const x = spec.get(a)
    const y = spec.get(b)
    const ok = Math.abs(x - y) <= Math.max(tol.abs, tol.rel * Math.max(Math.abs(x), Math.abs(y)))
    return { metric, a: x, b: y, ok, tolerance: tol }
  })
}
