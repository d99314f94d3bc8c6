import { canonicalize } from '../pci/canonical.ts'
import type { Constitution } from '../governance/constitution.ts'
import { proposalDigest, quorum, signVote, verifyCertificate, verifyVote, type Signer } from './crypto.ts'
import type { Certificate, Decision, Evidence, Proposal, Vote } from './types.ts'

/**
 * Pattern elevation as a pure state machine: `step(state, event, now)` mutates only `state`
 * and returns what to send, which timers to set and what happened. No sockets, no clocks, no
 * storage: the libp2p adapter and the simulator drive it, the store persists its outcomes.
 *
 * Honest validators apply one deterministic rule (schema + constitution), so they all sign
 * the same decision; q = n - f matching signatures from distinct validators commit it. With at
 * most f faulty validators two certificates with different decisions would need an honest
 * validator to sign both, which it never does.
 */

/** SNR a pattern needs for network elevation (the local threshold is the constitution's). */
export const NETWORK_SNR = 0.95
export const DEFAULT_TIMEOUT_MS = 30_000
const MAX_CONTENT_CHARS = 64 * 1024
const ID_RE = /^[A-Za-z0-9][\w.:/-]{0,127}$/
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/

export interface ConsensusConfig {
  self: string
  validators: readonly string[]
  constitution: Constitution
  /** signs vote digests; required when `self` is a validator */
  sign?: Signer
  /** most votes held for proposals not seen yet (default 10,000) */
  maxOrphanVotes?: number
}

export type ProposalStatus = 'pending' | 'committed' | 'expired'

export interface ProposalRecord {
  proposal: Proposal
  digest: string
  deadline: number
  firstSeen: number
  status: ProposalStatus
  /** counted votes by voter (equivocators removed) */
  votes: Map<string, Vote>
  certificate?: Certificate
  committedAt?: number
}

export interface ConsensusState {
  config: ConsensusConfig
  n: number
  f: number
  q: number
  isValidator: boolean
  validatorSet: ReadonlySet<string>
  proposals: Map<string, ProposalRecord>
  orphanVotes: Map<string, Vote[]>
  orphanCount: number
  /** validators caught signing two votes on one proposal; their votes no longer count */
  equivocators: Set<string>
  /** every vote seen per (proposal, voter), to detect equivocation after the fact */
  seenVotes: Map<string, Vote>
}

export type ConsensusEvent =
  | { type: 'propose', proposal: Proposal }
  | { type: 'proposal', proposal: Proposal }
  | { type: 'vote', vote: Vote }
  | { type: 'certificate', certificate: Certificate }
  | { type: 'timeout', digest: string }

export type Outbound =
  | { kind: 'proposal', proposal: Proposal }
  | { kind: 'vote', vote: Vote }
  | { kind: 'certificate', certificate: Certificate }
  | { kind: 'evidence', evidence: Evidence }

export interface TimerRequest {
  digest: string
  at: number
}

export type Outcome =
  | { kind: 'proposed', digest: string, proposal: Proposal }
  | { kind: 'committed', digest: string, certificate: Certificate, latencyMs: number }
  | { kind: 'expired', digest: string, proposal: Proposal }
  | { kind: 'equivocation', evidence: Evidence }
  | { kind: 'refused', reason: string }

export interface StepResult {
  state: ConsensusState
  send: Outbound[]
  timers: TimerRequest[]
  outcomes: Outcome[]
}

export function createConsensus (config: ConsensusConfig): ConsensusState {
  const { f, q } = quorum(config.validators.length)
  const validatorSet = new Set(config.validators)
  const isValidator = validatorSet.has(config.self)
  if (isValidator && config.sign === undefined) throw new Error('a validator needs a signer')
  return {
    config,
    n: config.validators.length,
    f,
    q,
    isValidator,
    validatorSet,
    proposals: new Map(),
    orphanVotes: new Map(),
    orphanCount: 0,
    equivocators: new Set(),
    seenVotes: new Map()
  }
}

/** Why a proposal is malformed, or undefined when its shape is valid. */
export function proposalProblem (p: unknown): string | undefined {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return 'proposal must be an object'
  const x = p as Proposal
  const keys = Object.keys(x)
  if (keys.length !== 7 || !['id', 'content', 'snr', 'ihsan', 'proposer', 'ts', 'timeoutMs'].every(k => k in x)) return 'proposal has missing or unknown fields'
  if (typeof x.id !== 'string' || !ID_RE.test(x.id)) return 'id must be 1-128 characters [A-Za-z0-9_.:/-]'
  if (typeof x.snr !== 'number' || !(x.snr >= 0 && x.snr <= 1)) return 'snr must be a number from 0 to 1'
  if (typeof x.ihsan !== 'number' || !(x.ihsan >= 0 && x.ihsan <= 1)) return 'ihsan must be a number from 0 to 1'
  if (typeof x.proposer !== 'string' || x.proposer.length > 128) return 'proposer must be a PeerId'
  if (typeof x.ts !== 'string' || !TS_RE.test(x.ts) || Number.isNaN(Date.parse(x.ts))) return 'ts must be an ISO-8601 UTC timestamp'
  if (!Number.isInteger(x.timeoutMs) || x.timeoutMs < 100 || x.timeoutMs > 3_600_000) return 'timeoutMs must be an integer from 100 to 3600000'
  if (x.content === null || x.content === undefined) return 'content is required'
  try {
    if (canonicalize(x.content).length > MAX_CONTENT_CHARS) return `content larger than ${MAX_CONTENT_CHARS} characters`
  } catch (err) {
    return `content: ${(err as Error).message}`
  }
  return undefined
}

/** The deterministic vote rule: constitution thresholds for network elevation. */
export function decide (p: Proposal, constitution: Constitution): Decision {
  return p.snr >= Math.max(NETWORK_SNR, constitution.snr) && p.ihsan >= constitution.ihsan ? 'accept' : 'reject'
}

export function step (state: ConsensusState, event: ConsensusEvent, now: number): StepResult {
  const out: StepResult = { state, send: [], timers: [], outcomes: [] }
  switch (event.type) {
    case 'propose': {
      const problem = proposalProblem(event.proposal)
      if (problem !== undefined) {
        out.outcomes.push({ kind: 'refused', reason: problem })
        break
      }
      if (event.proposal.snr < state.config.constitution.snr) {
        out.outcomes.push({ kind: 'refused', reason: `snr ${event.proposal.snr} < ${state.config.constitution.snr}: below the local threshold for proposing` })
        break
      }
      const digest = proposalDigest(event.proposal)
      if (state.proposals.has(digest)) {
        out.outcomes.push({ kind: 'refused', reason: 'this proposal is already known' })
        break
      }
      out.send.push({ kind: 'proposal', proposal: event.proposal })
      out.outcomes.push({ kind: 'proposed', digest, proposal: event.proposal })
      onProposal(state, event.proposal, digest, now, out)
      break
    }
    case 'proposal': {
      if (proposalProblem(event.proposal) !== undefined) break
      const digest = proposalDigest(event.proposal)
      if (!state.proposals.has(digest)) onProposal(state, event.proposal, digest, now, out)
      break
    }
    case 'vote':
      if (verifyVote(event.vote)) onVote(state, event.vote, now, out)
      break
    case 'certificate':
      onCertificate(state, event.certificate, now, out)
      break
    case 'timeout': {
      const r = state.proposals.get(event.digest)
      if (r !== undefined && r.status === 'pending' && now >= r.deadline) {
        r.status = 'expired'
        out.outcomes.push({ kind: 'expired', digest: r.digest, proposal: r.proposal })
      }
      break
    }
  }
  return out
}

function onProposal (state: ConsensusState, proposal: Proposal, digest: string, now: number, out: StepResult): void {
  const issued = Date.parse(proposal.ts)
  // the proposer's clock sets the deadline, bounded by ours so a bogus ts cannot stretch it
  const deadline = Math.min(issued + proposal.timeoutMs, now + proposal.timeoutMs)
  const record: ProposalRecord = { proposal, digest, deadline, firstSeen: now, status: 'pending', votes: new Map() }
  state.proposals.set(digest, record)
  if (now >= deadline) {
    record.status = 'expired'
    out.outcomes.push({ kind: 'expired', digest, proposal })
    return
  }
  out.timers.push({ digest, at: deadline })
  if (state.isValidator && !state.equivocators.has(state.config.self)) {
    const vote = signVote({ proposal: digest, proposalId: proposal.id, decision: decide(proposal, state.config.constitution), voter: state.config.self }, state.config.sign!)
    out.send.push({ kind: 'vote', vote })
    onVote(state, vote, now, out)
  }
  const orphans = state.orphanVotes.get(digest)
  if (orphans !== undefined) {
    state.orphanVotes.delete(digest)
    state.orphanCount -= orphans.length
    for (const v of orphans) onVote(state, v, now, out)
  }
}

function onVote (state: ConsensusState, vote: Vote, now: number, out: StepResult): void {
  if (!state.validatorSet.has(vote.voter)) return
  const key = `${vote.proposal}:${vote.voter}`
  const seen = state.seenVotes.get(key)
  if (seen !== undefined) {
    if (seen.decision !== vote.decision && !state.equivocators.has(vote.voter)) {
      state.equivocators.add(vote.voter)
      const evidence: Evidence = { voter: vote.voter, proposal: vote.proposal, votes: [seen, vote] }
      for (const r of state.proposals.values()) {
        if (r.status === 'pending') r.votes.delete(vote.voter)
      }
      out.send.push({ kind: 'evidence', evidence })
      out.outcomes.push({ kind: 'equivocation', evidence })
    }
    return
  }
  state.seenVotes.set(key, vote)
  if (state.equivocators.has(vote.voter)) return
  const record = state.proposals.get(vote.proposal)
  if (record === undefined) {
    holdOrphan(state, vote)
    return
  }
  if (record.status !== 'pending' || vote.proposalId !== record.proposal.id) return
  record.votes.set(vote.voter, vote)
  const matching = [...record.votes.values()].filter(v => v.decision === vote.decision)
  if (matching.length >= state.q) {
    const certificate: Certificate = { proposal: record.proposal, decision: vote.decision, votes: matching.slice(0, state.q) }
    commit(state, record, certificate, now, out)
    out.send.push({ kind: 'certificate', certificate })
  }
}

function holdOrphan (state: ConsensusState, vote: Vote): void {
  const max = state.config.maxOrphanVotes ?? 10_000
  if (state.orphanCount >= max) return
  const list = state.orphanVotes.get(vote.proposal) ?? []
  if (list.length >= state.n) return
  list.push(vote)
  state.orphanVotes.set(vote.proposal, list)
  state.orphanCount++
}

function onCertificate (state: ConsensusState, certificate: Certificate, now: number, out: StepResult): void {
  const check = verifyCertificate(certificate, state.config.validators)
  if (!check.ok) return
  let record = state.proposals.get(check.digest)
  if (record === undefined) {
    if (proposalProblem(certificate.proposal) !== undefined) return
    record = { proposal: certificate.proposal, digest: check.digest, deadline: now, firstSeen: now, status: 'pending', votes: new Map() }
    state.proposals.set(check.digest, record)
  }
  if (record.status === 'committed') return
  commit(state, record, certificate, now, out)
}

function commit (state: ConsensusState, record: ProposalRecord, certificate: Certificate, now: number, out: StepResult): void {
  record.status = 'committed'
  record.certificate = certificate
  record.committedAt = now
  out.outcomes.push({ kind: 'committed', digest: record.digest, certificate, latencyMs: now - record.firstSeen })
  void state
}
