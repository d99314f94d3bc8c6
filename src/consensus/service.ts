import type { Logger } from 'pino'
import type { SignedGossip, VerifiedMessage } from '../net/gossip.ts'
import { TOPICS } from '../net/protocols.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import type { Genesis } from '../node/genesis.ts'
import { createConsensus, DEFAULT_TIMEOUT_MS, proposalProblem, step, type ConsensusEvent, type ConsensusState, type Outcome, type StepResult } from './machine.ts'
import { proposalDigest, verifyVote } from './crypto.ts'
import type { PatternStore, CommittedPattern } from './store.ts'
import type { Certificate, Evidence, Proposal, Vote } from './types.ts'

export const ENVELOPE_TYPES = {
  proposal: 'pattern.proposal',
  vote: 'pattern.vote',
  certificate: 'pattern.certificate',
  evidence: 'pattern.evidence'
} as const

export interface ProposeInput {
  id: string
  content: unknown
  snr: number
  ihsan: number
}

export type ProposeResult =
  | { status: 'pending', digest: string, proposal: Proposal }
  | { status: 'committed', digest: string, decision: Certificate['decision'], certificate: Certificate, latencyMs: number }
  | { status: 'expired', digest: string, proposal: Proposal }

export interface PatternServiceInit {
  gossip: SignedGossip
  store: PatternStore
  identity: NodeIdentity
  genesis: Genesis
  timeoutMs?: number
  log?: Logger
  /** every outcome, for events and metrics */
  onOutcome?: (o: Outcome) => void
  now?: () => number
}

/**
 * How often, while a proposal is pending, its proposer publishes it again and each validator
 * its own vote: a sixth of the proposal's timeout, from 250 ms to 5 s. Gossip delivers at most
 * once and only to peers in the mesh at that moment, so a validator that connects (or whose
 * mesh forms) after the first publication would otherwise never see them, and a proposal that
 * needed its vote would expire. Receivers drop what they already know.
 */
function resendIntervalMs (timeoutMs: number): number {
  return Math.max(250, Math.min(5_000, Math.floor(timeoutMs / 6)))
}

export class ProposalRefusedError extends Error {
  static override readonly name: string = 'ProposalRefusedError'
  override readonly name: string = 'ProposalRefusedError'
}

/**
 * Drives the pattern-elevation state machine from verified gossip: proposals, certificates
 * and evidence on /bizra/1/patterns, votes on /bizra/1/votes. Owns the machine's timers and
 * persists what it decides. Non-validators run the same machine: they never vote, but they
 * count votes and verify certificates, so they learn every result.
 */
export class PatternService {
  readonly #init: PatternServiceInit
  readonly #state: ConsensusState
  readonly #timers = new Map<string, NodeJS.Timeout>()
  /** per pending proposal we have something to resend for (see resendIntervalMs) */
  readonly #resends = new Map<string, NodeJS.Timeout>()
  readonly #waiters = new Map<string, Array<(r: ProposeResult) => void>>()
  readonly #now: () => number
  #off: (() => void) | undefined
  // outcomes are persisted in order; each commit waits for its write before it is reported
  #persist: Promise<void> = Promise.resolve()

  constructor (init: PatternServiceInit) {
    this.#init = init
    this.#now = init.now ?? Date.now
    this.#state = createConsensus({
      self: init.identity.id,
      validators: init.genesis.validators,
      constitution: init.genesis.constitution,
      sign: d => init.identity.sign(d)
    })
  }

  get isValidator (): boolean {
    return this.#state.isValidator
  }

  start (): void {
    this.#off = this.#init.gossip.onMessage(this.#onMessage)
  }

  async stop (): Promise<void> {
    this.#off?.()
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
    for (const t of this.#resends.values()) clearInterval(t)
    this.#resends.clear()
    await this.#persist
  }

  /** Proposes a pattern; with `wait`, resolves once it commits or expires. */
  async propose (input: ProposeInput, options: { wait?: boolean, signal?: AbortSignal } = {}): Promise<ProposeResult> {
    const proposal: Proposal = {
      id: input.id,
      content: input.content,
      snr: input.snr,
      ihsan: input.ihsan,
      proposer: this.#init.identity.id,
      ts: new Date(this.#now()).toISOString(),
      timeoutMs: this.#init.timeoutMs ?? DEFAULT_TIMEOUT_MS
    }
    const problem = proposalProblem(proposal)
    if (problem !== undefined) throw new ProposalRefusedError(problem)
    const digest = proposalDigest(proposal)
    const done = options.wait === true ? this.#waitFor(digest, options.signal) : undefined
    const result = this.#apply({ type: 'propose', proposal })
    const refused = result.outcomes.find(o => o.kind === 'refused')
    if (refused !== undefined && refused.kind === 'refused') throw new ProposalRefusedError(refused.reason)
    await this.#persist
    if (done !== undefined) return done
    return this.#resultOf(digest) ?? { status: 'pending', digest, proposal }
  }

  async list (): Promise<CommittedPattern[]> {
    return this.#init.store.listCommitted()
  }

  async show (id: string): Promise<CommittedPattern | undefined> {
    return this.#init.store.getPattern(id)
  }

  /** Feeds certificates fetched from a peer (sync): each is verified before it is stored. */
  async importCertificates (certificates: unknown[]): Promise<{ stored: number, refused: number }> {
    const before = new Set([...this.#state.proposals.values()].filter(r => r.status === 'committed').map(r => r.digest))
    let refused = 0
    for (const c of certificates) {
      const result = this.#apply({ type: 'certificate', certificate: c as Certificate })
      if (!result.outcomes.some(o => o.kind === 'committed')) {
        const digest = safeDigest(c)
        if (digest === undefined || !before.has(digest)) refused++
      }
    }
    await this.#persist
    const stored = [...this.#state.proposals.values()].filter(r => r.status === 'committed' && !before.has(r.digest)).length
    return { stored, refused }
  }

  #waitFor (digest: string, signal?: AbortSignal): Promise<ProposeResult> {
    return new Promise((resolve, reject) => {
      const list = this.#waiters.get(digest) ?? []
      list.push(resolve)
      this.#waiters.set(digest, list)
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
    })
  }

  #resultOf (digest: string): ProposeResult | undefined {
    const r = this.#state.proposals.get(digest)
    if (r === undefined) return undefined
    if (r.status === 'committed') return { status: 'committed', digest, decision: r.certificate!.decision, certificate: r.certificate!, latencyMs: (r.committedAt ?? 0) - r.firstSeen }
    if (r.status === 'expired') return { status: 'expired', digest, proposal: r.proposal }
    return undefined
  }

  #apply (event: ConsensusEvent): StepResult {
    const result = step(this.#state, event, this.#now())
    for (const t of result.timers) {
      if (this.#timers.has(t.digest)) continue
      const timer = setTimeout(() => {
        this.#timers.delete(t.digest)
        this.#apply({ type: 'timeout', digest: t.digest })
      }, Math.max(0, t.at - this.#now()))
      timer.unref()
      this.#timers.set(t.digest, timer)
      this.#startResending(t.digest)
    }
    for (const out of result.send) void this.#send(out)
    this.#persistInputs(event, result)
    for (const o of result.outcomes) this.#record(o)
    return result
  }

  /** Publishes a pending proposal again (if ours) and our vote on it, until it commits or expires (the interval then ends itself). */
  #startResending (digest: string): void {
    const record = this.#state.proposals.get(digest)
    if (record === undefined || this.#resends.has(digest)) return
    const self = this.#init.identity.id
    if (record.proposal.proposer !== self && !this.#state.isValidator) return
    const interval = setInterval(() => {
      const r = this.#state.proposals.get(digest)
      if (r === undefined || r.status !== 'pending') {
        clearInterval(interval)
        this.#resends.delete(digest)
        return
      }
      if (r.proposal.proposer === self) void this.#send({ kind: 'proposal', proposal: r.proposal })
      const vote = this.#state.seenVotes.get(`${digest}:${self}`)
      if (vote !== undefined) void this.#send({ kind: 'vote', vote })
    }, resendIntervalMs(record.proposal.timeoutMs))
    interval.unref()
    this.#resends.set(digest, interval)
  }

  /** Stores the proposals and votes the machine took in, and the votes it cast. */
  #persistInputs (event: ConsensusEvent, result: StepResult): void {
    const store = this.#init.store
    const writes: Array<() => Promise<void>> = []
    if (event.type === 'proposal') {
      const digest = safeDigest({ proposal: event.proposal })
      const record = digest === undefined ? undefined : this.#state.proposals.get(digest)
      if (record !== undefined && record.proposal === event.proposal) writes.push(() => store.saveProposal(record.digest, event.proposal))
    } else if (event.type === 'vote') {
      const vote = event.vote
      if (this.#state.seenVotes.get(`${vote.proposal}:${vote.voter}`) === vote) writes.push(() => store.saveVote(vote))
    }
    for (const out of result.send) {
      if (out.kind === 'vote') writes.push(() => store.saveVote(out.vote))
    }
    if (writes.length === 0) return
    this.#persist = this.#persist.then(async () => { for (const w of writes) await w() }).catch(err => {
      this.#init.log?.error({ err }, 'failed to store a proposal or vote')
    })
  }

  #record (o: Outcome): void {
    const store = this.#init.store
    const write = async (): Promise<void> => {
      switch (o.kind) {
        case 'proposed': await store.saveProposal(o.digest, o.proposal); break
        case 'committed': await store.saveCommit(o.digest, o.certificate, this.#now()); break
        case 'equivocation': await store.saveEvidence(o.evidence); break
        default: break
      }
    }
    this.#persist = this.#persist.then(write).then(() => {
      if (o.kind === 'committed' || o.kind === 'expired') {
        const t = this.#timers.get(o.digest)
        if (t !== undefined && o.kind === 'committed') { clearTimeout(t); this.#timers.delete(o.digest) }
        const result = this.#resultOf(o.digest)
        const waiters = this.#waiters.get(o.digest)
        this.#waiters.delete(o.digest)
        if (result !== undefined) for (const w of waiters ?? []) w(result)
      }
      this.#init.onOutcome?.(o)
    }, err => {
      this.#init.log?.error({ err, outcome: o.kind }, 'failed to persist a consensus outcome')
    })
  }

  async #send (out: StepResult['send'][number]): Promise<void> {
    const g = this.#init.gossip
    try {
      switch (out.kind) {
        case 'proposal': await g.publish(TOPICS.patterns, ENVELOPE_TYPES.proposal, out.proposal, { ihsan: 1, snr: 1 }); break
        case 'vote': await g.publish(TOPICS.votes, ENVELOPE_TYPES.vote, out.vote, { ihsan: 1, snr: 1 }); break
        // every node that counts a quorum forms the certificate; if all of them flooded it, a
        // federation of N would send N certificates per proposal. Validators are enough: the
        // others learned the result from the votes, and late joiners sync it.
        case 'certificate':
          if (this.#init.genesis.validators.includes(this.#init.identity.id)) await g.publish(TOPICS.patterns, ENVELOPE_TYPES.certificate, out.certificate, { ihsan: 1, snr: 1 })
          break
        case 'evidence': await g.publish(TOPICS.patterns, ENVELOPE_TYPES.evidence, out.evidence, { ihsan: 1, snr: 1 }); break
      }
    } catch (err) {
      this.#init.log?.debug({ err, kind: out.kind }, 'consensus publish failed')
    }
  }

  readonly #onMessage = (m: VerifiedMessage): void => {
    const { type, payload } = m.envelope
    if (m.topic === TOPICS.votes && type === ENVELOPE_TYPES.vote) {
      this.#apply({ type: 'vote', vote: payload as Vote })
    } else if (m.topic === TOPICS.patterns) {
      if (type === ENVELOPE_TYPES.proposal) {
        // the envelope's signer must be the proposer it names
        const p = payload as Proposal
        if (p !== null && typeof p === 'object' && p.proposer === m.envelope.sender) this.#apply({ type: 'proposal', proposal: p })
      } else if (type === ENVELOPE_TYPES.certificate) {
        this.#apply({ type: 'certificate', certificate: payload as Certificate })
      } else if (type === ENVELOPE_TYPES.evidence) {
        const e = payload as Evidence
        if (Array.isArray(e?.votes) && e.votes.length === 2 && e.votes.every(v => verifyVote(v))) {
          for (const v of e.votes) this.#apply({ type: 'vote', vote: v })
        }
      }
    }
  }
}

function safeDigest (c: unknown): string | undefined {
  try {
    return proposalDigest((c as Certificate).proposal)
  } catch {
    return undefined
  }
}
