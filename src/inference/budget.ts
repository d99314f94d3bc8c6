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
 * The split is in whole tokens and always sums to the total exactly (largest remainder: each
 * bucket gets the floor of its share, and the tokens left over go one each to the buckets with
 * the biggest fractional parts, ties to the earlier bucket).
 */

export const BUDGET_WEIGHTS = { context: 7, system: 3, generation: 6, reserve: 9 } as const

export type BudgetBucket = keyof typeof BUDGET_WEIGHTS
export type BudgetSplit = Record<BudgetBucket, number>

/** Splits `total` whole tokens (or any other integer unit) 7:3:6:9. */
export function splitBudget (total: number): BudgetSplit {
  return splitByWeights(total, BUDGET_WEIGHTS)
}

/** Splits `total` in proportion to `weights` (non-negative, not all zero), in whole units. */
export function splitByWeights<K extends string> (total: number, weights: Readonly<Record<K, number>>): Record<K, number> {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`budget total must be a whole number >= 0, got ${total}`)
  const keys = Object.keys(weights) as K[]
  const sum = keys.reduce((s, k) => s + weights[k], 0)
  if (keys.some(k => !Number.isFinite(weights[k]) || weights[k] < 0) || !(sum > 0)) throw new RangeError('budget weights must be finite, >= 0 and not all zero')
  const out = {} as Record<K, number>
  const remainders: Array<{ key: K, fraction: number, order: number }> = []
  let given = 0
  for (const [order, key] of keys.entries()) {
    const exact = total * weights[key] / sum
    out[key] = Math.floor(exact)
    given += out[key]
    remainders.push({ key, fraction: exact - out[key], order })
  }
  remainders.sort((a, b) => b.fraction - a.fraction || a.order - b.order)
  for (let i = 0; i < total - given; i++) out[remainders[i]!.key]++
  return out
}
