/**
 * Phi-accrual failure detector (Hayashibara et al., "The phi accrual failure detector", 2004),
 * as Akka and Cassandra use it. Instead of a yes/no verdict it reports a suspicion level
 *
 *   phi(now) = -log10(1 - CDF(now - lastArrival))
 *
 * where CDF is a normal distribution fitted to a bounded window of heartbeat inter-arrival
 * times, shifted right by an "acceptable heartbeat pause". phi 1 means a 10% chance that the
 * peer is merely late, phi 8 one in 10^8. The CDF is Akka's logistic approximation
 * (1 / (1 + e^-(1.5976 y + 0.070566 y^3))), evaluated in log space so phi stays finite and
 * monotone for any silence.
 *
 * Pure: no timers and no clock; every time is passed in (epoch ms or simulated ms, as long as
 * one detector sees one time base). O(1) per heartbeat: running sums over a ring buffer.
 */

/** Akka's logistic approximation of the standard normal CDF: CDF(y) ~ 1 / (1 + e^-z(y)). */
const A = 0.070566
const B = 1.5976
const LN10 = Math.LN10

export const DEFAULT_PHI_WINDOW = 100

export interface PhiAccrualConfig {
  /** the interval heartbeats are sent at, ms; seeds the window so phi works from the first beat */
  expectedIntervalMs: number
  /** inter-arrival samples kept (default 100) */
  windowSize?: number
  /** floor on the standard deviation, ms (default expectedIntervalMs / 4) */
  minStdDevMs?: number
  /** lateness tolerated before suspicion grows, ms (default one expected interval) */
  acceptablePauseMs?: number
}

/** log(1 + e^z), without overflow for large z or underflow to 0 for very negative z. */
function softplus (z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))
}

/**
 * phi for a silence of `elapsedMs` when intervals are ~ N(meanMs, stdDevMs), where meanMs
 * already includes any acceptable pause. Finite, >= 0 and non-decreasing in elapsedMs;
 * log10(2) ~ 0.301 at elapsedMs = meanMs. This is the detector's hot path.
 */
export function phiOf (elapsedMs: number, meanMs: number, stdDevMs: number): number {
  const y = (elapsedMs - meanMs) / stdDevMs
  // -log10(1 - CDF) = -log10(e^-z / (1 + e^-z)) = log10(1 + e^z)
  return softplus(y * (B + A * y * y)) / LN10
}

/**
 * The inverse of phiOf: the silence (ms) at which phi reaches `phi`. -Infinity for phi <= 0
 * (reached at once). Solves the cubic A y^3 + B y = z exactly (Cardano; one real root since
 * A, B > 0), then polishes with Newton steps.
 */
export function elapsedForPhi (phi: number, meanMs: number, stdDevMs: number): number {
  if (!(phi > 0)) return -Infinity
  const s = phi * LN10
  const z = s + Math.log1p(-Math.exp(-s)) // softplus^-1(s) = log(e^s - 1)
  const p = B / A
  const q = -z / A
  const r = Math.sqrt((q * q) / 4 + (p * p * p) / 27)
  let y = Math.cbrt(-q / 2 + r) + Math.cbrt(-q / 2 - r)
  for (let i = 0; i < 2; i++) y -= (A * y * y * y + B * y - z) / (3 * A * y * y + B)
  return meanMs + y * stdDevMs
}

export class PhiAccrual {
  readonly expectedIntervalMs: number
  readonly windowSize: number
  readonly minStdDevMs: number
  readonly acceptablePauseMs: number
  readonly #ring: number[] = []
  #next = 0
  // sums of (interval - expectedIntervalMs) and its square: deviations stay small, so the
  // variance E[d^2] - E[d]^2 does not cancel catastrophically the way raw sums would
  #sumD = 0
  #sumD2 = 0
  #last: number | undefined

  constructor (config: PhiAccrualConfig) {
    const interval = config.expectedIntervalMs
    if (!(Number.isFinite(interval) && interval > 0)) throw new RangeError('expectedIntervalMs must be a positive finite number')
    const windowSize = config.windowSize ?? DEFAULT_PHI_WINDOW
    if (!Number.isInteger(windowSize) || windowSize < 2) throw new RangeError('windowSize must be an integer >= 2')
    const minStdDevMs = config.minStdDevMs ?? interval / 4
    if (!(Number.isFinite(minStdDevMs) && minStdDevMs > 0)) throw new RangeError('minStdDevMs must be a positive finite number')
    const pause = config.acceptablePauseMs ?? interval
    if (!(Number.isFinite(pause) && pause >= 0)) throw new RangeError('acceptablePauseMs must be a finite number >= 0')
    this.expectedIntervalMs = interval
    this.windowSize = windowSize
    this.minStdDevMs = minStdDevMs
    this.acceptablePauseMs = pause
    // Akka's bootstrap: two samples at interval -/+ interval/4 give mean = interval and
    // std = interval/4 before any real sample, so phi means something after the first beat
    this.#add(interval - interval / 4)
    this.#add(interval + interval / 4)
  }

  /** time of the latest heartbeat, undefined before the first */
  get lastArrival (): number | undefined {
    return this.#last
  }

  /** inter-arrival samples in the window (bootstrap samples included until pushed out) */
  get sampleCount (): number {
    return this.#ring.length
  }

  /** mean inter-arrival time of the window, ms */
  get meanMs (): number {
    return this.expectedIntervalMs + this.#sumD / this.#ring.length
  }

  /** standard deviation of the window, ms, floored at minStdDevMs */
  get stdDevMs (): number {
    const n = this.#ring.length
    const m = this.#sumD / n
    const variance = Math.max(0, this.#sumD2 / n - m * m)
    return Math.max(Math.sqrt(variance), this.minStdDevMs)
  }

  /** Records a heartbeat arriving at `now`. A heartbeat older than the latest is ignored. */
  heartbeat (now: number): void {
    if (!Number.isFinite(now)) throw new RangeError('heartbeat time must be finite')
    if (this.#last !== undefined) {
      if (now <= this.#last) return
      this.#add(now - this.#last)
    }
    this.#last = now
  }

  /** Suspicion level at `now`; 0 before the first heartbeat. */
  phi (now: number): number {
    if (this.#last === undefined) return 0
    return phiOf(now - this.#last, this.meanMs + this.acceptablePauseMs, this.stdDevMs)
  }

  /**
   * The earliest time at which phi(time) >= threshold if no heartbeat arrives first;
   * undefined before the first heartbeat. What a discrete-event driver schedules a tick at.
   */
  reachesPhiAt (threshold: number): number | undefined {
    if (this.#last === undefined) return undefined
    if (threshold === Infinity) return Infinity
    const mean = this.meanMs + this.acceptablePauseMs
    const std = this.stdDevMs
    const elapsed = elapsedForPhi(threshold, mean, std)
    if (elapsed === -Infinity) return this.#last
    let at = this.#last + elapsed
    // floating point may leave phi a hair under the threshold at the computed instant: nudge
    // forward until it is reached, so a tick scheduled here always sees the crossing
    let step = Math.max(Math.abs(at) * Number.EPSILON * 4, 1e-9)
    while (phiOf(at - this.#last, mean, std) < threshold) {
      at += step
      step *= 2
    }
    return at
  }

  #add (interval: number): void {
    const d = interval - this.expectedIntervalMs
    if (this.#ring.length < this.windowSize) {
      this.#ring.push(d)
    } else {
      const old = this.#ring[this.#next]!
      this.#ring[this.#next] = d
      this.#sumD -= old
      this.#sumD2 -= old * old
      this.#next = (this.#next + 1) % this.windowSize
      if (this.#next === 0) {
        // once per lap, recompute the sums so rounding error cannot build up (amortised O(1))
        let s = 0
        let s2 = 0
        for (const v of this.#ring) {
          s += v
          s2 += v * v
        }
        this.#sumD = s
        this.#sumD2 = s2
        return
      }
    }
    this.#sumD += d
    this.#sumD2 += d * d
  }
}
