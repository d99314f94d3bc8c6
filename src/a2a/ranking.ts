/**
 * Provider ranking for task routing: pure, so the router, the simulator and the tests share it.
 * A provider's cost is its expected latency, scaled up by its load and recent failures and
 * divided by the trust this node holds in it. Unhealthy peers (SUSPECT, or not heard from)
 * come after every healthy one, whatever their cost.
 */

export interface ProviderCandidate {
  peerId: string
  /** smoothed round-trip of past tasks, null before the first */
  latencyMs: number | null
  /** tasks in flight to it from here plus the load it last reported */
  load: number
  /** NTU trust 0..1 (belief x valid share); 1 for this node itself */
  trust: number
  healthy: boolean
  /** failed attempts since its last success */
  failures: number
}

/** What an unmeasured provider is assumed to cost when nothing has been measured yet. */
export const DEFAULT_LATENCY_MS = 20
const MIN_TRUST = 0.05

export function providerCost (c: ProviderCandidate, unknownLatencyMs: number): number {
  const latency = c.latencyMs ?? unknownLatencyMs
  return (Math.max(latency, 0.1) * (1 + Math.max(0, c.load)) * (1 + Math.max(0, c.failures))) / Math.max(c.trust, MIN_TRUST)
}

/** Best first. An unmeasured provider is assumed to be as fast as the median measured one, so it gets tried. */
export function rankProviders (candidates: ProviderCandidate[]): string[] {
  const measured = candidates.map(c => c.latencyMs).filter((l): l is number => l !== null).sort((a, b) => a - b)
  const unknown = measured.length === 0 ? DEFAULT_LATENCY_MS : measured[Math.floor(measured.length / 2)]!
  return candidates
    .map(c => ({ c, cost: providerCost(c, unknown) }))
    .sort((a, b) => Number(b.c.healthy) - Number(a.c.healthy) || a.cost - b.cost || (a.c.peerId < b.c.peerId ? -1 : a.c.peerId > b.c.peerId ? 1 : 0))
    .map(x => x.c.peerId)
}

/** Exponentially weighted moving average step (alpha 0.3: a few tasks move it). */
export function smooth (previous: number | null, sample: number): number {
  return previous === null ? sample : previous * 0.7 + sample * 0.3
}
