/** Pattern elevation (DESIGN.md "Pattern elevation (BFT voting)"): the data that travels and is stored. */

export type Decision = 'accept' | 'reject'

/** A pattern put to the federation. Its digest (hex BLAKE3 of the canonical form) names it. */
export interface Proposal {
  id: string
  content: unknown
  snr: number
  ihsan: number
  /** PeerId of the proposer */
  proposer: string
  /** ISO-8601 time of proposal; the vote deadline is ts + timeoutMs */
  ts: string
  timeoutMs: number
}

/** One validator's signed decision on one proposal. */
export interface Vote {
  /** digest of the proposal voted on */
  proposal: string
  proposalId: string
  decision: Decision
  voter: string
  /** base64url Ed25519 signature over the vote digest */
  sig: string
}

/** q matching votes from distinct validators: anyone holding the validator set can check it. */
export interface Certificate {
  proposal: Proposal
  decision: Decision
  votes: Vote[]
}

/** Two different signed votes by one validator on one proposal. */
export interface Evidence {
  voter: string
  proposal: string
  votes: [Vote, Vote]
}
