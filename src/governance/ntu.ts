/**
 * NTU (NeuroTemporal Unit): a small pattern detector over a sliding window of observations
 * in [0, 1]. State is (belief, entropy, potential):
 *   belief'   = alpha * temporal consistency + beta * prior(observation) + gamma * belief
 *   entropy'  = Shannon entropy of the window over three bins (low/medium/high), normalised
 *   potential = belief' * (1 - entropy')
 * alpha + beta + gamma = 1, so belief stays in [0, 1] and converges. Pure functions: the
 * membership layer feeds it how each peer's messages validate and reads belief back.
 */

export interface NtuConfig {
  window: number
  alpha: number
  beta: number
  gamma: number
}

export const DEFAULT_NTU_CONFIG: Readonly<NtuConfig> = Object.freeze({ window: 5, alpha: 0.4, beta: 0.35, gamma: 0.25 })

export interface NtuState {
  belief: number
  entropy: number
  potential: number
  /** the last `window` observations, oldest first */
  recent: readonly number[]
  observations: number
}

export const INITIAL_NTU_STATE: Readonly<NtuState> = Object.freeze({ belief: 0.5, entropy: 1, potential: 0.5, recent: Object.freeze([]), observations: 0 })

// Prior belief for an observation's band: the first component of the unit-normalised
// embedding of each band (low [0.1, 0.2, 0.7], medium [0.4, 0.4, 0.2], high [0.8, 0.1, 0.1]).
const PRIOR_LOW = 0.1 / Math.hypot(0.1, 0.2, 0.7)
const PRIOR_MEDIUM = 0.4 / Math.hypot(0.4, 0.4, 0.2)
const PRIOR_HIGH = 0.8 / Math.hypot(0.8, 0.1, 0.1)
const LOG2_3 = Math.log2(3)

const clamp01 = (v: number): number => Number.isNaN(v) ? 0 : v < 0 ? 0 : v > 1 ? 1 : v

function band (v: number): 0 | 1 | 2 {
  return v < 1 / 3 ? 0 : v < 2 / 3 ? 1 : 2
}

function prior (v: number): number {
  const b = band(v)
  return b === 0 ? PRIOR_LOW : b === 1 ? PRIOR_MEDIUM : PRIOR_HIGH
}

/**
 * How steady the window is: low variance and no reversals of direction score 1. A constant
 * stream is perfectly consistent.
 */
export function temporalConsistency (values: readonly number[]): number {
  if (values.length < 2) return 0.5
  let mean = 0
  for (const v of values) mean += v
  mean /= values.length
  let variance = 0
  for (const v of values) variance += (v - mean) ** 2
  variance /= values.length
  let reversals = 0
  let lastSign = 0
  for (let i = 1; i < values.length; i++) {
    const sign = Math.sign(values[i]! - values[i - 1]!)
    if (sign === 0) continue
    if (lastSign !== 0 && sign !== lastSign) reversals++
    lastSign = sign
  }
  const trend = 1 - reversals / (values.length - 1)
  return 0.7 * Math.exp(-4 * variance) + 0.3 * trend
}

/** Normalised Shannon entropy of the window over the three bands. */
export function windowEntropy (values: readonly number[]): number {
  if (values.length === 0) return 1
  const counts = [0, 0, 0]
  for (const v of values) counts[band(v)]!++
  let h = 0
  for (const c of counts) {
    if (c === 0) continue
    const p = c / values.length
    h -= p * Math.log2(p)
  }
  return h / LOG2_3
}

export function validateNtuConfig (config: NtuConfig): void {
  const { window, alpha, beta, gamma } = config
  if (!Number.isInteger(window) || window < 1) throw new RangeError('NTU window must be a positive integer')
  for (const [k, v] of Object.entries({ alpha, beta, gamma })) {
    if (!(v >= 0 && v <= 1)) throw new RangeError(`NTU ${k} must be in [0, 1]`)
  }
  if (Math.abs(alpha + beta + gamma - 1) > 1e-9) throw new RangeError('NTU alpha + beta + gamma must equal 1')
}

/** One observation in, the next state out. */
export function ntuObserve (state: NtuState, observation: number, config: NtuConfig = DEFAULT_NTU_CONFIG): NtuState {
  const value = clamp01(observation)
  const recent = state.recent.length >= config.window
    ? [...state.recent.slice(state.recent.length - config.window + 1), value]
    : [...state.recent, value]
  const belief = clamp01(config.alpha * temporalConsistency(recent) + config.beta * prior(value) + config.gamma * state.belief)
  const entropy = clamp01(windowEntropy(recent))
  return { belief, entropy, potential: clamp01(belief * (1 - entropy)), recent, observations: state.observations + 1 }
}

export interface PatternDetection {
  detected: boolean
  state: NtuState
}

/** Runs a fresh NTU over the observations; a pattern is detected when belief reaches the threshold. */
export function detectPattern (observations: readonly number[], threshold = 0.95, window = DEFAULT_NTU_CONFIG.window): PatternDetection {
  const config = { ...DEFAULT_NTU_CONFIG, window }
  validateNtuConfig(config)
  let state: NtuState = INITIAL_NTU_STATE
  for (const o of observations) state = ntuObserve(state, o, config)
  return { detected: state.belief >= threshold, state }
}
