import { test, describe } from 'node:test'
import { mulberry32 } from '../helpers/random.ts'
import assert from 'node:assert/strict'
import {
  DEFAULT_NTU_CONFIG,
  INITIAL_NTU_STATE,
  detectPattern,
  ntuObserve,
  temporalConsistency,
  validateNtuConfig,
  windowEntropy,
  type NtuConfig,
  type NtuState
} from '../../src/governance/ntu.ts'


const inUnit = (v: number): boolean => Number.isFinite(v) && v >= 0 && v <= 1
const close = (a: number, b: number, eps = 1e-12): boolean => Math.abs(a - b) <= eps

function run (observations: readonly number[], config: NtuConfig = DEFAULT_NTU_CONFIG): NtuState {
  let s: NtuState = INITIAL_NTU_STATE
  for (const o of observations) s = ntuObserve(s, o, config)
  return s
}

describe('NTU defaults', () => {
  test('window 5, alpha 0.4, beta 0.35, gamma 0.25', () => {
    assert.deepEqual({ ...DEFAULT_NTU_CONFIG }, { window: 5, alpha: 0.4, beta: 0.35, gamma: 0.25 })
    assert.ok(Object.isFrozen(DEFAULT_NTU_CONFIG))
    assert.doesNotThrow(() => validateNtuConfig(DEFAULT_NTU_CONFIG))
  })

  test('initial state', () => {
    assert.deepEqual(INITIAL_NTU_STATE, { belief: 0.5, entropy: 1, potential: 0.5, recent: [], observations: 0 })
    assert.ok(Object.isFrozen(INITIAL_NTU_STATE))
    assert.ok(Object.isFrozen(INITIAL_NTU_STATE.recent))
  })

  test('detectPattern on no observations returns the initial state', () => {
    const d = detectPattern([])
    assert.equal(d.detected, false)
    assert.equal(d.state, INITIAL_NTU_STATE)
  })
})

describe('NTU state stays in [0, 1]', () => {
  test('for 200 seeded random sequences of 60 observations (including out-of-range and NaN)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = mulberry32(seed)
      const window = 1 + Math.floor(rand() * 12)
      const alpha = rand() * 0.6
      const beta = rand() * (1 - alpha)
      const config: NtuConfig = seed % 2 === 0 ? DEFAULT_NTU_CONFIG : { window, alpha, beta, gamma: 1 - alpha - beta }
      validateNtuConfig(config)
      let s: NtuState = INITIAL_NTU_STATE
      for (let i = 0; i < 60; i++) {
        const r = rand()
        // mostly in range, sometimes far out of it, now and then NaN
        const o = r < 0.05 ? Number.NaN : r < 0.15 ? (rand() - 0.5) * 10 : rand()
        s = ntuObserve(s, o, config)
        assert.ok(inUnit(s.belief), `seed ${seed} step ${i}: belief ${s.belief}`)
        assert.ok(inUnit(s.entropy), `seed ${seed} step ${i}: entropy ${s.entropy}`)
        assert.ok(inUnit(s.potential), `seed ${seed} step ${i}: potential ${s.potential}`)
        assert.ok(close(s.potential, s.belief * (1 - s.entropy)), `seed ${seed} step ${i}: potential = belief * (1 - entropy)`)
        assert.equal(s.observations, i + 1)
        assert.equal(s.recent.length, Math.min(i + 1, config.window))
        for (const v of s.recent) assert.ok(inUnit(v))
      }
    }
  })

  test('temporalConsistency and windowEntropy stay in [0, 1] on random windows', () => {
    const rand = mulberry32(0xb12a)
    for (let n = 0; n < 500; n++) {
      const values = Array.from({ length: Math.floor(rand() * 10) }, () => rand())
      assert.ok(inUnit(temporalConsistency(values)))
      assert.ok(inUnit(windowEntropy(values)))
    }
  })

  test('the PRNG is deterministic', () => {
    const a = mulberry32(42)
    const b = mulberry32(42)
    for (let i = 0; i < 10; i++) assert.equal(a(), b())
  })
})

describe('pattern detection', () => {
  test('a constant stream of 1.0 is a pattern at threshold 0.95', () => {
    const d = detectPattern(Array(20).fill(1), 0.95)
    assert.equal(d.detected, true)
    assert.ok(d.state.belief >= 0.95 && d.state.belief <= 1)
    assert.equal(d.state.entropy, 0)
    assert.equal(d.state.potential, d.state.belief)
  })

  test('belief on a constant 1.0 stream rises monotonically and converges', () => {
    let s: NtuState = INITIAL_NTU_STATE
    let last = s.belief
    for (let i = 0; i < 30; i++) {
      s = ntuObserve(s, 1)
      assert.ok(s.belief >= last - 1e-15, `step ${i}`)
      last = s.belief
    }
    // fixed point: b = alpha * 1 + beta * prior(high) + gamma * b
    const priorHigh = 0.8 / Math.hypot(0.8, 0.1, 0.1)
    assert.ok(close(s.belief, (0.4 + 0.35 * priorHigh) / 0.75, 1e-9))
  })

  test('a constant stream of 0.0 is not a pattern', () => {
    const d = detectPattern(Array(50).fill(0), 0.95)
    assert.equal(d.detected, false)
    assert.ok(d.state.belief < 0.95)
    assert.equal(d.state.entropy, 0)
  })

  test('a noisy alternating stream is not a pattern', () => {
    assert.equal(detectPattern(Array.from({ length: 50 }, (_, i) => i % 2), 0.95).detected, false)
    const rand = mulberry32(7)
    const noisy = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 0.9 : 0.1) + (rand() - 0.5) * 0.1)
    const d = detectPattern(noisy, 0.95)
    assert.equal(d.detected, false)
    assert.ok(d.state.belief < 0.8)
  })

  test('the threshold argument decides detection', () => {
    const zeros = Array(50).fill(0)
    const belief = detectPattern(zeros).state.belief
    assert.equal(detectPattern(zeros, belief).detected, true)
    assert.equal(detectPattern(zeros, belief + 1e-9).detected, false)
    assert.equal(detectPattern(zeros, 0).detected, true)
  })

  test('detectPattern(observations, threshold, window) honours its window', () => {
    // ten alternating observations, then six steady ones: a short window forgets the noise
    const seq = [...Array.from({ length: 10 }, (_, i) => i % 2), 1, 1, 1, 1, 1, 1]
    assert.equal(detectPattern(seq, 0.95, 2).detected, true)
    assert.equal(detectPattern(seq, 0.95, 5).detected, true)
    assert.equal(detectPattern(seq, 0.95, 10).detected, false)
    assert.equal(detectPattern(seq, 0.95, 20).detected, false)
    for (const window of [1, 2, 3, 7, 16, 40]) {
      const { state } = detectPattern(seq, 0.95, window)
      assert.equal(state.recent.length, Math.min(window, seq.length))
      assert.deepEqual(state.recent, seq.slice(-window))
      assert.equal(state.observations, seq.length)
    }
    // the default window is 5
    assert.deepEqual(detectPattern(seq).state, detectPattern(seq, 0.95, 5).state)
  })

  test('detectPattern rejects a bad window', () => {
    for (const window of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => detectPattern([1], 0.95, window), RangeError)
    }
  })

  test('detectPattern matches stepping ntuObserve by hand', () => {
    const rand = mulberry32(99)
    const seq = Array.from({ length: 25 }, () => rand())
    assert.deepEqual(detectPattern(seq, 0.95, 4).state, run(seq, { ...DEFAULT_NTU_CONFIG, window: 4 }))
  })
})

describe('window entropy', () => {
  test('a window all in one band has entropy 0', () => {
    assert.equal(windowEntropy([0.1, 0.2, 0.3, 0, 0.05]), 0)
    assert.equal(windowEntropy([0.4, 0.5, 0.6, 0.34]), 0)
    assert.equal(windowEntropy([0.7, 0.8, 0.9, 1]), 0)
    assert.equal(windowEntropy([0.5]), 0)
    assert.equal(run([0.9, 0.95, 1, 0.8, 0.7]).entropy, 0)
  })

  test('a window spread evenly over 3 bands has entropy 1', () => {
    assert.ok(close(windowEntropy([0.1, 0.5, 0.9]), 1))
    assert.ok(close(windowEntropy([0, 0.2, 0.4, 0.6, 0.8, 1]), 1))
    const s = run([0.1, 0.5, 0.9], { ...DEFAULT_NTU_CONFIG, window: 3 })
    assert.ok(close(s.entropy, 1))
    assert.ok(close(s.potential, 0))
  })

  test('two bands split evenly give log2(2)/log2(3)', () => {
    assert.ok(close(windowEntropy([0.1, 0.9]), 1 / Math.log2(3)))
  })

  test('band edges: 1/3 is medium, 2/3 is high', () => {
    assert.equal(windowEntropy([1 / 3, 0.5]), 0)
    assert.equal(windowEntropy([2 / 3, 1]), 0)
    assert.ok(windowEntropy([1 / 3 - 1e-9, 1 / 3]) > 0)
  })

  test('an empty window has maximal entropy', () => {
    assert.equal(windowEntropy([]), 1)
  })
})

describe('temporal consistency', () => {
  test('fewer than two values is neutral', () => {
    assert.equal(temporalConsistency([]), 0.5)
    assert.equal(temporalConsistency([0.7]), 0.5)
  })

  test('a constant window is perfectly consistent', () => {
    assert.ok(close(temporalConsistency([0.3, 0.3, 0.3, 0.3]), 1))
  })

  test('reversals lower consistency', () => {
    assert.ok(temporalConsistency([0.1, 0.2, 0.3, 0.4]) > temporalConsistency([0.1, 0.4, 0.1, 0.4]))
  })
})

describe('the sliding window', () => {
  test('keeps only the last N observations, oldest first', () => {
    const seq = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    const s = run(seq)
    assert.deepEqual(s.recent, [0.4, 0.5, 0.6, 0.7, 0.8])
    assert.equal(s.observations, 8)
    const s3 = run(seq, { ...DEFAULT_NTU_CONFIG, window: 3 })
    assert.deepEqual(s3.recent, [0.6, 0.7, 0.8])
    const s1 = run(seq, { ...DEFAULT_NTU_CONFIG, window: 1 })
    assert.deepEqual(s1.recent, [0.8])
  })

  test('grows one by one until full', () => {
    let s: NtuState = INITIAL_NTU_STATE
    for (let i = 1; i <= 9; i++) {
      s = ntuObserve(s, i / 10)
      assert.equal(s.recent.length, Math.min(i, 5))
      assert.equal(s.recent[s.recent.length - 1], i / 10)
    }
  })

  test('a state carried into a smaller window is trimmed to it', () => {
    const big = run([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], { ...DEFAULT_NTU_CONFIG, window: 6 })
    const next = ntuObserve(big, 0.7, { ...DEFAULT_NTU_CONFIG, window: 2 })
    assert.deepEqual(next.recent, [0.6, 0.7])
  })
})

describe('purity', () => {
  test('ntuObserve does not mutate its input state', () => {
    const state: NtuState = { belief: 0.7, entropy: 0.3, potential: 0.49, recent: [0.2, 0.4, 0.6, 0.8, 0.9], observations: 12 }
    const snapshot = structuredClone(state)
    const recentBefore = state.recent
    const next = ntuObserve(state, 0.1)
    assert.deepEqual(state, snapshot)
    assert.equal(state.recent, recentBefore)
    assert.notEqual(next.recent, state.recent)
    assert.notEqual(next, state)
  })

  test('works on a deeply frozen state', () => {
    const frozen: NtuState = Object.freeze({ belief: 0.5, entropy: 1, potential: 0.5, recent: Object.freeze([0.5, 0.5]), observations: 2 })
    assert.doesNotThrow(() => ntuObserve(frozen, 0.5))
    assert.doesNotThrow(() => ntuObserve(INITIAL_NTU_STATE, 1))
    assert.deepEqual(INITIAL_NTU_STATE.recent, [])
  })

  test('same input, same output', () => {
    const state = run([0.2, 0.9, 0.4])
    assert.deepEqual(ntuObserve(state, 0.33), ntuObserve(state, 0.33))
  })

  test('detectPattern does not mutate the observations', () => {
    const seq = [0.5, Number.NaN, 2, -1]
    detectPattern(seq)
    assert.deepEqual(seq, [0.5, Number.NaN, 2, -1])
  })
})

describe('validateNtuConfig', () => {
  test('accepts weights summing to 1 (within floating error)', () => {
    for (const c of [
      { window: 1, alpha: 1, beta: 0, gamma: 0 },
      { window: 3, alpha: 0.5, beta: 0.5, gamma: 0 },
      { window: 100, alpha: 0.1, beta: 0.2, gamma: 0.7 },
      { window: 5, alpha: 1 / 3, beta: 1 / 3, gamma: 1 / 3 }
    ]) assert.doesNotThrow(() => validateNtuConfig(c), JSON.stringify(c))
  })

  test('rejects weights that do not sum to 1', () => {
    for (const c of [
      { window: 5, alpha: 0.4, beta: 0.35, gamma: 0.3 },
      { window: 5, alpha: 0.4, beta: 0.35, gamma: 0.2 },
      { window: 5, alpha: 0, beta: 0, gamma: 0 },
      { window: 5, alpha: 0.5, beta: 0.5, gamma: 0.5 }
    ]) assert.throws(() => validateNtuConfig(c), /alpha \+ beta \+ gamma must equal 1/)
  })

  test('rejects a weight outside [0, 1] or NaN', () => {
    assert.throws(() => validateNtuConfig({ window: 5, alpha: 1.5, beta: -0.5, gamma: 0 }), /NTU alpha must be in \[0, 1\]/)
    assert.throws(() => validateNtuConfig({ window: 5, alpha: 0.5, beta: -0.25, gamma: 0.75 }), /NTU beta/)
    assert.throws(() => validateNtuConfig({ window: 5, alpha: 0.5, beta: 0.5, gamma: Number.NaN }), /NTU gamma/)
  })

  test('rejects a window that is not a positive integer', () => {
    for (const window of [0, -3, 2.5, Number.NaN, Infinity]) {
      assert.throws(() => validateNtuConfig({ ...DEFAULT_NTU_CONFIG, window }), RangeError)
    }
  })
})

describe('clamping', () => {
  test('NaN and out-of-range observations are clamped into [0, 1]', () => {
    const cases: Array<[number, number]> = [[Number.NaN, 0], [-5, 0], [-Infinity, 0], [-0.0001, 0], [7, 1], [Infinity, 1], [1.0001, 1], [0.42, 0.42]]
    for (const [raw, clamped] of cases) {
      const s = ntuObserve(INITIAL_NTU_STATE, raw)
      assert.deepEqual(s.recent, [clamped], String(raw))
      assert.deepEqual(s, ntuObserve(INITIAL_NTU_STATE, clamped), String(raw))
    }
  })

  test('a stream of garbage behaves as the clamped stream', () => {
    const garbage = [Number.NaN, -1, 99, Infinity, -Infinity, 1.5, -0.5, Number.NaN]
    const clamped = [0, 0, 1, 1, 0, 1, 0, 0]
    assert.deepEqual(detectPattern(garbage).state, detectPattern(clamped).state)
    assert.equal(detectPattern(Array(20).fill(Infinity)).detected, true)
    assert.equal(detectPattern(Array(20).fill(Number.NaN)).detected, false)
  })
})
