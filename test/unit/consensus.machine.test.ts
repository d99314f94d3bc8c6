import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'
import { createConsensus, decide, step } from '../../src/consensus/machine.ts'
import { proposalDigest, quorum, signVote } from '../../src/consensus/crypto.ts'
import type { Proposal } from '../../src/consensus/types.ts'

const ids = await Promise.all([1, 2, 3, 4].map(i => NodeIdentity.fromSeed(new Uint8Array(32).fill(i))))
const validators = ids.map(i => i.id)
const proposal = (over: Partial<Proposal> = {}): Proposal => ({ id: 'p', content: { x: 1 }, snr: 0.97, ihsan: 0.99, proposer: validators[0]!, ts: new Date(0).toISOString(), timeoutMs: 30_000, ...over })

describe('pattern elevation state machine', () => {
  test('quorum sizes: f = floor((n-1)/3), q = n - f', () => {
    assert.deepEqual([1, 4, 7, 10, 31].map(n => quorum(n)), [{ f: 0, q: 1 }, { f: 1, q: 3 }, { f: 2, q: 5 }, { f: 3, q: 7 }, { f: 10, q: 21 }])
  })

  test('the vote rule: SNR >= 0.95 and Ihsan >= 0.95 accept, anything less rejects', () => {
    assert.equal(decide(proposal(), DEFAULT_CONSTITUTION), 'accept')
    assert.equal(decide(proposal({ snr: 0.9 }), DEFAULT_CONSTITUTION), 'reject')
    assert.equal(decide(proposal({ ihsan: 0.94 }), DEFAULT_CONSTITUTION), 'reject')
  })

  test('without a quorum before the timeout the proposal expires; the timer fires only then', () => {
    const s = createConsensus({ self: validators[0]!, validators, constitution: DEFAULT_CONSTITUTION, sign: d => ids[0]!.sign(d) })
    const r = step(s, { type: 'propose', proposal: proposal() }, 0)
    assert.deepEqual(r.timers.map(t => t.at), [30_000])
    assert.deepEqual(r.send.map(o => o.kind), ['proposal', 'vote'])
    const digest = proposalDigest(proposal())
    assert.deepEqual(step(s, { type: 'timeout', digest }, 29_999).outcomes, [])
    assert.deepEqual(step(s, { type: 'timeout', digest }, 30_000).outcomes.map(o => o.kind), ['expired'])
    assert.equal(s.proposals.get(digest)!.status, 'expired')
  })

  test('a proposal below the local SNR threshold is refused before it is sent', () => {
    const s = createConsensus({ self: validators[0]!, validators, constitution: DEFAULT_CONSTITUTION, sign: d => ids[0]!.sign(d) })
    const r = step(s, { type: 'propose', proposal: proposal({ snr: 0.5 }) }, 0)
    assert.deepEqual(r.send, [])
    assert.equal(r.outcomes[0]!.kind, 'refused')
  })

  test('equivocation yields evidence once and the equivocator\'s votes stop counting', () => {
    const s = createConsensus({ self: validators[0]!, validators, constitution: DEFAULT_CONSTITUTION, sign: d => ids[0]!.sign(d) })
    const p = proposal()
    const digest = proposalDigest(p)
    step(s, { type: 'proposal', proposal: p }, 0)
    const v = (i: number, decision: 'accept' | 'reject') => signVote({ proposal: digest, proposalId: 'p', decision, voter: validators[i]! }, d => ids[i]!.sign(d))
    assert.deepEqual(step(s, { type: 'vote', vote: v(1, 'accept') }, 1).outcomes, [])
    const caught = step(s, { type: 'vote', vote: v(1, 'reject') }, 2)
    assert.deepEqual(caught.outcomes.map(o => o.kind), ['equivocation'])
    assert.deepEqual(caught.send.map(o => o.kind), ['evidence'])
    assert.ok(s.equivocators.has(validators[1]!))
    // own accept + validator 2 accept = 2 < q = 3: the equivocator's accept no longer helps
    assert.deepEqual(step(s, { type: 'vote', vote: v(2, 'accept') }, 3).outcomes, [])
    assert.deepEqual(step(s, { type: 'vote', vote: v(3, 'accept') }, 4).outcomes.map(o => o.kind), ['committed'])
  })

  test('a non-validator never votes but commits from the votes it sees', () => {
    const outsider = ids[3]!
    const s = createConsensus({ self: outsider.id, validators: validators.slice(0, 3), constitution: DEFAULT_CONSTITUTION })
    const p = proposal()
    const r = step(s, { type: 'proposal', proposal: p }, 0)
    assert.deepEqual(r.send, [])
    const digest = proposalDigest(p)
    for (const i of [0, 1, 2]) { // n = 3: f = 0, q = 3
      const out = step(s, { type: 'vote', vote: signVote({ proposal: digest, proposalId: 'p', decision: 'accept', voter: validators[i]! }, d => ids[i]!.sign(d)) }, 1)
      assert.deepEqual(out.outcomes.map(o => o.kind), i === 2 ? ['committed'] : [])
    }
  })
})
