/**
 * Model tiers (DESIGN.md "Inference"): NANO (0.5-1.5B parameters) < MICRO (1.5-3B) <
 * MESO (7-13B) < MACRO (13-34B) < MEGA (70B+). Which tier a model is in, and which tier a
 * request needs.
 *
 * The named ranges leave gaps (below 0.5B, 3-7B, 34-70B) and share end points (1.5B, 13B), so
 * every count needs a rule:
 * - Shared end points belong to the upper tier: a range is [low, high), so 1.5B is MICRO and
 *   13B is MACRO.
 * - A gap is split at its geometric midpoint (sizes scale multiplicatively): 3-7B splits at
 *   √(3·7) ≈ 4.58B (a 4B model is MICRO, a 6.7B "7B" model is MESO), 34-70B at √(34·70) ≈ 48.8B.
 * - Anything under 0.5B is NANO (the smallest tier), anything from 70B up is MEGA.
 */

export const TIERS = ['NANO', 'MICRO', 'MESO', 'MACRO', 'MEGA'] as const
export type Tier = typeof TIERS[number]

/** The smallest parameter count of each tier. */
export const TIER_FLOORS: Readonly<Record<Tier, number>> = {
  NANO: 0,
  MICRO: 1.5e9,
  MESO: Math.sqrt(3e9 * 7e9),
  MACRO: 13e9,
  MEGA: Math.sqrt(34e9 * 70e9)
}

export function tierForParameters (count: number): Tier {
  if (!Number.isFinite(count) || count < 0) throw new RangeError(`parameter count must be a finite number >= 0, got ${count}`)
  let tier: Tier = 'NANO'
  for (const t of TIERS) if (count >= TIER_FLOORS[t]) tier = t
  return tier
}

/** 0 for NANO up to 4 for MEGA. */
export function tierRank (tier: Tier): number {
  return TIERS.indexOf(tier)
}

/** Whether a model of tier `model` is big enough for a request that needs `needed`. */
export function tierSatisfies (model: Tier, needed: Tier): boolean {
  return tierRank(model) >= tierRank(needed)
}

export interface ComplexityInput {
  prompt?: string
  messages?: ReadonlyArray<{ content: string }>
  /** tokens the caller wants back; 256 when absent */
  maxTokens?: number
}

export interface ComplexityEstimate {
  /** 0 (trivial) to 1 */
  score: number
  tier: Tier
  factors: {
    /** estimated prompt tokens: characters / 4 */
    promptTokens: number
    maxTokens: number
    /** 0, 0.5 (one code cue) or 1 (two or more) */
    code: number
    /** 0, 0.5 (one reasoning cue) or 1 (two or more) */
    reasoning: number
  }
}

const DEFAULT_MAX_TOKENS = 256
/** input and output sizes at which their factor saturates */
const PROMPT_TOKENS_FULL = 32_768
const OUTPUT_TOKENS_FULL = 8_192
const WEIGHTS = { input: 0.3, output: 0.2, code: 0.25, reasoning: 0.25 } as const
/** the score from which each tier is needed; a score of 1 (everything saturated) is MEGA */
const SCORE_FLOORS: Readonly<Record<Tier, number>> = { NANO: 0, MICRO: 0.2, MESO: 0.4, MACRO: 0.6, MEGA: 0.8 }

const CODE_CUES = [/```/, /\bcode\b/i, /\bfunctions?\b/i, /\bclass(es)?\b/i, /\bimplement/i, /\brefactor/i, /\bdebug/i,
  /\bbug\b/i, /\bcompil(e|er|ation)\b/i, /\bstack trace\b/i, /\bregex\b/i, /\bsql\b/i, /\b(type|java)script\b/i,
  /\bpython\b/i, /\brust\b/i, /\balgorithm/i, /[{};]\s*\n/]
const REASONING_CUES = [/\bprove\b|\bproof\b/i, /\breason(ing)?\b/i, /\bstep[- ]by[- ]step\b/i, /\bderive\b/i,
  /\banaly[sz]e\b|\banalysis\b/i, /\bexplain why\b/i, /\bmath(ematical)?\b/i, /\btheorem\b/i, /\bcalculate\b/i,
  /\bplan\b/i, /\bcompare\b/i, /\btrade-?offs?\b/i, /\boptimi[sz]e\b/i, /\bwhy\b/i]

/**
 * How demanding a request is, from its size and what it asks for. The score is a weighted sum
 * of four factors in [0, 1]: prompt length and requested output (both on a log scale, as cost
 * and difficulty grow far slower than length), code cues and reasoning cues. Each factor only
 * ever raises the score, so a longer prompt, more output or another cue never lowers the tier.
 */
export function estimateComplexity (input: ComplexityInput): ComplexityEstimate {
  const text = [input.prompt ?? '', ...(input.messages ?? []).map(m => m.content)].join('\n')
  const promptTokens = Math.ceil(text.length / 4)
  const maxTokens = input.maxTokens ?? DEFAULT_MAX_TOKENS
  if (!Number.isFinite(maxTokens) || maxTokens < 0) throw new RangeError(`maxTokens must be a finite number >= 0, got ${maxTokens}`)
  const code = cueFactor(text, CODE_CUES)
  const reasoning = cueFactor(text, REASONING_CUES)
  const score = WEIGHTS.input * logScale(promptTokens, PROMPT_TOKENS_FULL) +
    WEIGHTS.output * logScale(maxTokens, OUTPUT_TOKENS_FULL) +
    WEIGHTS.code * code +
    WEIGHTS.reasoning * reasoning
  let tier: Tier = 'NANO'
  for (const t of TIERS) if (score >= SCORE_FLOORS[t]) tier = t
  return { score, tier, factors: { promptTokens, maxTokens, code, reasoning } }
}

function logScale (n: number, full: number): number {
  return Math.min(1, Math.log2(1 + n) / Math.log2(1 + full))
}

function cueFactor (text: string, cues: readonly RegExp[]): number {
  const hits = cues.filter(c => c.test(text)).length
  return hits === 0 ? 0 : hits === 1 ? 0.5 : 1
}
