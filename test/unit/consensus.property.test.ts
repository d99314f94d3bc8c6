import { test, describe } from 'node:test'
import { mulberry32 } from '../helpers/random.ts'
import assert from 'node:assert/strict'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'
import { createConsensus, decide, step, type ConsensusState, type Outbound } from '../../src/consensus/machine.ts'
import { proposalDigest, signVote, verifyCertificate } from '../../src/consensus/crypto.ts'
import type { Certificate, Proposal, Vote } from '../../src/consensus/types.ts'


const POOL = await Promise.all(Array.from({ length: 10 }, (_, i) => NodeIdentity.fromSeed(new Uint8Array(32).fill(i + 1))))
const outsider = await NodeIdentity.fromSeed(new Uint8Array(32).fill(99))

type Behaviour = 'honest' | 'equivocate' | 'forge' | 'withhold' | 'unknown' | 'replay'
const BEHAVIOURS: Behaviour[] = ['equivocate', 'forge', 'withhold', 'unknown', 'replay']

interface Msg { to: number, out: Outbound, at: number }

/**
 * One seeded schedule: n validators (up to f Byzantine), an in-memory network that delays,
 * reorders, duplicates and (before a settle time) drops messages. Returns what every honest
 * node committed and each proposal's certificates.
 */
function run (seed: number, n: number): { failures: string[] } {
  const rand = mulberry32(seed)
  const ids = POOL.slice(0, n)
  const validators = ids.map(i => i.id)
  const f = Math.floor((n - 1) / 3)
  const byzCount = Math.floor(rand() * (f + 1))
  const behaviour: Behaviour[] = ids.map((_, i) => i < byzCount ? BEHAVIOURS[Math.floor(rand() * BEHAVIOURS.length)]! : 'honest')
  const states: ConsensusState[] = ids.map(id => createConsensus({ self: id.id, validators, constitution: DEFAULT_CONSTITUTION, sign: d => id.sign(d) }))
  const timeoutMs = 30_000
  const settleAt = 2_000 // after this, delivery is eventual: no more loss
  const queue: Msg[] = []
  const failures: string[] = []
  const certificates = new Map<string, Certificate[]>()
  let now = 0

  const deliverLater = (to: number, out: Outbound): void => {
    // before the network settles a message may be "lost" for a long while; delivery is
    // eventual (as gossipsub's IWANT/IHAVE repair gives), so it arrives after the settle time
    const lostUntil = now < settleAt && rand() < 0.15 ? settleAt + Math.floor(rand() * 5_000) : now
    const copies = rand() < 0.1 ? 2 : 1 // duplication
    for (let c = 0; c < copies; c++) queue.push({ to, out, at: lostUntil + 1 + Math.floor(rand() * 400) })
  }
  const broadcast = (from: number, out: Outbound): void => {
    if (out.kind === 'certificate') {
      const list = certificates.get(proposalDigest(out.certificate.proposal)) ?? []
      list.push(out.certificate)
      certificates.set(proposalDigest(out.certificate.proposal), list)
    }
    for (let to = 0; to < n; to++) if (to !== from) byzantineSend(from, to, out)
  }
  const sentVotes: Vote[] = []
  const byzantineSend = (from: number, to: number, out: Outbound): void => {
    const b = behaviour[from]!
    if (out.kind !== 'vote' || b === 'honest') return deliverLater(to, out)
    sentVotes.push(out.vote)
    switch (b) {
      case 'withhold': return
      case 'equivocate': {
        const flipped = signVote({ ...out.vote, decision: to % 2 === 0 ? 'accept' : 'reject' }, d => ids[from]!.sign(d))
        return deliverLater(to, { kind: 'vote', vote: flipped })
      }
      case 'forge': {
        // a vote in another validator's name, signed with the wrong key, for the other decision
        const victim = validators[(from + 1) % n]!
        const forged = signVote({ ...out.vote, voter: victim, decision: out.vote.decision === 'accept' ? 'reject' : 'accept' }, d => outsider.sign(d))
        deliverLater(to, { kind: 'vote', vote: forged })
        return deliverLater(to, out)
      }
      case 'unknown': {
        const bogus = signVote({ ...out.vote, proposal: 'f'.repeat(64), decision: 'reject' }, d => ids[from]!.sign(d))
        deliverLater(to, { kind: 'vote', vote: bogus })
        return deliverLater(to, out)
      }
      case 'replay': {
        for (const old of sentVotes.slice(-3)) deliverLater(to, { kind: 'vote', vote: old })
        return deliverLater(to, out)
      }
    }
  }
  const apply = (i: number, result: ReturnType<typeof step>): void => {
    for (const out of result.send) broadcast(i, out)
    for (const t of result.timers) queue.push({ to: i, out: { kind: 'proposal', proposal: { __timer: t.digest } as unknown as Proposal }, at: t.at })
  }

  // proposals: some acceptable, some to reject, from random honest proposers at random times
  const proposals: Proposal[] = []
  const count = 1 + Math.floor(rand() * 3)
  for (let k = 0; k < count; k++) {
    const proposer = byzCount + Math.floor(rand() * (n - byzCount))
    const accept = rand() < 0.5
    const p: Proposal = { id: `p-${seed}-${k}`, content: { rule: `r${k}`, weight: Math.floor(rand() * 100) }, snr: accept ? 0.97 : 0.9, ihsan: accept ? 0.99 : 0.96, proposer: validators[proposer]!, ts: new Date(k * 100).toISOString(), timeoutMs }
    proposals.push(p)
    queue.push({ to: proposer, out: { kind: 'proposal', proposal: { __propose: p } as unknown as Proposal }, at: k * 100 })
  }

  let steps = 0
  while (queue.length > 0 && steps++ < 200_000) {
    queue.sort((a, b) => a.at - b.at)
    const m = queue.shift()!
    now = m.at
    const s = states[m.to]!
    const raw = m.out as { kind: string, proposal?: { __timer?: string, __propose?: Proposal } }
    if (raw.kind === 'proposal' && raw.proposal?.__timer !== undefined) apply(m.to, step(s, { type: 'timeout', digest: raw.proposal.__timer }, now))
    else if (raw.kind === 'proposal' && raw.proposal?.__propose !== undefined) apply(m.to, step(s, { type: 'propose', proposal: raw.proposal.__propose }, now))
    else if (m.out.kind === 'proposal') apply(m.to, step(s, { type: 'proposal', proposal: m.out.proposal }, now))
    else if (m.out.kind === 'vote') apply(m.to, step(s, { type: 'vote', vote: m.out.vote }, now))
    else if (m.out.kind === 'certificate') apply(m.to, step(s, { type: 'certificate', certificate: m.out.certificate }, now))
  }

  // safety: never two certificates with different decisions; every certificate verifies
  for (const [digest, certs] of certificates) {
    if (new Set(certs.map(c => c.decision)).size > 1) failures.push(`conflicting certificates for ${digest}`)
    for (const c of certs) {
      const check = verifyCertificate(c, validators)
      if (!check.ok) failures.push(`invalid certificate: ${check.reason}`)
    }
  }
  // liveness: every proposal committed before its timeout at every honest node, with the rule's decision
  for (const p of proposals) {
    const digest = proposalDigest(p)
    for (let i = byzCount; i < n; i++) {
      const r = states[i]!.proposals.get(digest)
      if (r?.status !== 'committed') failures.push(`node ${i} did not commit ${p.id} (status ${r?.status ?? 'unknown'})`)
      else if (r.certificate!.decision !== decide(p, DEFAULT_CONSTITUTION)) failures.push(`node ${i} committed ${p.id} as ${r.certificate!.decision}`)
      else if (r.committedAt! > Date.parse(p.ts) + timeoutMs) failures.push(`node ${i} committed ${p.id} after its timeout`)
    }
  }
  if (failures.length > 0) failures.unshift(`seed=${seed} n=${n} byzantine=${behaviour.slice(0, byzCount).join(',') || 'none'}`)
  return { failures }
}

describe('pattern elevation: property tests over seeded schedules', () => {
  const base = Number(process.env.CONSENSUS_SEED ?? 1)
  const schedules = Number(process.env.CONSENSUS_SCHEDULES ?? 1000)
  for (const n of [4, 7]) {
    test(`n=${n}: safety and liveness with up to f Byzantine validators, ${schedules} schedules (reproduce: CONSENSUS_SEED=<seed> CONSENSUS_SCHEDULES=1)`, () => {
      for (let k = 0; k < schedules; k++) {
        const { failures } = run(base + k, n)
        assert.deepEqual(failures, [], failures.join('\n'))
      }
    })
  }
})
