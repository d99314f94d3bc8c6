import type { AgentCard } from './types.ts'
import type { Envelope } from '../pci/envelope.ts'
import { smooth, type ProviderCandidate } from './ranking.ts'

interface Stats {
  latencyMs: number | null
  inflight: number
  reportedLoad: number
  failures: number
}

/** How long a card is trusted without being gossiped again. */
export const CARD_TTL_MS = 10 * 60_000

/**
 * The agent cards this node has heard of, and what it has observed of each provider
 * (latency, load, failures). Pure bookkeeping: the node feeds it gossip and task outcomes.
 */
export class AgentDirectory {
  readonly #cards = new Map<string, { card: AgentCard, seenAt: number, envelope: Envelope | undefined }>()
  readonly #stats = new Map<string, Stats>()
  readonly #ttlMs: number

  constructor (options: { ttlMs?: number } = {}) {
    this.#ttlMs = options.ttlMs ?? CARD_TTL_MS
  }

  /** Records a card (with the signed envelope it came in, to pass on); returns true when it is new or changed. */
  upsert (card: AgentCard, now: number, envelope?: Envelope): boolean {
    const old = this.#cards.get(card.peerId)
    this.#cards.set(card.peerId, { card, seenAt: now, envelope })
    return old === undefined || JSON.stringify(old.card) !== JSON.stringify(card)
  }

  forget (peerId: string): void {
    this.#cards.delete(peerId)
  }

  card (peerId: string, now = Date.now()): AgentCard | undefined {
    const e = this.#cards.get(peerId)
    return e !== undefined && now - e.seenAt <= this.#ttlMs ? e.card : undefined
  }

  /** the signed envelope the peer's current card came in, if it is still trusted */
  envelope (peerId: string, now = Date.now()): Envelope | undefined {
    const e = this.#cards.get(peerId)
    return e !== undefined && now - e.seenAt <= this.#ttlMs ? e.envelope : undefined
  }

  cards (now = Date.now()): AgentCard[] {
    return [...this.#cards.values()].filter(e => now - e.seenAt <= this.#ttlMs).map(e => e.card)
  }

  /** PeerIds whose card lists the skill. */
  providers (skill: string, now = Date.now()): string[] {
    return this.cards(now).filter(c => c.skills.some(s => s.id === skill)).map(c => c.peerId)
  }

  started (peerId: string): void {
    this.#stat(peerId).inflight++
  }

  /** A task attempt to the peer ended: `ms` is its round-trip, `ok` whether the peer did its part. */
  finished (peerId: string, ms: number, ok: boolean): void {
    const s = this.#stat(peerId)
    s.inflight = Math.max(0, s.inflight - 1)
    if (ok) {
      s.latencyMs = smooth(s.latencyMs, ms)
      s.failures = 0
    } else {
      s.failures++
    }
  }

  reportLoad (peerId: string, load: number): void {
    if (Number.isFinite(load) && load >= 0) this.#stat(peerId).reportedLoad = load
  }

  candidate (peerId: string, health: { trust: number, healthy: boolean }): ProviderCandidate {
    const s = this.#stats.get(peerId)
    return {
      peerId,
      latencyMs: s?.latencyMs ?? null,
      load: (s?.inflight ?? 0) + (s?.reportedLoad ?? 0),
      trust: health.trust,
      healthy: health.healthy,
      failures: s?.failures ?? 0
    }
  }

  #stat (peerId: string): Stats {
    let s = this.#stats.get(peerId)
    if (s === undefined) {
      s = { latencyMs: null, inflight: 0, reportedLoad: 0, failures: 0 }
      this.#stats.set(peerId, s)
    }
    return s
  }
}
