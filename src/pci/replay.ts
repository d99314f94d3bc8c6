/**
 * Bounded replay cache: remembers (sender, nonce) until the envelope could no longer pass the
 * TTL check anyway, so memory stays proportional to the traffic of one TTL window, capped at
 * `maxEntries`. When full, the oldest entry is evicted first.
 */
export class ReplayCache {
  readonly #max: number
  readonly #expiry = new Map<string, number>()

  constructor (maxEntries = 100_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer')
    this.#max = maxEntries
  }

  get size (): number {
    return this.#expiry.size
  }

  /**
   * Records the key unless it is already known and unexpired. Returns false for a replay.
   * `expiresAt` and `now` are epoch milliseconds.
   */
  checkAndAdd (key: string, expiresAt: number, now: number): boolean {
    const known = this.#expiry.get(key)
    if (known !== undefined && known >= now) return false
    if (known !== undefined) this.#expiry.delete(key)
    this.#evict(now)
    this.#expiry.set(key, expiresAt)
    return true
  }

  has (key: string, now: number): boolean {
    const known = this.#expiry.get(key)
    return known !== undefined && known >= now
  }

  #evict (now: number): void {
    // Drop a few expired entries from the old end on every insert (amortised O(1)), then
    // make room if still full.
    let budget = 4
    for (const [key, exp] of this.#expiry) {
      if (budget-- === 0 || exp >= now) break
      this.#expiry.delete(key)
    }
    while (this.#expiry.size >= this.#max) {
      const oldest = this.#expiry.keys().next().value
      if (oldest === undefined) break
      this.#expiry.delete(oldest)
    }
  }
}
