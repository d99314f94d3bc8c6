import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { ReplayCache } from '../../src/pci/replay.ts'

describe('ReplayCache', () => {
  test('rejects a bad maxEntries', () => {
    for (const n of [0, -1, 1.5, Number.NaN]) assert.throws(() => new ReplayCache(n), RangeError)
  })

  test('a key is rejected while unexpired, then accepted again after its expiry', () => {
    const c = new ReplayCache(10)
    assert.equal(c.checkAndAdd('k', 1000, 0), true)
    assert.equal(c.has('k', 500), true)
    assert.equal(c.checkAndAdd('k', 5000, 500), false, 'replay within expiry')
    assert.equal(c.checkAndAdd('k', 5000, 1000), false, 'expiresAt is inclusive')
    assert.equal(c.has('k', 1001), false)
    assert.equal(c.checkAndAdd('k', 3000, 1001), true, 'expired key is free again')
    assert.equal(c.size, 1)
    assert.equal(c.checkAndAdd('k', 9000, 2999), false, 'and is remembered with its new expiry')
    assert.equal(c.checkAndAdd('k', 9000, 3001), true)
  })

  test('never exceeds maxEntries', () => {
    for (const max of [1, 2, 7, 100]) {
      const c = new ReplayCache(max)
      for (let i = 0; i < max * 5 + 3; i++) {
        assert.equal(c.checkAndAdd(`k${i}`, 1_000_000 + (i % 13) * 1000, i), true)
        assert.ok(c.size <= max, `size ${c.size} > ${max}`)
      }
      assert.equal(c.size, max)
    }
  })

  test('expired entries are dropped on insert and free their slots', () => {
    const c = new ReplayCache(100)
    for (let i = 0; i < 50; i++) c.checkAndAdd(`old${i}`, 100, 0)
    assert.equal(c.size, 50)
    // each insert after expiry drops a few expired entries from the old end
    for (let i = 0; i < 20; i++) c.checkAndAdd(`new${i}`, 10_000, 200)
    assert.ok(c.size < 70, `expired entries should have been dropped, size ${c.size}`)
    for (let i = 0; i < 50; i++) assert.equal(c.has(`old${i}`, 200), false)
    for (let i = 0; i < 20; i++) assert.equal(c.has(`new${i}`, 200), true)

    // a full cache whose entries have all expired takes new keys without losing any of them
    const full = new ReplayCache(10)
    for (let i = 0; i < 10; i++) full.checkAndAdd(`old${i}`, 100, 0)
    for (let i = 0; i < 10; i++) assert.equal(full.checkAndAdd(`new${i}`, 10_000, 200), true)
    assert.equal(full.size, 10)
    for (let i = 0; i < 10; i++) assert.equal(full.has(`new${i}`, 200), true)
  })

  test('when full of unexpired entries, eviction is oldest-first (insertion order)', () => {
    const c = new ReplayCache(3)
    c.checkAndAdd('a', 1000, 0)
    c.checkAndAdd('b', 1000, 0)
    c.checkAndAdd('c', 1000, 0)
    c.checkAndAdd('d', 1000, 0)
    assert.equal(c.has('a', 1), false, 'a was oldest')
    assert.deepEqual(['b', 'c', 'd'].map(k => c.has(k, 1)), [true, true, true])
    c.checkAndAdd('e', 1000, 0)
    assert.equal(c.has('b', 1), false)
    assert.deepEqual(['c', 'd', 'e'].map(k => c.has(k, 1)), [true, true, true])
    // the evicted key can be added again (the cache forgot it) and then evicts the oldest, c
    assert.equal(c.checkAndAdd('a', 1000, 0), true)
    assert.equal(c.has('c', 1), false)
    assert.deepEqual(['d', 'e', 'a'].map(k => c.has(k, 1)), [true, true, true])
  })

  test('a rejected replay does not refresh or reorder the entry', () => {
    const c = new ReplayCache(2)
    c.checkAndAdd('a', 1000, 0)
    c.checkAndAdd('b', 1000, 0)
    assert.equal(c.checkAndAdd('a', 99_999, 1), false)
    c.checkAndAdd('c', 1000, 1)
    assert.equal(c.has('a', 2), false, 'a is still the oldest')
    assert.equal(c.has('b', 2), true)
    assert.equal(c.has('c', 2), true)
  })

  test('a re-added expired key moves to the young end', () => {
    const c = new ReplayCache(3)
    c.checkAndAdd('a', 10, 0)
    c.checkAndAdd('b', 1000, 0)
    c.checkAndAdd('c', 1000, 0)
    assert.equal(c.checkAndAdd('a', 1000, 20), true)
    c.checkAndAdd('d', 1000, 20)
    assert.equal(c.has('b', 21), false, 'b is now the oldest')
    assert.deepEqual(['c', 'a', 'd'].map(k => c.has(k, 21)), [true, true, true])
  })
})
