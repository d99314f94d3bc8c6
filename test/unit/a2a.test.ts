import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Uint8ArrayList } from 'uint8arraylist'
import { rankProviders, type ProviderCandidate } from '../../src/a2a/ranking.ts'
import { AgentDirectory } from '../../src/a2a/directory.ts'
import { FrameReader, FrameTooLargeError, FrameWriter, frame } from '../../src/a2a/frames.ts'
import { agentCardProblem, taskCardProblem } from '../../src/a2a/cards.ts'
import { SkillRegistry, registerBuiltinSkills, ECHO_SKILL } from '../../src/a2a/skills.ts'
import type { AgentCard } from '../../src/a2a/types.ts'
import { mulberry32 } from '../helpers/random.ts'

const P = (n: number): string => `12D3KooW${String(n).padStart(44, 'A')}`
const cand = (n: number, o: Partial<ProviderCandidate> = {}): ProviderCandidate => ({ peerId: P(n), latencyMs: 10, load: 0, trust: 1, healthy: true, failures: 0, ...o })

describe('provider ranking', () => {
  test('faster, less loaded, more trusted and less failing providers come first', () => {
    assert.deepEqual(rankProviders([cand(1, { latencyMs: 20 }), cand(2, { latencyMs: 5 })]), [P(2), P(1)])
    assert.deepEqual(rankProviders([cand(1, { load: 3 }), cand(2, { load: 0 })]), [P(2), P(1)])
    assert.deepEqual(rankProviders([cand(1, { trust: 0.2 }), cand(2, { trust: 0.9 })]), [P(2), P(1)])
    assert.deepEqual(rankProviders([cand(1, { failures: 1 }), cand(2)]), [P(2), P(1)])
  })

  test('unhealthy providers come after every healthy one, however cheap', () => {
    assert.deepEqual(rankProviders([cand(1, { latencyMs: 0.5, healthy: false }), cand(2, { latencyMs: 500, load: 10 })]), [P(2), P(1)])
  })

  test('an unmeasured provider is assumed as fast as the median measured one, so it gets tried', () => {
    const ranked = rankProviders([cand(1, { latencyMs: 50 }), cand(2, { latencyMs: null }), cand(3, { latencyMs: 5 }), cand(4, { latencyMs: 8 })])
    assert.ok(ranked.indexOf(P(2)) < ranked.indexOf(P(1)))
  })

  test('deterministic: the same candidates in any order rank the same', () => {
    const rand = mulberry32(7)
    const cands = Array.from({ length: 20 }, (_, i) => cand(i, { latencyMs: rand() < 0.2 ? null : Math.round(rand() * 30), load: Math.floor(rand() * 3), trust: Math.round(rand() * 10) / 10 }))
    const once = rankProviders(cands)
    for (let k = 0; k < 20; k++) assert.deepEqual(rankProviders([...cands].sort(() => rand() - 0.5)), once)
  })
})

describe('agent directory', () => {
  const card = (n: number, skills: string[]): AgentCard => ({
    name: `n${n}`, description: '', version: '1', url: `libp2p://${P(n)}`, capabilities: { streaming: true, pushNotifications: false },
    defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'], peerId: P(n),
    skills: skills.map(id => ({ ...ECHO_SKILL, id }))
  })

  test('providers by skill; a card not refreshed within its TTL stops counting; forget drops it', () => {
    const d = new AgentDirectory({ ttlMs: 1000 })
    assert.equal(d.upsert(card(1, ['a', 'b']), 0), true)
    assert.equal(d.upsert(card(1, ['a', 'b']), 10), false, 'unchanged card')
    d.upsert(card(2, ['b']), 0)
    assert.deepEqual(d.providers('b', 500).sort(), [P(1), P(2)].sort())
    assert.deepEqual(d.providers('b', 1500), [])
    d.upsert(card(2, ['b']), 1400)
    assert.deepEqual(d.providers('b', 1500), [P(2)])
    d.forget(P(2))
    assert.deepEqual(d.providers('b', 1500), [])
  })

  test('observed latency is smoothed, in-flight tasks and reported load add up, failures count until a success', () => {
    const d = new AgentDirectory()
    d.started(P(1))
    d.started(P(1))
    d.reportLoad(P(1), 3)
    assert.equal(d.candidate(P(1), { trust: 1, healthy: true }).load, 5)
    d.finished(P(1), 10, true)
    d.finished(P(1), 0, false)
    const c = d.candidate(P(1), { trust: 1, healthy: true })
    assert.equal(c.latencyMs, 10)
    assert.equal(c.failures, 1)
    assert.equal(c.load, 3)
    d.started(P(1))
    d.finished(P(1), 20, true)
    assert.equal(d.candidate(P(1), { trust: 1, healthy: true }).latencyMs, 13)
    assert.equal(d.candidate(P(1), { trust: 1, healthy: true }).failures, 0)
  })
})

describe('stream frames', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
  const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

  test('frames split anywhere across chunks come out whole and in order', () => {
    const rand = mulberry32(11)
    const messages = Array.from({ length: 200 }, (_, i) => 'x'.repeat(Math.floor(rand() * 300)) + i)
    const bytes = Buffer.concat(messages.map(m => frame(enc(m))))
    for (let round = 0; round < 20; round++) {
      const r = new FrameReader(1024)
      const out: string[] = []
      for (let i = 0; i < bytes.length;) {
        const n = 1 + Math.floor(rand() * 64)
        const chunk = new Uint8ArrayList(bytes.subarray(i, i + n))
        out.push(...r.push(chunk).map(dec))
        i += n
      }
      assert.deepEqual(out, messages)
    }
  })

  test('a writer sends the frames of one turn in one write, in order, readable by the reader', async () => {
    const sent: Uint8Array[] = []
    const w = new FrameWriter(b => { sent.push(b) })
    const messages = ['{"a":1}', '', 'ünïcödé ✓ 𝄞', 'x'.repeat(300)]
    for (const m of messages) w.write(m)
    assert.equal(sent.length, 0, 'nothing goes out before the end of the turn')
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(sent.length, 1)
    assert.deepEqual(Buffer.from(sent[0]!), Buffer.concat(messages.map(m => frame(enc(m)))))
    assert.deepEqual(new FrameReader(1024).push(sent[0]!).map(dec), messages)
    // the next turn's frames go in a write of their own; flush() sends at once
    w.write('later')
    w.flush()
    assert.equal(sent.length, 2)
    assert.deepEqual(new FrameReader(1024).push(sent[1]!).map(dec), ['later'])
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(sent.length, 2, 'a flushed turn sends nothing more')
    // past 64 KiB of pending text a writer does not wait for the turn to end
    w.write('y'.repeat(70_000))
    assert.equal(sent.length, 3)
    // discard() drops what is pending; a failing send is reported once the turn ends
    w.write('dropped')
    w.discard()
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(sent.length, 3)
    const errors: Error[] = []
    const failing = new FrameWriter(() => { throw new Error('stream closed') }, err => errors.push(err))
    failing.write('x')
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(errors.map(e => e.message), ['stream closed'])
  })

  test('a reader takes whole frames from one chunk and keeps a partial tail for the next', () => {
    const messages = ['one', 'two', 'x'.repeat(200), 'four']
    const bytes = Buffer.concat(messages.map(m => frame(enc(m))))
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = new FrameReader(1024)
      const out = [...r.push(bytes.subarray(0, cut)), ...r.push(new Uint8ArrayList(bytes.subarray(cut)))].map(dec)
      assert.deepEqual(out, messages, `cut at ${cut}`)
    }
  })

  test('a frame longer than the limit, or a runaway length, is refused', () => {
    assert.throws(() => new FrameReader(10).push(frame(enc('x'.repeat(11)))), FrameTooLargeError)
    assert.throws(() => new FrameReader(10).push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), FrameTooLargeError)
    assert.deepEqual(new FrameReader(10).push(frame(new Uint8Array(0))).map(b => b.length), [0])
  })
})

describe('card schemas', () => {
  const task = { id: 't-1', skill: 'echo', message: { parts: [{ text: 'hi' }] }, requester: P(1), deadline: 1_800_000_000_000 }

  test('a well-formed task card passes; each kind of malformation is named', () => {
    assert.equal(taskCardProblem(task), undefined)
    assert.equal(taskCardProblem({ ...task, message: { parts: [{ data: { a: 1 } }] } }), undefined)
    const cases: Array<[unknown, RegExp]> = [
      [null, /object/],
      [{ ...task, id: '' }, /id/],
      [{ ...task, skill: 'Bad Skill' }, /skill/],
      [{ ...task, message: { parts: [] } }, /parts/],
      [{ ...task, message: { parts: [{ text: 1 }] } }, /text part/],
      [{ ...task, message: { parts: [{ text: 'a', data: 1 }] } }, /exactly/],
      [{ ...task, requester: 'nobody' }, /requester/],
      [{ ...task, deadline: -1 }, /deadline/],
      [{ ...task, extra: 1 }, /unknown field extra/]
    ]
    for (const [value, re] of cases) assert.match(taskCardProblem(value) ?? 'passed', re)
  })

  test('agent cards: skills are checked, duplicates refused', () => {
    const reg = new SkillRegistry()
    registerBuiltinSkills(reg)
    const good = { name: 'n', description: '', version: '1', url: 'libp2p://x', capabilities: { streaming: true, pushNotifications: false }, defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'], skills: reg.list(), peerId: P(1) }
    assert.equal(agentCardProblem(good), undefined)
    assert.match(agentCardProblem({ ...good, skills: [...reg.list(), reg.list()[0]] }) ?? '', /listed twice/)
    assert.match(agentCardProblem({ ...good, skills: [{ id: 'x' }] }) ?? '', /name/)
    assert.match(agentCardProblem({ ...good, peerId: 'x' }) ?? '', /peerId/)
    assert.throws(() => reg.register(ECHO_SKILL, async m => ({ parts: m.parts })), /already registered/)
    assert.throws(() => reg.register({ ...ECHO_SKILL, id: 'UPPER' }, async m => ({ parts: m.parts })), /id must be/)
  })
})
