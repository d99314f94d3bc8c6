/**
 * Phi-accrual failure detector (Hayashibara et al., 2004), as Akka and Cassandra use it.
 * Keeps a bounded window of heartbeat inter-arrival times and reports phi(now) =
 * -log10(P(a heartbeat arrives later than now)), under a normal model of the intervals (the
 * logistic approximation of its CDF that Akka uses). phi 1 means a 10% chance the peer is
 * merely slow, phi 8 one in 10^8. Pure: time is always passed in.
 */

export interface PhiConfig {
  /** the interval heartbeats are sent at, ms; seeds the window so phi works from the first beat */
  expectedIntervalMs: number
  /** samples kept (default 100) */
  windowSize?: number
  /** floor on the standard deviation (default expectedInterval / 2) */
  minStdDevMs?: number
  /** lateness tolerated before suspicion grows (default one expected interval) */
  acceptablePauseMs?: number
}

export class PhiAccrual {
  readonly #window: number[] = []
  readonly #size: number
  readonly #minStd: number
  readonly #pause: number
  #sum = 0
  #sumSq = 0
  #next = 0
  #last: number | undefined

  constructor (config: PhiConfig) {
    const interval = config.expectedIntervalMs
    if (!(interval > 0)) throw new RangeError('expectedIntervalMs must be positive')
    this.#size = config.windowSize ?? 100
    this.#minStd = config.minStdDevMs ?? interval / 2
    this.#pause = config.acceptablePauseMs ?? interval
    // two seed samples around the expected interval give a sane mean and spread at once
    this.#add(interval - interval / 4)
    this.#add(interval + interval / 4)
  }

  get lastArrival (): number | undefined {
    return this.#last
  }

  /** Records a heartbeat arriving at `now` (ms). */
  heartbeat (now: number): void {
    if (this.#last !== undefined && now > this.#last) this.#add(now - this.#last)
    this.#last = now
  }

  /** Suspicion level at `now`; 0 before the first heartbeat. */
  phi (now: number): number {
    if (this.#last === undefined) return 0
    const n = this.#window.length
    const mean = this.#sum / n
    const variance = Math.max(0, this.#sumSq / n - mean * mean)
    const std = Math.max(Math.sqrt(variance), this.#minStd)
    const t = now - this.#last
    const y = (t - (mean + this.#pause)) / std
    const e = Math.exp(-y * (1.5976 + 0.070566 * y * y))
    const p = t > mean + this.#pause ? e / (1 + e) : 1 - 1 / (1 + e)
    // p underflows to 0 for very long silences: cap phi instead of returning Infinity
    return p <= 1e-300 ? 300 : -Math.log10(p)
  }

  #add (interval: number): void {
    if (this.#window.length < this.#size) {
      this.#window.push(interval)
    } else {
      const old = this.#window[this.#next]!
      this.#sum -= old
      this.#sumSq -= old * old
      this.#window[this.#next] = interval
      this.#next = (this.#next + 1) % this.#size
    }
    this.#sum += interval
    this.#sumSq += interval * interval
  }
}
