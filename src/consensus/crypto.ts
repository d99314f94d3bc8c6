import { canonicalize } from '../pci/canonical.ts'
import { blake3Text } from '../pci/digest.ts'
import { peerKeys, PeerKeyError } from '../identity/peer-key.ts'
import { verifyBytes } from '../identity/ed25519.ts'
import type { Certificate, Decision, Proposal, Vote } from './types.ts'

const PROPOSAL_DOMAIN = 'bizra-proposal-v1:'
const VOTE_DOMAIN = 'bizra-vote-v1:'

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Hex BLAKE3 of the proposal's canonical form: the name every vote refers to. */
export function proposalDigest (p: Proposal): string {
  return hex(blake3Text(canonicalize(p), PROPOSAL_DOMAIN))
}

export function voteDigest (v: Omit<Vote, 'sig'>): Uint8Array {
  return blake3Text(canonicalize({ decision: v.decision, proposal: v.proposal, proposalId: v.proposalId, voter: v.voter }), VOTE_DOMAIN)
}

export type Signer = (data: Uint8Array) => Uint8Array

export function signVote (body: Omit<Vote, 'sig'>, sign: Signer): Vote {
  return { ...body, sig: Buffer.from(sign(voteDigest(body))).toString('base64url') }
}

/** True when the vote is well-formed and signed by its voter. Never throws. */
export function verifyVote (v: unknown): v is Vote {
  if (v === null || typeof v !== 'object') return false
  const vote = v as Vote
  if (typeof vote.proposal !== 'string' || !/^[0-9a-f]{64}$/.test(vote.proposal)) return false
  if (typeof vote.proposalId !== 'string' || (vote.decision !== 'accept' && vote.decision !== 'reject')) return false
  if (typeof vote.voter !== 'string' || typeof vote.sig !== 'string' || !/^[A-Za-z0-9_-]{85}[AQgw]$/.test(vote.sig)) return false
  try {
    return verifyBytes(peerKeys.get(vote.voter), voteDigest(vote), Buffer.from(vote.sig, 'base64url'))
  } catch (err) {
    if (err instanceof PeerKeyError) return false
    throw err
  }
}

export function quorum (n: number): { f: number, q: number } {
  const f = Math.floor((n - 1) / 3)
  return { f, q: n - f }
}

export type CertificateCheck = { ok: true, decision: Decision, digest: string } | { ok: false, reason: string }

/**
 * Checks a commit certificate offline: q = n - f votes, each signed by a distinct validator,
 * all with the certificate's decision and on this proposal's digest.
 */
export function verifyCertificate (cert: unknown, validators: readonly string[]): CertificateCheck {
  try {
    if (cert === null || typeof cert !== 'object') return { ok: false, reason: 'certificate must be an object' }
    const c = cert as Certificate
    if (c.decision !== 'accept' && c.decision !== 'reject') return { ok: false, reason: 'decision must be accept or reject' }
    if (c.proposal === null || typeof c.proposal !== 'object' || typeof c.proposal.id !== 'string') return { ok: false, reason: 'missing proposal' }
    if (!Array.isArray(c.votes)) return { ok: false, reason: 'votes must be an array' }
    const digest = proposalDigest(c.proposal)
    const { q } = quorum(validators.length)
    const set = new Set(validators)
    const signers = new Set<string>()
    for (const v of c.votes) {
      if (!verifyVote(v)) return { ok: false, reason: 'a vote has a bad signature or shape' }
      if (!set.has(v.voter)) return { ok: false, reason: `vote by ${v.voter}, who is not a validator` }
      if (v.proposal !== digest || v.proposalId !== c.proposal.id) return { ok: false, reason: 'a vote is for another proposal' }
      if (v.decision !== c.decision) return { ok: false, reason: 'a vote disagrees with the decision' }
      if (signers.has(v.voter)) return { ok: false, reason: `two votes by ${v.voter}` }
      signers.add(v.voter)
    }
    if (signers.size < q) return { ok: false, reason: `${signers.size} distinct validator votes, quorum is ${q} of ${validators.length}` }
    return { ok: true, decision: c.decision, digest }
  } catch (err) {
    return { ok: false, reason: `unverifiable: ${(err as Error).message}` }
  }
}
