/**
 * Fair admission for inference a node serves to others (pure bookkeeping, no I/O): a budget of
 * tokens per requester per window, and the constitution's Gini <= 0.35 over the tokens served
 * in the window. Waiting requests are served least-served requester first; a request that
 * would take its requester over budget, or that would push the Gini past the limit while
 * others wait, is refused with a clear "rate limited" reason and a retry time instead of
 * waiting without end.
 */

export interface AdmissionConfig {
  /** tokens one requester may be served per window (default 50,000) */
  budgetTokens: number
  /** sliding window, ms (default 60 s) */
  windowMs: number
  /** the constitution's inequality limit over tokens served (default 0.35) */
  maxGini: number
  /** requests waiting at most; past it new ones are refused as busy (default 64) */
  maxWaiting: number
}

export const DEFAULT_ADMISSION: Readonly<AdmissionConfig> = Object.freeze({ budgetTokens: 50_000, windowMs: 60_000, maxGini: 0.35, maxWaiting: 64 })

export type Admission = { ok: true } | { ok: false, code: 'RATE_LIMITED' | 'BUSY', reason: string, retryAfterMs: number }

/** Gini coefficient of non-negative amounts (0 = equal, approaching 1 = one takes all). */
export function gini (amounts: readonly number[]): number {
  const xs = amounts.filter(x => x > 0).sort((a, b) => a - b)
  const n = amounts.length
  const total = xs.reduce((s, x) => s + x, 0)
  if (n < 2 || total === 0) return 0
  // with the zero amounts first: G = sum_i (2i - n - 1) x_i / (n * total), i from 1
  const zeros = n - xs.length
  let acc = 0
  xs.forEach((x, k) => { acc += (2 * (zeros + k + 1) - n - 1) * x })
  return acc / (n * total)
}

interface Served { at: number, requester: string, tokens: number }

export class FairAdmission {
  readonly config: AdmissionConfig
  readonly #served: Served[] = []

  constructor (config: Partial<AdmissionConfig> = {}) {
    this.config = { ...DEFAULT_ADMISSION, ...config }
  }

  /** Tokens each requester was served in the window ending at `now`. */
  usage (now: number): Map<string, number> {
    this.#prune(now)
    const out = new Map<string, number>()
    for (const s of this.#served) out.set(s.requester, (out.get(s.requester) ?? 0) + s.tokens)
    return out
  }

  giniNow (now: number, extra: readonly string[] = []): number {
    const usage = this.usage(now)
    for (const r of extra) if (!usage.has(r)) usage.set(r, 0)
    return gini([...usage.values()])
  }

  /**
   * May `requester` be served about `tokens` now? `waiting` are the requesters with requests
   * queued (contention): only then does the Gini limit refuse anyone.
   */
  admit (requester: string, tokens: number, now: number, waiting: readonly string[] = []): Admission {
    const usage = this.usage(now)
    const mine = usage.get(requester) ?? 0
    const retryAfterMs = this.#retryAfter(requester, now)
    if (mine + tokens > this.config.budgetTokens) {
      return { ok: false, code: 'RATE_LIMITED', reason: `rate limited: ${requester} was served ${mine} of its ${this.config.budgetTokens} tokens per ${this.config.windowMs / 1000} s`, retryAfterMs }
    }
    if (waiting.length >= this.config.maxWaiting) {
      return { ok: false, code: 'BUSY', reason: `busy: ${waiting.length} requests waiting`, retryAfterMs: 1000 }
    }
    const others = waiting.filter(w => w !== requester)
    if (others.length > 0) {
      for (const w of others) if (!usage.has(w)) usage.set(w, 0)
      const amounts = [...usage.entries()].map(([r, t]) => r === requester ? t + tokens : t)
      if (!usage.has(requester)) amounts.push(tokens)
      const mean = amounts.reduce((s, x) => s + x, 0) / amounts.length
      const g = gini(amounts)
      if (g > this.config.maxGini && mine + tokens > mean) {
        return { ok: false, code: 'RATE_LIMITED', reason: `rate limited: serving ${requester} now would make the share of tokens unequal (Gini ${g.toFixed(2)} > ${this.config.maxGini}) while others wait`, retryAfterMs }
      }
    }
    return { ok: true }
  }

  /** Records tokens actually served. */
  record (requester: string, tokens: number, now: number): void {
    if (tokens > 0) this.#served.push({ at: now, requester, tokens })
  }

  /** Of several waiting requesters, the one to serve next: the least served in the window (ties: first). */
  pickNext (waiting: readonly string[], now: number): number {
    const usage = this.usage(now)
    let best = -1
    let bestUsage = Infinity
    waiting.forEach((r, i) => {
      const u = usage.get(r) ?? 0
      if (u < bestUsage) { best = i; bestUsage = u }
    })
    return best
  }

  #retryAfter (requester: string, now: number): number {
    const first = this.#served.find(s => s.requester === requester)
    return first === undefined ? 1000 : Math.max(1000, first.at + this.config.windowMs - now)
  }

  #prune (now: number): void {
    const from = now - this.config.windowMs
    let i = 0
    while (i < this.#served.length && this.#served[i]!.at <= from) i++
    if (i > 0) this.#served.splice(0, i)
  }
}
