/**
 * The 7-3-6-9 budget split (DESIGN.md "Inference"). We read it as weights over the four parts
 * of one request's token budget (a model's context window), 25 shares in all:
 *
 * | bucket     | weight | share | holds                                                      |
 * | ---------- | ------ | ----- | ---------------------------------------------------------- |
 * | context    | 7      | 28 %  | the caller's prompt or conversation                        |
 * | system     | 3      | 12 %  | the node's own preamble: system prompt, constitution       |
 * | generation | 6      | 24 %  | new tokens the model may generate (the maxTokens cap)      |
 * | reserve    | 9      | 36 %  | headroom: a second pass (verify, retry) and tokenizer slack |
 *
 * The split is in whole tokens and sums to the total exactly. It is Sainte-Laguë/Webster
 * apportionment: each bucket's exact share rounded, then corrected one token at a time by the
 * highest-averages rule. Unlike largest-remainder rounding this never shrinks a bucket when the
 * total grows (a bigger context never takes a token from generation), and for these four
 * weights every bucket stays within one token of its exact share.
 */

export const BUDGET_WEIGHTS = { context: 7, system: 3, generation: 6, reserve: 9 } as const

export type BudgetBucket = keyof typeof BUDGET_WEIGHTS
export type BudgetSplit = Record<BudgetBucket, number>

/** Splits `total` whole tokens (or any other integer unit) 7:3:6:9. */
export function splitBudget (total: number): BudgetSplit {
  return splitByWeights(total, BUDGET_WEIGHTS)
}

/** Splits `total` in proportion to `weights` (non-negative, not all zero), in whole units; ties go to the earlier key. */
export function splitByWeights<K extends string> (total: number, weights: Readonly<Record<K, number>>): Record<K, number> {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`budget total must be a whole number >= 0, got ${total}`)
  const keys = Object.keys(weights) as K[]
  const w = keys.map(k => weights[k])
  const sum = w.reduce((s, x) => s + x, 0)
  if (w.some(x => !Number.isFinite(x) || x < 0) || !(sum > 0)) throw new RangeError('budget weights must be finite, >= 0 and not all zero')
  const units = w.map(x => Math.round(total * x / sum))
  let missing = total - units.reduce((s, x) => s + x, 0)
  // Rounding is off by at most half a unit per bucket. Each step then does what handing out
  // units one at a time would: the next unit goes to the highest w/(a+½) (ties: the earlier
  // key), and the last unit handed out, the lowest w/(a-½) (ties: the later key), is taken back.
  while (missing > 0) {
    const i = argBest(w.map((x, j) => x / (units[j]! + 0.5)), (a, b) => a > b)
    units[i]!++
    missing--
  }
  while (missing < 0) {
    const i = argBest(w.map((x, j) => units[j]! > 0 ? x / (units[j]! - 0.5) : Number.POSITIVE_INFINITY), (a, b) => a <= b)
    units[i]!--
    missing++
  }
  return Object.fromEntries(keys.map((k, j) => [k, units[j]!])) as Record<K, number>
}

/** the index that `better` prefers: with a strict `better` the first of equals wins, with a loose one the last */
function argBest (values: number[], better: (a: number, b: number) => boolean): number {
  let best = 0
  for (let i = 1; i < values.length; i++) if (better(values[i]!, values[best]!)) best = i
  return best
}
