/** Tiny benchmark harness: ops/s of a function, measured over rounds interleaved with its baseline. */

export function opsPerSec (fn: (i: number) => unknown, ms: number): number {
  // warm up so the JIT has compiled the path being measured
  const warmEnd = performance.now() + Math.min(200, ms / 4)
  let i = 0
  while (performance.now() < warmEnd) fn(i++)
  let ops = 0
  const start = performance.now()
  let now = start
  while (now - start < ms) {
    for (let k = 0; k < 64; k++) fn(i++)
    ops += 64
    now = performance.now()
  }
  return ops / ((now - start) / 1000)
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/**
 * Runs every case `rounds` times, round-robin, so slow drift of the machine affects all cases
 * alike; returns the median ops/s of each.
 */
export function compare<K extends string> (cases: Record<K, (i: number) => unknown>, { rounds = 5, ms = 600 } = {}): Record<K, number> {
  const samples = {} as Record<K, number[]>
  for (const k of Object.keys(cases) as K[]) samples[k] = []
  for (let r = 0; r < rounds; r++) {
    for (const k of Object.keys(cases) as K[]) samples[k].push(opsPerSec(cases[k], ms))
  }
  const out = {} as Record<K, number>
  for (const k of Object.keys(cases) as K[]) out[k] = Math.round(median(samples[k]))
  return out
}
