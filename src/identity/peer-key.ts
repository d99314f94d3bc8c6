import type { KeyObject } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { publicKeyFromRaw } from './ed25519.ts'

export class PeerKeyError extends Error {
  static override readonly name: string = 'PeerKeyError'
  override readonly name: string = 'PeerKeyError'
}

/**
 * Resolves the Ed25519 public key embedded in a PeerId string (identity multihash), so a
 * signature verifies with no key lookup. Parsed keys are kept in a bounded LRU: parsing a
 * PeerId and importing the key costs more than the signature check itself.
 */
export class PeerKeyCache {
  readonly #max: number
  readonly #keys = new Map<string, KeyObject>()

  constructor (maxEntries = 10_000) {
    this.#max = maxEntries
  }

  get size (): number {
    return this.#keys.size
  }

  /** Throws PeerKeyError when the string is not an Ed25519 PeerId. */
  get (peerId: string): KeyObject {
    const cached = this.#keys.get(peerId)
    if (cached !== undefined) {
      // refresh recency
      this.#keys.delete(peerId)
      this.#keys.set(peerId, cached)
      return cached
    }
    const key = publicKeyFromRaw(ed25519PublicKeyOf(peerId))
    if (this.#keys.size >= this.#max) {
      const oldest = this.#keys.keys().next().value
      if (oldest !== undefined) this.#keys.delete(oldest)
    }
    this.#keys.set(peerId, key)
    return key
  }
}

/** The raw 32-byte Ed25519 public key inside a PeerId string. */
export function ed25519PublicKeyOf (peerId: string): Uint8Array {
  let parsed
  try {
    parsed = peerIdFromString(peerId)
  } catch {
    throw new PeerKeyError(`not a PeerId: ${truncate(peerId)}`)
  }
  if (parsed.type !== 'Ed25519') {
    throw new PeerKeyError(`PeerId ${truncate(peerId)} is ${parsed.type}, not Ed25519`)
  }
  return parsed.publicKey.raw
}

function truncate (s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s
}

/** Process-wide cache shared by envelope verification and signature checks. */
export const peerKeys = new PeerKeyCache()
