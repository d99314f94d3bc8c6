/**
 * mulberry32: a small, fast, seeded PRNG. Integer arithmetic only, so a seed gives the same
 * sequence on every platform and Node version: tiny models, tests and benchmarks replay.
 */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
