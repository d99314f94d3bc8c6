/**
 * mulberry32 with its state in a field, so the simulator's hot loops call a method V8 inlines.
 * One stream per run: the order of draws is fixed by the event order, which is fixed by the seed.
 */
export class Rng {
  #a: number

  constructor (seed: number) {
    this.#a = seed >>> 0
  }

  /** uniform in [0, 1) */
  next (): number {
    this.#a = (this.#a + 0x6D2B79F5) >>> 0
    let t = this.#a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** integer in [0, n) */
  int (n: number): number {
    return Math.floor(this.next() * n)
  }

  /** exponential with the given mean */
  exp (mean: number): number {
    return -Math.log(1 - this.next()) * mean
  }

  /** k distinct integers from [0, n), in draw order (k <= n) */
  sample (n: number, k: number): number[] {
    if (k > n) k = n
    if (k * 3 > n) {
      const all = Array.from({ length: n }, (_, i) => i)
      for (let i = 0; i < k; i++) {
        const j = i + this.int(n - i)
        const t = all[i]!; all[i] = all[j]!; all[j] = t
      }
      return all.slice(0, k)
    }
    const seen = new Set<number>()
    const out: number[] = []
    while (out.length < k) {
      const x = this.int(n)
      if (!seen.has(x)) { seen.add(x); out.push(x) }
    }
    return out
  }
}
