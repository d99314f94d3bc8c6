import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { FairAdmission, gini } from '../../src/inference/admission.ts'

describe('Gini', () => {
  test('0 for equal shares, (n-1)/n when one takes all, textbook values in between', () => {
    assert.equal(gini([5, 5, 5, 5]), 0)
    assert.equal(gini([0, 0, 0, 100]), 0.75)
    assert.equal(gini([0, 100]), 0.5)
    assert.ok(Math.abs(gini([1, 2, 3, 4, 5]) - 0.2667) < 1e-3)
    assert.equal(gini([]), 0)
    assert.equal(gini([7]), 0)
  })
})

describe('fair admission', () => {
  test('a requester over its budget in the window is rate limited, with a retry time, until the window slides', () => {
    const a = new FairAdmission({ budgetTokens: 100, windowMs: 10_000 })
    assert.deepEqual(a.admit('alice', 60, 0), { ok: true })
    a.record('alice', 60, 0)
    const no = a.admit('alice', 60, 1000)
    assert.equal(no.ok, false)
    assert.ok(!no.ok && no.code === 'RATE_LIMITED' && /rate limited: alice was served 60 of its 100 tokens/.test(no.reason))
    assert.ok(!no.ok && no.retryAfterMs === 9000)
    assert.deepEqual(a.admit('bob', 60, 1000), { ok: true }, 'budgets are per requester')
    assert.deepEqual(a.admit('alice', 60, 10_001), { ok: true }, 'the old tokens left the window')
  })

  test('without contention the Gini limit refuses nobody; with others waiting it refuses whoever took more than its share', () => {
    const a = new FairAdmission({ budgetTokens: 10_000 })
    a.record('alice', 1000, 0)
    assert.deepEqual(a.admit('alice', 500, 1), { ok: true }, 'alone: serve')
    const unfair = a.admit('alice', 500, 1, ['bob'])
    assert.ok(!unfair.ok && unfair.code === 'RATE_LIMITED' && /Gini 0\.50 > 0\.35/.test(unfair.reason))
    assert.deepEqual(a.admit('bob', 500, 1, ['alice']), { ok: true }, 'the one behind is served')
  })

  test('the least served requester goes next', () => {
    const a = new FairAdmission()
    a.record('alice', 300, 0)
    a.record('bob', 100, 0)
    assert.equal(a.pickNext(['alice', 'bob', 'carol'], 1), 2)
    assert.equal(a.pickNext(['alice', 'bob'], 1), 1)
  })

  test('a full waiting line answers busy', () => {
    const a = new FairAdmission({ maxWaiting: 2 })
    const r = a.admit('x', 1, 0, ['a', 'b'])
    assert.ok(!r.ok && r.code === 'BUSY')
  })

  test('served shares converge: a greedy requester cannot push the Gini past the limit while others wait', () => {
    const a = new FairAdmission({ budgetTokens: 1_000_000, windowMs: 1_000_000 })
    let now = 0
    for (let i = 0; i < 300; i++) {
      now++
      const waiting = ['greedy', 'greedy', 'greedy', 'small', 'tiny']
      const who = waiting[a.pickNext(waiting, now)]!
      const tokens = who === 'greedy' ? 200 : 100
      if (a.admit(who, tokens, now, waiting).ok) a.record(who, tokens, now)
    }
    assert.ok(a.giniNow(now) <= 0.35, `gini ${a.giniNow(now)}`)
  })
})
