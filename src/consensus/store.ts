import type { KeyValueDb } from '../util/db.ts'
import type { Certificate, Evidence, Proposal, Vote } from './types.ts'
import { verifyCertificate } from './crypto.ts'

type Db = KeyValueDb

// classic-level (LevelDB) honours `sync`: the write is on disk before the call resolves.
// abstract-level's types do not name it; memory-level ignores it.
const DURABLE = { sync: true }

export interface CommittedPattern {
  id: string
  digest: string
  decision: Certificate['decision']
  certificate: Certificate
  committedAt: number
}

/**
 * Proposals, votes, certificates and evidence in level. A commit is one atomic batch written
 * with sync, so a committed pattern survives `kill -9` at any moment: after a crash the store
 * holds either the whole commit or none of it.
 */
export class PatternStore {
  readonly #db: Db

  constructor (db: Db) {
    this.#db = db
  }

  async saveProposal (digest: string, proposal: Proposal): Promise<void> {
    await this.#db.put(`proposal!${digest}`, JSON.stringify(proposal))
  }

  async saveVote (vote: Vote): Promise<void> {
    await this.#db.put(`vote!${vote.proposal}!${vote.voter}`, JSON.stringify(vote))
  }

  async saveEvidence (evidence: Evidence): Promise<void> {
    await this.#db.put(`evidence!${evidence.voter}!${evidence.proposal}`, JSON.stringify(evidence), DURABLE)
  }

  async saveCommit (digest: string, certificate: Certificate, committedAt: number): Promise<void> {
    const record: CommittedPattern = { id: certificate.proposal.id, digest, decision: certificate.decision, certificate, committedAt }
    await this.#db.batch([
      { type: 'put', key: `commit!${digest}`, value: JSON.stringify(record) },
      { type: 'put', key: `pattern!${certificate.proposal.id}!${digest}`, value: String(committedAt) },
      { type: 'put', key: `proposal!${digest}`, value: JSON.stringify(certificate.proposal) }
    ], DURABLE)
  }

  async getCommit (digest: string): Promise<CommittedPattern | undefined> {
    const v = await this.#db.get(`commit!${digest}`)
    return v === undefined ? undefined : JSON.parse(v) as CommittedPattern
  }

  /** Every committed pattern, oldest commit first. */
  async listCommitted (): Promise<CommittedPattern[]> {
    const out: CommittedPattern[] = []
    for await (const v of this.#db.values({ gt: 'commit!', lt: 'commit"' })) out.push(JSON.parse(v) as CommittedPattern)
    return out.sort((a, b) => a.committedAt - b.committedAt)
  }

  /** The latest commit of a pattern id (a pattern may be proposed again with new content). */
  async getPattern (id: string): Promise<CommittedPattern | undefined> {
    let latest: CommittedPattern | undefined
    for await (const key of this.#db.keys({ gt: `pattern!${id}!`, lt: `pattern!${id}"` })) {
      const c = await this.getCommit(key.slice(key.lastIndexOf('!') + 1))
      if (c !== undefined && (latest === undefined || c.committedAt > latest.committedAt)) latest = c
    }
    return latest
  }

  /**
   * Stores certificates fetched from a peer, each verified against the validator set first;
   * returns how many were new and valid and how many were refused.
   */
  async importVerified (certificates: unknown[], validators: readonly string[], now: number): Promise<{ stored: number, refused: number }> {
    let stored = 0
    let refused = 0
    for (const c of certificates) {
      const check = verifyCertificate(c, validators)
      if (!check.ok) {
        refused++
        continue
      }
      if (await this.getCommit(check.digest) !== undefined) continue
      await this.saveCommit(check.digest, c as Certificate, now)
      stored++
    }
    return { stored, refused }
  }

  /** Votes seen on one proposal. */
  async votes (digest: string): Promise<Vote[]> {
    const out: Vote[] = []
    for await (const v of this.#db.values({ gt: `vote!${digest}!`, lt: `vote!${digest}"` })) out.push(JSON.parse(v) as Vote)
    return out
  }

  async proposal (digest: string): Promise<Proposal | undefined> {
    const v = await this.#db.get(`proposal!${digest}`)
    return v === undefined ? undefined : JSON.parse(v) as Proposal
  }

  async evidence (): Promise<Evidence[]> {
    const out: Evidence[] = []
    for await (const v of this.#db.values({ gt: 'evidence!', lt: 'evidence"' })) out.push(JSON.parse(v) as Evidence)
    return out
  }
}
