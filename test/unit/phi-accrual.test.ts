import { test, describe } from 'node:test'
import { mulberry32 } from '../helpers/random.ts'
import assert from 'node:assert/strict'
import { DEFAULT_PHI_WINDOW, PhiAccrual, elapsedForPhi, phiOf } from '../../src/net/phi-accrual.ts'


const I = 10_000

/** A detector that has seen `beats` heartbeats exactly I apart, the last at the returned time. */
function regular (beats: number, config: Partial<ConstructorParameters<typeof PhiAccrual>[0]> = {}): { d: PhiAccrual, last: number } {
  const d = new PhiAccrual({ expectedIntervalMs: I, ...config })
  let t = 1_000_000
  for (let i = 0; i < beats; i++, t += I) d.heartbeat(t)
  return { d, last: t - I }
}

describe('phiOf (logistic approximation of the normal CDF)', () => {
  test('phi at the mean is log10(2): an even chance the heartbeat is merely late', () => {
    assert.ok(Math.abs(phiOf(100, 100, 10) - Math.log10(2)) < 1e-12)
  })

  test('matches Akka\'s two-branch formula where that one is finite', () => {
    const akka = (t: number, mean: number, std: number): number => {
      const y = (t - mean) / std
      const e = Math.exp(-y * (1.5976 + 0.070566 * y * y))
      return t > mean ? -Math.log10(e / (1 + e)) : -Math.log10(1 - 1 / (1 + e))
    }
    for (let t = 0; t <= 300; t += 2.5) {
      const a = akka(t, 100, 20)
      if (!Number.isFinite(a) || a === 0) continue
      const ours = phiOf(t, 100, 20)
      assert.ok(Math.abs(ours - a) <= 1e-9 * Math.max(1, a), `t=${t}: ${ours} vs ${a}`)
    }
  })

  test('finite, non-negative and non-decreasing over any silence, however long', () => {
    let prev = -1
    for (let t = -1e6; t <= 1e7; t += 997) {
      const p = phiOf(t, 20_000, 2_500)
      assert.ok(Number.isFinite(p) && p >= 0, `phi(${t}) = ${p}`)
      assert.ok(p >= prev, `phi fell at ${t}`)
      prev = p
    }
    assert.ok(phiOf(1e12, 20_000, 2_500) > 1e6)
  })

  test('elapsedForPhi inverts phiOf', () => {
    for (const phi of [1e-6, 0.01, Math.log10(2), 1, 3, 8, 16, 50, 300, 1e5]) {
      for (const [mean, std] of [[100, 7], [20_000, 2_500], [1, 1e-3]] as const) {
        const t = elapsedForPhi(phi, mean, std)
        const back = phiOf(t, mean, std)
        assert.ok(Math.abs(back - phi) <= 1e-9 * Math.max(1, phi), `phi ${phi} mean ${mean} std ${std}: ${back}`)
      }
    }
    assert.equal(elapsedForPhi(0, 100, 10), -Infinity)
    assert.equal(elapsedForPhi(-1, 100, 10), -Infinity)
  })
})

describe('PhiAccrual', () => {
  test('defaults: window 100, min std-dev a quarter interval, pause one interval', () => {
    const d = new PhiAccrual({ expectedIntervalMs: I })
    assert.equal(DEFAULT_PHI_WINDOW, 100)
    assert.equal(d.windowSize, 100)
    assert.equal(d.minStdDevMs, I / 4)
    assert.equal(d.acceptablePauseMs, I)
  })

  test('phi is 0 before the first heartbeat', () => {
    const d = new PhiAccrual({ expectedIntervalMs: I })
    assert.equal(d.phi(0), 0)
    assert.equal(d.phi(1e9), 0)
    assert.equal(d.lastArrival, undefined)
    assert.equal(d.reachesPhiAt(8), undefined)
  })

  test('bootstrapped from the expected interval: meaningful after the first heartbeat', () => {
    const d = new PhiAccrual({ expectedIntervalMs: I })
    assert.equal(d.meanMs, I)
    assert.equal(d.stdDevMs, I / 4)
    d.heartbeat(5_000)
    assert.ok(d.phi(5_000) < 1e-6)
    assert.ok(d.phi(5_000 + I) < 0.01, 'one interval of silence is unremarkable')
    assert.ok(d.phi(5_000 + 6 * I) > 16, 'six intervals of silence is damning')
  })

  test('small right after a regular heartbeat, and grows monotonically with silence', () => {
    const { d, last } = regular(50)
    assert.ok(d.phi(last) < 1e-12, `phi right after a beat: ${d.phi(last)}`)
    assert.ok(d.phi(last + I) < 0.01, `phi one interval on: ${d.phi(last + I)}`)
    let prev = 0
    for (let t = last; t <= last + 20 * I; t += 100) {
      const p = d.phi(t)
      assert.ok(p >= prev, `phi fell at +${t - last}`)
      prev = p
    }
    assert.ok(d.phi(last + 3 * I) > 1, 'three intervals of silence raise suspicion')
    assert.ok(d.phi(last + 5 * I) > 16)
  })

  test('crosses suspicion 8 and 16 within sane multiples of the interval', () => {
    const { d, last } = regular(50)
    const at8 = d.reachesPhiAt(8)! - last
    const at16 = d.reachesPhiAt(16)! - last
    assert.ok(at8 > 2 * I && at8 < 5 * I, `phi 8 after ${at8 / I} intervals`)
    assert.ok(at16 > at8 && at16 < 6 * I, `phi 16 after ${at16 / I} intervals`)
  })

  test('reachesPhiAt is the first instant phi reaches the threshold', () => {
    const rnd = mulberry32(11)
    const d = new PhiAccrual({ expectedIntervalMs: I })
    let t = 0
    for (let i = 0; i < 300; i++) {
      t += I * (0.7 + 0.6 * rnd())
      d.heartbeat(t)
      for (const th of [0.5, 8, 16]) {
        const at = d.reachesPhiAt(th)!
        assert.ok(d.phi(at) >= th, `phi(at) ${d.phi(at)} < ${th}`)
        assert.ok(d.phi(at - 1) < th, `threshold ${th} already reached 1 ms earlier`)
      }
    }
  })

  test('the window is bounded and holds only the latest samples', () => {
    const d = new PhiAccrual({ expectedIntervalMs: I, windowSize: 100 })
    let t = 0
    for (let i = 0; i < 1_000; i++, t += I) d.heartbeat(t)
    t -= I // the last heartbeat
    assert.equal(d.sampleCount, 100)
    // the peer speeds up: after one full window only the new interval remains
    for (let i = 0; i < 100; i++) {
      t += 1_000
      d.heartbeat(t)
    }
    assert.equal(d.sampleCount, 100)
    assert.ok(Math.abs(d.meanMs - 1_000) < 1e-6, `mean ${d.meanMs}`)
    assert.equal(d.stdDevMs, d.minStdDevMs)
  })

  test('running sums agree with a naive recomputation over a long jittery run', () => {
    const rnd = mulberry32(42)
    const size = 37
    const d = new PhiAccrual({ expectedIntervalMs: I, windowSize: size, minStdDevMs: 1e-9 })
    const all = [I - I / 4, I + I / 4]
    let t = 0
    d.heartbeat(t)
    for (let i = 0; i < 5_000; i++) {
      const gap = I * (0.5 + rnd()) + (i % 97 === 0 ? 30 * I : 0)
      t += gap
      d.heartbeat(t)
      all.push(gap)
      if (i % 250 !== 0) continue
      const w = all.slice(-size)
      const mean = w.reduce((s, v) => s + v, 0) / w.length
      const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length)
      assert.ok(Math.abs(d.meanMs - mean) < 1e-6, `mean ${d.meanMs} vs ${mean}`)
      assert.ok(Math.abs(d.stdDevMs - std) < 1e-6, `std ${d.stdDevMs} vs ${std}`)
    }
  })

  test('min std-dev floors the spread of a perfectly regular peer', () => {
    const { d } = regular(500, { minStdDevMs: 1_234 })
    assert.equal(d.stdDevMs, 1_234)
  })

  test('a larger acceptable pause delays suspicion by exactly that much', () => {
    const a = regular(50, { acceptablePauseMs: 0 })
    const b = regular(50, { acceptablePauseMs: 2 * I })
    assert.ok(b.d.phi(b.last + 3 * I) < a.d.phi(a.last + 3 * I))
    const shift = (b.d.reachesPhiAt(8)! - b.last) - (a.d.reachesPhiAt(8)! - a.last)
    assert.ok(Math.abs(shift - 2 * I) < 1e-6, `shift ${shift}`)
  })

  test('stale and duplicate heartbeats add no sample', () => {
    const { d, last } = regular(10)
    const n = d.sampleCount
    const mean = d.meanMs
    d.heartbeat(last)
    d.heartbeat(last - 5_000)
    assert.equal(d.sampleCount, n)
    assert.equal(d.meanMs, mean)
    assert.equal(d.lastArrival, last)
  })

  test('rejects nonsense configuration and times', () => {
    assert.throws(() => new PhiAccrual({ expectedIntervalMs: 0 }), RangeError)
    assert.throws(() => new PhiAccrual({ expectedIntervalMs: Number.NaN }), RangeError)
    assert.throws(() => new PhiAccrual({ expectedIntervalMs: I, windowSize: 1 }), RangeError)
    assert.throws(() => new PhiAccrual({ expectedIntervalMs: I, windowSize: 2.5 }), RangeError)
    assert.throws(() => new PhiAccrual({ expectedIntervalMs: I, minStdDevMs: 0 }), RangeError)
    assert.throws(() => new PhiAccrual({ expectedIntervalMs: I, acceptablePauseMs: -1 }), RangeError)
    assert.throws(() => new PhiAccrual({ expectedIntervalMs: I }).heartbeat(Number.POSITIVE_INFINITY), RangeError)
  })
})
