import { createHash } from 'node:crypto'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'
import { createConsensus, decide, proposalProblem, step, type ConsensusState, type Outbound, type StepResult } from '../../src/consensus/machine.ts'
import { proposalDigest, quorum, signVote } from '../../src/consensus/crypto.ts'
import type { Certificate, Evidence, Proposal, Vote } from '../../src/consensus/types.ts'
import type { Behaviour } from '../scenario.ts'
import { LatencyHistogram } from '../report/metrics.ts'
import type { Rng } from './rng.ts'
import { ENVELOPE_OVERHEAD, EPOCH_MS, EV_MODULE, K_CERT, K_EVIDENCE, K_FORGED, K_PROPOSAL, K_VOTE, T_PATTERNS, T_VOTES, type Sim, type SimModule } from './sim.ts'

/**
 * Pattern elevation in the simulator: the consensus state machine of src/consensus/machine.ts,
 * called with `step(state, event, now)` exactly as the libp2p adapter (PatternService) calls
 * it, its outbound messages published as gossip and its timers as simulator events.
 *
 * Signatures are real: each validator has an Ed25519 identity made from a seed derived from
 * the scenario seed (so votes, digests and certificates are byte-identical run to run), votes
 * are signed with it and the machine verifies every vote and certificate it takes in
 * (node:crypto, ~0.2 ms per vote with its digest). That is cheap enough because only nodes
 * that run the machine pay it: in "machine" mode every node (as in a real federation; the
 * default up to 500 nodes), in "light" mode only validators, while other nodes learn a
 * result from the first certificate that reaches them (they do not re-verify it: a
 * certificate is a deterministic function of the votes the validators verified, so every
 * node would reach the same verdict; this is what lets 10^6 nodes run).
 *
 * Byzantine validators run the same machine and twist what it sends: `equivocate` publishes
 * its vote and the opposite one, both validly signed; `forge` also publishes a vote in another
 * validator's name, signed with its own key (rejected by signature); `withhold` never
 * publishes a vote; `spam` votes honestly but floods junk that gossip validation rejects
 * (see Sim: the peer score falls until its peers graylist it).
 */

export const EV_CONS_TIMER = EV_MODULE
export const EV_PROPOSE_GEN = EV_MODULE + 1
const EVENT_COUNT = 2

type Role = 'honest' | Behaviour

interface ProposalInfo {
  proposal: Proposal
  digest: string
  t0: number
  expected: 'accept' | 'reject'
  decisions: Set<string>
  validatorCommits: number
  validatorExpired: number
  /** light mode: which nodes know the result */
  learned: Uint8Array | undefined
  expiredLogged: boolean
}

export class ConsensusModule implements SimModule {
  readonly sim: Sim
  readonly mode: 'machine' | 'light'
  readonly validators: number[] = []
  readonly roles: Role[] = []
  readonly ids: NodeIdentity[] = []
  /** node -> machine index (-1: runs no machine) */
  readonly machineOf: Int32Array
  readonly machines: ConsensusState[] = []
  readonly validatorOf: Int32Array
  readonly proposals: ProposalInfo[] = []
  readonly byDigest = new Map<string, number>()
  /** certificate message id -> proposal index */
  readonly certFor = new Map<number, number>()
  readonly timeoutMs: number
  readonly rejectShare: number
  /** proposals draw from their own stream */
  readonly gen: Rng
  readonly commitLatency = new LatencyHistogram()
  readonly learnLatency = new LatencyHistogram()
  /** validators some honest node caught equivocating */
  readonly equivocations = new Set<string>()
  forgedRejected = 0
  votesWithheld = 0
  wrongDecisions = 0
  #k = 0

  private constructor (sim: Sim) {
    this.sim = sim
    const s = sim.scenario
    this.mode = s.consensus.nonValidators ?? (sim.n <= 500 ? 'machine' : 'light')
    this.timeoutMs = s.consensus.timeoutMs ?? 30_000
    this.rejectShare = s.workload.rejectShare ?? 0.2
    this.gen = sim.stream('proposals')
    this.machineOf = new Int32Array(sim.n).fill(-1)
    this.validatorOf = new Int32Array(sim.n).fill(-1)
  }

  static async create (sim: Sim): Promise<ConsensusModule> {
    const c = new ConsensusModule(sim)
    await c.#init()
    sim.register(c, EV_CONS_TIMER, EVENT_COUNT)
    return c
  }

  async #init (): Promise<void> {
    const sim = this.sim
    const s = sim.scenario
    const { regionStart, isSuper } = sim.topo
    // validators: spread over regions by size, random nodes (not super-peers where possible)
    const V = s.consensus.validators
    const shares = apportionLocal(V, s.regions.map(r => r.nodes))
    const chosen: number[] = []
    shares.forEach((k, r) => {
      const start = regionStart[r]!
      const size = regionStart[r + 1]! - start
      const plain: number[] = []
      const picks = sim.rng.sample(size, Math.min(size, k * 2 + 8))
      for (const x of picks) if (isSuper[start + x] === 0 && plain.length < k) plain.push(start + x)
      for (const x of picks) if (plain.length < k && !plain.includes(start + x)) plain.push(start + x)
      for (let x = 0; plain.length < k && x < size; x++) if (!plain.includes(start + x)) plain.push(start + x)
      chosen.push(...plain)
    })
    // interleave regions, then Byzantine behaviours go to the first ones
    const order = sim.rng.sample(chosen.length, chosen.length)
    for (const k of order) this.validators.push(chosen[k]!)
    const roles: Role[] = []
    for (const b of s.byzantine ?? []) for (let k = 0; k < b.count; k++) roles.push(b.behaviour)
    this.validators.forEach((node, k) => {
      const role = roles[k] ?? 'honest'
      this.roles.push(role)
      this.validatorOf[node] = k
      if (s.churn?.includeValidators !== true) sim.noChurn[node] = 1
      if (role === 'spam') {
        const spec = (s.byzantine ?? []).find(b => b.behaviour === 'spam')
        sim.markSpammer(node, spec?.ratePerS ?? 20)
      }
    })
    for (let k = 0; k < this.validators.length; k++) {
      const seed = createHash('sha256').update(`bizra-sim-validator:${s.seed}:${k}`).digest()
      this.ids.push(await NodeIdentity.fromSeed(new Uint8Array(seed)))
    }
    const validatorIds = this.ids.map(i => i.id)
    const machineFor = (node: number): void => {
      const v = this.validatorOf[node]!
      const self = v >= 0 ? validatorIds[v]! : `sim-node-${node}`
      const id = v >= 0 ? this.ids[v]! : undefined
      this.machineOf[node] = this.machines.length
      this.machines.push(createConsensus({ self, validators: validatorIds, constitution: DEFAULT_CONSTITUTION, ...(id !== undefined ? { sign: (d: Uint8Array) => id.sign(d) } : {}) }))
    }
    if (this.mode === 'machine') for (let i = 0; i < sim.n; i++) machineFor(i)
    else for (const v of this.validators) machineFor(v)
    if (s.workload.proposalsPerS > 0) sim.schedule(sim.workStart + this.gen.exp(1000 / s.workload.proposalsPerS), EV_PROPOSE_GEN, -1, 0, 0)
  }

  get quorum (): number {
    return quorum(this.validators.length).q
  }

  #nowAbs (): number {
    return EPOCH_MS + this.sim.now
  }

  #honestValidator (node: number): boolean {
    const v = this.validatorOf[node]!
    return v >= 0 && this.roles[v] === 'honest'
  }

  onEvent (type: number, node: number, a: number): void {
    if (type === EV_CONS_TIMER) {
      // timeouts are bookkeeping: a node that was down when one fell due applies it as it comes back
      const p = this.proposals[a]!
      const m = this.machineOf[node]!
      this.#apply(node, step(this.machines[m]!, { type: 'timeout', digest: p.digest }, this.#nowAbs()))
      return
    }
    if (type === EV_PROPOSE_GEN) {
      const sim = this.sim
      const w = sim.scenario.workload
      if (sim.now > sim.workEnd) return
      this.#propose()
      sim.schedule(sim.now + this.gen.exp(1000 / w.proposalsPerS), EV_PROPOSE_GEN, -1, 0, 0)
    }
  }

  #propose (): void {
    const sim = this.sim
    let proposer = this.gen.int(sim.n)
    for (let k = 0; k < 16; k++) {
      const v = this.validatorOf[proposer]!
      if (sim.alive[proposer] === 1 && (v < 0 || this.roles[v] === 'honest')) break
      proposer = this.gen.int(sim.n)
    }
    if (sim.alive[proposer] === 0) return
    const k = this.#k++
    const reject = this.gen.next() < this.rejectShare
    const v = this.validatorOf[proposer]!
    const proposal: Proposal = {
      id: `sim-${k}`,
      content: { pattern: `simulated pattern ${k}`, weight: this.gen.int(1000) },
      snr: reject ? 0.9 : 0.97,
      ihsan: reject ? 0.96 : 0.99,
      proposer: v >= 0 ? this.ids[v]!.id : `sim-node-${proposer}`,
      ts: new Date(this.#nowAbs()).toISOString(),
      timeoutMs: this.timeoutMs
    }
    const digest = proposalDigest(proposal)
    this.byDigest.set(digest, this.proposals.length)
    this.proposals.push({
      proposal,
      digest,
      t0: sim.now,
      expected: decide(proposal, DEFAULT_CONSTITUTION),
      decisions: new Set(),
      validatorCommits: 0,
      validatorExpired: 0,
      learned: this.mode === 'light' ? new Uint8Array(sim.n) : undefined,
      expiredLogged: false
    })
    const m = this.machineOf[proposer]!
    if (m >= 0) {
      this.#apply(proposer, step(this.machines[m]!, { type: 'propose', proposal }, this.#nowAbs()))
    } else if (proposalProblem(proposal) === undefined) {
      this.#out(proposer, { kind: 'proposal', proposal })
      this.#learn(proposer, this.proposals.length - 1, 'first-seen')
    }
  }

  #apply (node: number, r: StepResult): void {
    const sim = this.sim
    for (const t of r.timers) {
      const p = this.byDigest.get(t.digest)
      if (p !== undefined) sim.schedule(Math.max(sim.now, t.at - EPOCH_MS), EV_CONS_TIMER, node, p, 0)
    }
    for (const o of r.send) this.#out(node, o)
    for (const o of r.outcomes) {
      switch (o.kind) {
        case 'committed': {
          const idx = this.byDigest.get(o.digest)
          if (idx === undefined) break
          const p = this.proposals[idx]!
          p.decisions.add(o.certificate.decision)
          if (o.certificate.decision !== p.expected) this.wrongDecisions++
          if (this.#honestValidator(node)) {
            p.validatorCommits++
            this.commitLatency.add(sim.now - p.t0)
          }
          this.learnLatency.add(sim.now - p.t0)
          break
        }
        case 'expired': {
          const idx = this.byDigest.get(o.digest)
          if (idx === undefined) break
          const p = this.proposals[idx]!
          if (this.#honestValidator(node)) {
            p.validatorExpired++
            if (!p.expiredLogged) { p.expiredLogged = true; sim.fault('expired', p.proposal.id) }
          }
          break
        }
        case 'equivocation':
          this.equivocations.add(o.evidence.voter)
          break
        default: break
      }
    }
  }

  #size (obj: unknown): number {
    return JSON.stringify(obj).length + ENVELOPE_OVERHEAD
  }

  #out (node: number, o: Outbound): void {
    const sim = this.sim
    switch (o.kind) {
      case 'proposal':
        sim.publish(node, T_PATTERNS, K_PROPOSAL, this.#size(o.proposal), o.proposal)
        return
      case 'certificate': {
        const m = sim.publish(node, T_PATTERNS, K_CERT, this.#size(o.certificate), o.certificate)
        // which proposal it certifies, worked out once (a digest costs ~20 us; 10^6 nodes get it)
        const idx = this.byDigest.get(proposalDigest(o.certificate.proposal))
        if (idx !== undefined) this.certFor.set(m, idx)
        return
      }
      case 'evidence':
        sim.publish(node, T_PATTERNS, K_EVIDENCE, this.#size(o.evidence), o.evidence)
        return
      case 'vote': {
        const v = this.validatorOf[node]!
        const role = v >= 0 ? this.roles[v]! : 'honest'
        const vote = o.vote
        if (role === 'withhold') {
          this.votesWithheld++
          sim.fault('withhold', `validator ${v} on ${vote.proposalId}`)
          return
        }
        sim.publish(node, T_VOTES, K_VOTE, this.#size(vote), vote)
        if (role === 'equivocate') {
          const other = signVote({ proposal: vote.proposal, proposalId: vote.proposalId, voter: vote.voter, decision: vote.decision === 'accept' ? 'reject' : 'accept' }, d => this.ids[v]!.sign(d))
          sim.publish(node, T_VOTES, K_VOTE, this.#size(other), other)
          sim.fault('equivocate', `validator ${v} on ${vote.proposalId}`)
        } else if (role === 'forge') {
          const honest = this.roles.map((r, k) => r === 'honest' ? k : -1).filter(k => k >= 0)
          if (honest.length > 0) {
            const victim = this.ids[honest[this.gen.int(honest.length)]!]!.id
            const forged = signVote({ proposal: vote.proposal, proposalId: vote.proposalId, voter: victim, decision: vote.decision === 'accept' ? 'reject' : 'accept' }, d => this.ids[v]!.sign(d))
            sim.publish(node, T_VOTES, K_FORGED, this.#size(forged), forged)
            sim.fault('forge', `validator ${v} as ${victim.slice(-6)} on ${vote.proposalId}`)
          }
        }
      }
    }
  }

  /** A consensus message reached `node` for the first time (gossip dedup passed). */
  onMessage (node: number, msg: number, kind: number): void {
    if (kind < K_PROPOSAL || kind > K_FORGED) return
    const sim = this.sim
    const obj = sim.msgObj[msg]
    const m = this.machineOf[node]!
    if (m < 0) {
      if (kind === K_CERT) {
        const idx = this.certFor.get(msg)
        if (idx !== undefined) this.#learn(node, idx, 'certificate')
      }
      return
    }
    const state = this.machines[m]!
    const now = this.#nowAbs()
    switch (kind) {
      case K_PROPOSAL:
        this.#apply(node, step(state, { type: 'proposal', proposal: obj as Proposal }, now))
        return
      case K_VOTE:
        this.#apply(node, step(state, { type: 'vote', vote: obj as Vote }, now))
        return
      case K_FORGED: {
        const before = state.seenVotes.size
        this.#apply(node, step(state, { type: 'vote', vote: obj as Vote }, now))
        if (state.seenVotes.size === before) this.forgedRejected++
        return
      }
      case K_CERT: {
        const cert = obj as Certificate
        const idx = this.certFor.get(msg)
        // a node that has committed would verify the certificate and do nothing with it
        if (idx !== undefined && state.proposals.get(this.proposals[idx]!.digest)?.status === 'committed') return
        this.#apply(node, step(state, { type: 'certificate', certificate: cert }, now))
        return
      }
      case K_EVIDENCE:
        for (const v of (obj as Evidence).votes) this.#apply(node, step(state, { type: 'vote', vote: v }, now))
    }
  }

  #learn (node: number, idx: number, _how: string): void {
    const p = this.proposals[idx]!
    if (p.learned === undefined || p.learned[node] === 1) return
    p.learned[node] = 1
    if (_how === 'certificate') this.learnLatency.add(this.sim.now - p.t0)
  }

  summary (): {
    proposals: number, committed: number, committedAccept: number, committedReject: number, expired: number, pending: number,
    safetyViolations: number
  } {
    let committed = 0; let accept = 0; let reject = 0; let expired = 0; let pending = 0; let violations = 0
    for (const p of this.proposals) {
      if (p.decisions.size > 1) violations++
      if (p.validatorCommits > 0 || p.decisions.size > 0) {
        committed++
        if (p.decisions.has('accept')) accept++
        else reject++
      } else if (p.validatorExpired > 0) expired++
      else pending++
    }
    return { proposals: this.proposals.length, committed, committedAccept: accept, committedReject: reject, expired, pending, safetyViolations: violations }
  }
}

function apportionLocal (total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0)
  const exact = weights.map(w => (total * w) / sum)
  const out = exact.map(x => Math.floor(x))
  let left = total - out.reduce((a, b) => a + b, 0)
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i)
  for (let k = 0; left > 0; k++, left--) out[order[k % order.length]!.i]!++
  // never more than a region holds
  for (let i = 0; i < out.length; i++) {
    while (out[i]! > weights[i]!) {
      out[i]!--
      const j = out.findIndex((o, k) => o < weights[k]!)
      if (j >= 0) out[j]!++
    }
  }
  return out
}
