import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { estimateComplexity, TIER_FLOORS, tierForParameters, tierRank, tierSatisfies, TIERS, type Tier } from '../../src/inference/tiers.ts'
import { BUDGET_WEIGHTS, splitBudget, splitByWeights } from '../../src/inference/budget.ts'
import { makeTinyLlama } from '../../native/gguf/tiny-llama.ts'
import { readGgufInfo } from '../../native/gguf/reader.ts'
import { mulberry32 } from '../helpers/random.ts'
import { tempDir } from '../helpers/nodes.ts'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const B = 1e9

describe('tierForParameters', () => {
  test('the named ranges of DESIGN.md, with real model sizes', () => {
    const cases: Array<[string, number, Tier]> = [
      ['Qwen2.5-0.5B', 0.49 * B, 'NANO'],
      ['TinyLlama-1.1B', 1.1 * B, 'NANO'],
      ['Qwen2.5-1.5B', 1.54 * B, 'MICRO'],
      ['Gemma-2B', 2.5 * B, 'MICRO'],
      ['Llama-3.2-3B', 3.21 * B, 'MICRO'],
      ['Llama-2-7B', 6.74 * B, 'MESO'],
      ['Llama-3-8B', 8.03 * B, 'MESO'],
      ['Qwen2.5-14B', 14.8 * B, 'MACRO'],
      ['Qwen2.5-32B', 32.8 * B, 'MACRO'],
      ['Llama-3-70B', 70.6 * B, 'MEGA'],
      ['Llama-3.1-405B', 405 * B, 'MEGA']
    ]
    for (const [name, count, tier] of cases) assert.equal(tierForParameters(count), tier, name)
  })

  test('gaps and shared end points: the documented rules', () => {
    assert.equal(tierForParameters(0), 'NANO')
    assert.equal(tierForParameters(0.1 * B), 'NANO', 'below 0.5B is still NANO')
    assert.equal(tierForParameters(1.5 * B - 1), 'NANO')
    assert.equal(tierForParameters(1.5 * B), 'MICRO', 'a shared end point belongs to the upper tier')
    assert.equal(tierForParameters(4 * B), 'MICRO', '3-7B splits at √21 B ≈ 4.58B')
    assert.equal(tierForParameters(4.5 * B), 'MICRO')
    assert.equal(tierForParameters(4.6 * B), 'MESO')
    assert.equal(tierForParameters(13 * B - 1), 'MESO')
    assert.equal(tierForParameters(13 * B), 'MACRO')
    assert.equal(tierForParameters(34 * B), 'MACRO')
    assert.equal(tierForParameters(48 * B), 'MACRO', '34-70B splits at √2380 B ≈ 48.8B')
    assert.equal(tierForParameters(49 * B), 'MEGA')
    assert.ok(Math.abs(TIER_FLOORS.MESO - Math.sqrt(21) * B) < 1)
  })

  test('is monotonic: more parameters never mean a lower tier', () => {
    const random = mulberry32(11)
    const counts = Array.from({ length: 2000 }, () => Math.floor(10 ** (6 + random() * 6))).sort((a, b) => a - b)
    for (let i = 1; i < counts.length; i++) {
      assert.ok(tierRank(tierForParameters(counts[i]!)) >= tierRank(tierForParameters(counts[i - 1]!)), `${counts[i - 1]} -> ${counts[i]}`)
    }
  })

  test('the tiny test model is NANO', () => {
    const file = join(tempDir('bz-tier-'), 'tiny.gguf')
    writeFileSync(file, makeTinyLlama({ seed: 5 }))
    assert.equal(tierForParameters(readGgufInfo(file).parameterCount), 'NANO')
  })

  test('refuses counts that are not counts', () => {
    for (const n of [-1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => tierForParameters(n), RangeError)
  })

  test('tier order and satisfaction', () => {
    assert.deepEqual(TIERS, ['NANO', 'MICRO', 'MESO', 'MACRO', 'MEGA'])
    assert.ok(tierSatisfies('MESO', 'MICRO'))
    assert.ok(tierSatisfies('MESO', 'MESO'))
    assert.ok(!tierSatisfies('NANO', 'MICRO'))
  })
})

describe('estimateComplexity', () => {
  test('a greeting is NANO; a long code and reasoning task is MEGA', () => {
    assert.equal(estimateComplexity({ prompt: 'hi there', maxTokens: 32 }).tier, 'NANO')
    const big = estimateComplexity({
      prompt: 'Implement this algorithm in TypeScript and prove step by step why it is correct:\n' + 'function f(x) {\n  return x;\n}\n'.repeat(2000),
      maxTokens: 8192
    })
    assert.equal(big.tier, 'MEGA')
    assert.equal(big.factors.code, 1)
    assert.equal(big.factors.reasoning, 1)
  })

  test('code or reasoning cues move a short request up', () => {
    const plain = estimateComplexity({ prompt: 'Tell me about the weather in a sentence.', maxTokens: 128 })
    const code = estimateComplexity({ prompt: 'Write a python function that parses a date.', maxTokens: 128 })
    const reasoning = estimateComplexity({ prompt: 'Prove step by step that the sum of two even numbers is even.', maxTokens: 128 })
    assert.equal(plain.factors.code, 0)
    assert.equal(plain.factors.reasoning, 0)
    assert.ok(code.factors.code > 0 && reasoning.factors.reasoning > 0)
    assert.ok(tierRank(code.tier) > tierRank(plain.tier), `${code.tier} vs ${plain.tier}`)
    assert.ok(tierRank(reasoning.tier) > tierRank(plain.tier), `${reasoning.tier} vs ${plain.tier}`)
  })

  test('messages count like a prompt; maxTokens defaults to 256', () => {
    const a = estimateComplexity({ messages: [{ content: 'debug this code' }, { content: 'please' }] })
    const b = estimateComplexity({ prompt: 'debug this code\nplease' })
    assert.deepEqual(a, b)
    assert.equal(a.factors.maxTokens, 256)
  })

  test('monotonic: a longer prompt, more output or another cue never lowers the score (seeded)', () => {
    const random = mulberry32(2024)
    const words = ['the', 'node', 'peer', 'code', 'why', 'plan', 'mesh', 'sql', 'token', 'river', 'derive', 'stone']
    const sentence = (n: number): string => Array.from({ length: n }, () => words[Math.floor(random() * words.length)]).join(' ')
    for (let i = 0; i < 500; i++) {
      const prompt = sentence(1 + Math.floor(random() * 50))
      const maxTokens = 1 + Math.floor(random() * 4000)
      const base = estimateComplexity({ prompt, maxTokens })
      const longer = estimateComplexity({ prompt: prompt + ' ' + sentence(1 + Math.floor(random() * 200)), maxTokens })
      const more = estimateComplexity({ prompt, maxTokens: maxTokens * 2 })
      for (const bigger of [longer, more]) {
        assert.ok(bigger.score >= base.score, `${prompt} / ${maxTokens}`)
        assert.ok(tierRank(bigger.tier) >= tierRank(base.tier))
      }
      assert.ok(base.score >= 0 && base.score <= 1)
    }
  })

  test('refuses a negative maxTokens', () => {
    assert.throws(() => estimateComplexity({ prompt: 'x', maxTokens: -1 }), RangeError)
  })
})

describe('7-3-6-9 budget split', () => {
  test('25 shares: context 7, system 3, generation 6, reserve 9', () => {
    assert.deepEqual(BUDGET_WEIGHTS, { context: 7, system: 3, generation: 6, reserve: 9 })
    assert.deepEqual(splitBudget(25), { context: 7, system: 3, generation: 6, reserve: 9 })
    assert.deepEqual(splitBudget(2500), { context: 700, system: 300, generation: 600, reserve: 900 })
    assert.deepEqual(splitBudget(0), { context: 0, system: 0, generation: 0, reserve: 0 })
  })

  test('rounding corrected by highest averages', () => {
    // 1146.88, 491.52, 983.04, 1474.56 round to 4097: the unit taken back is reserve's (3/491.5 = 9/1474.5, the later key)
    assert.deepEqual(splitBudget(4096), { context: 1147, system: 492, generation: 983, reserve: 1474 })
    // 3.36, 1.44, 2.88, 4.32 round to 11: the unit added goes to context (7/3.5 = 3/1.5 = 9/4.5, the earliest)
    assert.deepEqual(splitBudget(12), { context: 4, system: 1, generation: 3, reserve: 4 })
    // 3.64, 1.56, 3.12, 4.68 round to 14: reserve gives one back; nothing shrank from 12
    assert.deepEqual(splitBudget(13), { context: 4, system: 2, generation: 3, reserve: 4 })
  })

  test('always sums to the total, each bucket within one unit of its exact share (seeded)', () => {
    const random = mulberry32(369)
    for (let i = 0; i < 2000; i++) {
      const total = Math.floor(random() * (i < 1000 ? 100 : 1e9))
      const s = splitBudget(total)
      assert.equal(s.context + s.system + s.generation + s.reserve, total, `total ${total}`)
      for (const [k, w] of Object.entries(BUDGET_WEIGHTS)) {
        assert.ok(Math.abs(s[k as keyof typeof s] - total * w / 25) < 1, `${k} of ${total}`)
      }
    }
  })

  test('monotonic: a bigger total never shrinks a bucket (largest-remainder rounding would, at 12 -> 13)', () => {
    let prev = splitBudget(0)
    for (let total = 1; total <= 20_000; total++) {
      const s = splitBudget(total)
      for (const k of Object.keys(s) as Array<keyof typeof s>) assert.ok(s[k] >= prev[k], `${k} at ${total}`)
      prev = s
    }
  })

  test('any weights: exact where shares are whole, ties to the earlier key, zero weight gets nothing', () => {
    assert.deepEqual(splitByWeights(10, { a: 1, b: 4 }), { a: 2, b: 8 })
    assert.deepEqual(splitByWeights(1, { a: 1, b: 1 }), { a: 1, b: 0 })
    assert.deepEqual(splitByWeights(5, { a: 1, b: 1, c: 0 }), { a: 3, b: 2, c: 0 })
    assert.deepEqual(splitByWeights(3, { a: 1, b: 1, c: 1, d: 1 }), { a: 1, b: 1, c: 1, d: 0 })
  })

  test('refuses totals and weights that cannot be split', () => {
    for (const total of [-1, 1.5, Number.NaN, 2 ** 60]) assert.throws(() => splitBudget(total), RangeError)
    assert.throws(() => splitByWeights(10, { a: 0, b: 0 }), RangeError)
    assert.throws(() => splitByWeights(10, { a: -1, b: 2 }), RangeError)
  })
})
