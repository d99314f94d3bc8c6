import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { createEnvelope, verifyEnvelope } from '../../src/pci/envelope.ts'
import { VerifyThread, verifyEnvelopeBytes, type ThreadVerdict } from '../../src/pci/verify-thread.ts'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'
import { mulberry32 } from '../helpers/random.ts'

const encoder = new TextEncoder()
const NOW = Date.parse('2026-11-23T12:00:00.000Z')
const alice = await NodeIdentity.fromSeed(new Uint8Array(32).fill(7))
const mallory = await NodeIdentity.fromSeed(new Uint8Array(32).fill(8))

/** envelopes of every kind the verifier must tell apart, with what verifyEnvelope says of each */
function cases (): Array<{ name: string, bytes: Uint8Array, expected: ThreadVerdict }> {
  const rand = mulberry32(5)
  const good = createEnvelope(alice, { type: 'test.v', payload: { n: 1 }, now: NOW })
  const tampered = { ...createEnvelope(alice, { type: 'test.v', payload: { n: 2 }, now: NOW }), payload: { n: 3 } }
  const forged = { ...createEnvelope(mallory, { type: 'test.v', payload: { n: 4 }, now: NOW }), sender: alice.id }
  const expired = createEnvelope(alice, { type: 'test.v', payload: { n: 5 }, now: NOW - 3_600_000, ttl: 60 })
  const lowIhsan = createEnvelope(alice, { type: 'test.v', payload: { n: 6 }, now: NOW, ihsan: 0.5 })
  const garbage = Uint8Array.from({ length: 64 }, () => Math.floor(rand() * 256))
  const all = [
    { name: 'valid', bytes: encoder.encode(JSON.stringify(good)) },
    { name: 'tampered payload', bytes: encoder.encode(JSON.stringify(tampered)) },
    { name: 'forged sender', bytes: encoder.encode(JSON.stringify(forged)) },
    { name: 'expired', bytes: encoder.encode(JSON.stringify(expired)) },
    { name: 'ihsan below threshold', bytes: encoder.encode(JSON.stringify(lowIhsan)) },
    { name: 'not an envelope', bytes: encoder.encode('{"v":1}') },
    { name: 'not JSON', bytes: garbage }
  ]
  return all.map(c => {
    let parsed: unknown
    try { parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(c.bytes)) } catch { parsed = undefined }
    const v = parsed === undefined ? { ok: false as const, code: 'R005', reason: 'not UTF-8 JSON' } : verifyEnvelope(parsed, { now: NOW, replay: false })
    return { ...c, expected: v.ok ? { ok: true } : { ok: false, code: v.code, reason: v.reason } as ThreadVerdict }
  })
}

test('the verification thread gives verifyEnvelope\'s verdict for each kind of envelope, many at once', async () => {
  const thread = new VerifyThread()
  try {
    const all = cases()
    assert.deepEqual(all.map(c => c.expected.ok ? 'ok' : (c.expected as { code: string }).code), ['ok', 'R002', 'R002', 'R001', 'R003', 'R005', 'R005'])
    // 20 rounds of every case, asked in one turn: they travel in a few batches, answers in order
    const asked = Array.from({ length: 20 }, () => all).flat()
    const verdicts = await Promise.all(asked.map(async c => await thread.check(c.bytes, NOW, DEFAULT_CONSTITUTION)))
    verdicts.forEach((v, i) => assert.deepEqual(v, asked[i]!.expected, asked[i]!.name))
    assert.ok(thread.batches >= 1 && thread.batches <= 10, `${asked.length} checks in ${thread.batches} batches`)
  } finally {
    await thread.close()
  }
})

test('past the int32 wrap of sequence numbers and round the byte ring, every check gets its own verdict', { timeout: 30_000 }, async () => {
  // 1,200 envelopes of ~5 KB: 6 MB through the 4 MiB ring, sequence numbers from 2^31 - 500
  const thread = new VerifyThread({ firstSequence: 2 ** 31 - 500 })
  try {
    const text = 'y'.repeat(5000)
    const asked = Array.from({ length: 1200 }, (_, i) => {
      const envelope = createEnvelope(alice, { type: 'test.v', payload: { i, text }, now: NOW })
      // every seventh tampered: failures wait for their reasons across the wrap too
      const sent = i % 7 === 3 ? { ...envelope, payload: { i: -i, text } } : envelope
      return { bytes: encoder.encode(JSON.stringify(sent)), ok: i % 7 !== 3 }
    })
    const verdicts = await Promise.all(asked.map(async c => await thread.check(c.bytes, NOW, DEFAULT_CONSTITUTION)))
    verdicts.forEach((v, i) => assert.equal(v.ok ? 'ok' : v.code, asked[i]!.ok ? 'ok' : 'R002', `check ${i}`))
    // (a starved worker is helped by this thread: most must still have gone round the ring)
    assert.ok(thread.helped < 600, `${thread.helped} checks were helped`)
  } finally {
    await thread.close()
  }
})

test('an envelope too large for the shared ring is checked on the calling thread', async () => {
  const thread = new VerifyThread()
  try {
    const big = encoder.encode(JSON.stringify({ ...createEnvelope(alice, { type: 'test.v', payload: {}, now: NOW }), payload: { text: 'z'.repeat(1_100_000) } }))
    const verdict = thread.check(big, NOW, DEFAULT_CONSTITUTION)
    assert.ok(!(verdict instanceof Promise), 'answered at once')
    assert.deepEqual(verdict, verifyEnvelopeBytes(big, NOW, DEFAULT_CONSTITUTION))
    assert.equal(verdict.ok ? 'ok' : verdict.code, 'R005')
    assert.equal(thread.batches, 0)
  } finally {
    await thread.close()
  }
})

test('each check is held to its own constitution and its own clock', async () => {
  const thread = new VerifyThread()
  try {
    const envelope = createEnvelope(alice, { type: 'test.v', payload: {}, now: NOW, ihsan: 0.96, ttl: 60 })
    const bytes = encoder.encode(JSON.stringify(envelope))
    const strict = { ...DEFAULT_CONSTITUTION, ihsan: 0.99 }
    const [lenient, strictVerdict, late] = await Promise.all([
      thread.check(bytes, NOW, DEFAULT_CONSTITUTION),
      thread.check(bytes, NOW, strict),
      thread.check(bytes, NOW + 3_600_000, DEFAULT_CONSTITUTION)
    ])
    assert.deepEqual(lenient, { ok: true })
    assert.equal(strictVerdict.ok ? 'ok' : strictVerdict.code, 'R003')
    assert.equal(late.ok ? 'ok' : late.code, 'R001')
  } finally {
    await thread.close()
  }
})

test('checks in flight when the worker goes away are answered inline, and so is every later one', async () => {
  const thread = new VerifyThread()
  const all = cases()
  const pending = all.map(async c => await thread.check(c.bytes, NOW, DEFAULT_CONSTITUTION))
  await Promise.resolve() // the batch leaves after the current microtasks
  await thread.close()
  assert.deepEqual(await Promise.all(pending), all.map(c => c.expected))
  const after = await Promise.all(all.map(async c => await thread.check(c.bytes, NOW, DEFAULT_CONSTITUTION)))
  assert.deepEqual(after, all.map(c => c.expected))
})

test('verifyEnvelopeBytes (the worker\'s check) never throws on random bytes', () => {
  const rand = mulberry32(99)
  for (let i = 0; i < 500; i++) {
    const bytes = Uint8Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256))
    const v = verifyEnvelopeBytes(bytes, NOW, DEFAULT_CONSTITUTION)
    assert.equal(v.ok, false)
  }
})

test('when the worker\'s answers are late, the caller checks what queued itself; every verdict is still right', async () => {
  const thread = new VerifyThread({ workerUrl: new URL('../helpers/slow-verify-worker.ts', import.meta.url) })
  try {
    const all = cases()
    const asked = Array.from({ length: 30 }, () => all).flat() // 210 checks: 2 batches out, the rest queued
    const first = asked.map(async c => await thread.check(c.bytes, NOW, DEFAULT_CONSTITUTION))
    await new Promise(resolve => setTimeout(resolve, 120)) // the worker is asleep: both batches are late
    assert.equal(thread.helped, 0, 'nothing is helped before a check comes in to notice')
    const late = await thread.check(all[0]!.bytes, NOW, DEFAULT_CONSTITUTION)
    assert.deepEqual(late, all[0]!.expected)
    assert.equal(thread.helped, asked.length - 128 + 1, 'the queued checks and the new one ran on the calling thread')
    assert.equal(thread.batches, 1, 'the first 128 went at once; the rest waited here')
    const verdicts = await Promise.all(first)
    verdicts.forEach((v, i) => assert.deepEqual(v, asked[i]!.expected, asked[i]!.name))
  } finally {
    await thread.close()
  }
})

test('passes are taken from the shared verdict bytes, without the answer message; failures wait for it', { timeout: 10_000 }, async () => {
  const thread = new VerifyThread({ workerUrl: new URL('../helpers/mute-verify-worker.ts', import.meta.url) })
  const all = cases()
  const valid = all.find(c => c.name === 'valid')!
  const forged = all.find(c => c.name === 'forged sender')!
  let forgedVerdict: ThreadVerdict | undefined
  try {
    const first = [thread.check(valid.bytes, NOW, DEFAULT_CONSTITUTION), thread.check(valid.bytes, NOW, DEFAULT_CONSTITUTION)]
    void Promise.resolve(thread.check(forged.bytes, NOW, DEFAULT_CONSTITUTION)).then(v => { forgedVerdict = v })
    let settled = false
    void Promise.all(first).then(() => { settled = true })
    // no answer message ever comes: each later check asked for looks at the verdict bytes
    while (!settled) {
      await new Promise(resolve => setTimeout(resolve, 10))
      void thread.check(valid.bytes, NOW, DEFAULT_CONSTITUTION)
    }
    assert.deepEqual(await Promise.all(first), [{ ok: true }, { ok: true }])
    assert.equal(forgedVerdict, undefined, 'a failure needs its reason from the answer message')
  } finally {
    await thread.close()
  }
  // the thread gone, what it held is checked inline: the failure gets its reason
  await new Promise(resolve => setImmediate(resolve))
  assert.deepEqual(forgedVerdict, forged.expected)
})

/** keeps this thread busy, as a node is that moves gossip between checks */
function busy (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* spin */ }
}

test('checks that trickle in to a busy caller wake the sleeping worker once per batch; the last few go at the end of the turn', async () => {
  // no time limit: only the batch size decides, so the count below does not depend on timing
  const thread = new VerifyThread({ wakeBatch: 8, wakeAfterMs: Infinity })
  try {
    const all = cases()
    assert.deepEqual(await thread.check(all[0]!.bytes, NOW, DEFAULT_CONSTITUTION), all[0]!.expected) // the worker is up
    const wakesBefore = thread.wakes
    const asked = Array.from({ length: 61 }, (_, i) => all[i % all.length]!)
    const pending: Array<ThreadVerdict | Promise<ThreadVerdict>> = []
    for (const c of asked) {
      pending.push(thread.check(c.bytes, NOW, DEFAULT_CONSTITUTION))
      await Promise.resolve() // the hand-off runs after the current microtasks: one check per hand-off
      busy(0.4) // the worker checks one envelope in well under this, then sleeps
    }
    // 7 batches of 8 woke it (at most: an awake worker needs no waking); 5 are still unwoken
    assert.ok(thread.wakes - wakesBefore <= 7, `${thread.wakes - wakesBefore} wakes for ${asked.length} checks`)
    const verdicts = await Promise.all(pending)
    verdicts.forEach((v, i) => assert.deepEqual(v, asked[i]!.expected, `check ${i}: ${asked[i]!.name}`))
    assert.ok(thread.wakes - wakesBefore <= 8)
  } finally {
    await thread.close()
  }
})

test('a check that waited past the time limit wakes the sleeping worker at the next check, within the turn', async () => {
  const thread = new VerifyThread({ wakeBatch: Infinity, wakeAfterMs: 1 })
  try {
    const valid = cases()[0]!
    assert.deepEqual(await thread.check(valid.bytes, NOW, DEFAULT_CONSTITUTION), { ok: true }) // the worker is up
    busy(5) // and asleep
    const wakesBefore = thread.wakes
    const first = thread.check(valid.bytes, NOW, DEFAULT_CONSTITUTION)
    await Promise.resolve()
    assert.equal(thread.wakes, wakesBefore, 'one check, just written: the worker sleeps on')
    busy(2)
    const second = thread.check(valid.bytes, NOW, DEFAULT_CONSTITUTION)
    await Promise.resolve()
    assert.equal(thread.wakes, wakesBefore + 1, 'the first has waited 2 ms: the second\'s hand-off woke the worker')
    assert.deepEqual(await Promise.all([first, second]), [{ ok: true }, { ok: true }])
  } finally {
    await thread.close()
  }
})
