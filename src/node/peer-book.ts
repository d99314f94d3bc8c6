import type { KeyValueDb } from '../util/db.ts'

/** What the node remembers about a peer across restarts. */
export interface PeerRecord {
  addresses: string[]
  lastSeen: number
}

type Db = KeyValueDb

/**
 * Known peers in level (`peer!<id>`), so a restarted node can find the federation again even
 * when its bootstrap node is gone. Writes are throttled per peer: heartbeats are frequent.
 */
export class PeerBook {
  readonly #db: Db
  readonly #lastWrite = new Map<string, number>()
  readonly #minIntervalMs: number

  constructor (db: Db, minIntervalMs = 60_000) {
    this.#db = db
    this.#minIntervalMs = minIntervalMs
  }

  async remember (peerId: string, record: PeerRecord): Promise<void> {
    const last = this.#lastWrite.get(peerId)
    if (last !== undefined && record.lastSeen - last < this.#minIntervalMs) return
    this.#lastWrite.set(peerId, record.lastSeen)
    await this.#db.put(`peer!${peerId}`, JSON.stringify(record))
  }

  /** Most recently seen first. Skips (and reports) records that do not parse. */
  async recent (limit: number): Promise<Array<{ peerId: string } & PeerRecord>> {
    const out: Array<{ peerId: string } & PeerRecord> = []
    for await (const [key, value] of this.#db.iterator({ gt: 'peer!', lt: 'peer"' })) {
      try {
        const r = JSON.parse(String(value)) as PeerRecord
        if (Array.isArray(r.addresses) && typeof r.lastSeen === 'number') out.push({ peerId: String(key).slice(5), ...r })
      } catch {
        // a damaged record costs us one peer hint, nothing more
      }
    }
    return out.sort((a, b) => b.lastSeen - a.lastSeen).slice(0, limit)
  }
}
