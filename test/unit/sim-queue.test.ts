import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventQueue } from '../../simulator/des/queue.ts'
import { Rng } from '../../simulator/des/rng.ts'

test('sim event queue pops every event in time order (near, bucketed and far events, pushes while popping)', () => {
  const rng = new Rng(7)
  const q = new EventQueue(64)
  const pending: number[] = []
  let now = 0
  let id = 0
  const push = (t: number): void => { q.push(t, 1, id, id, 0, t); pending.push(t); id++ }
  for (let i = 0; i < 2000; i++) push(rng.next() * 50)
  push(200_000) // beyond the calendar
  push(70_000.5)
  let popped = 0
  while (q.size > 0) {
    const t = q.peekTime()
    assert.ok(q.pop())
    assert.equal(q.t0, t)
    assert.ok(t >= now, `time went back: ${t} < ${now}`)
    now = t
    popped++
    const k = pending.indexOf(t)
    assert.ok(k >= 0)
    pending.splice(k, 1)
    assert.ok(pending.every(p => p >= t), 'an earlier event was left behind')
    if (popped < 5000 && rng.next() < 0.6) push(now + rng.next() * (rng.next() < 0.1 ? 5000 : 3))
    if (popped < 5000 && rng.next() < 0.05) push(now) // same instant
  }
  assert.equal(pending.length, 0)
  assert.equal(q.pop(), false)
  assert.equal(q.peekTime(), Infinity)
})
