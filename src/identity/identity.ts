import type { KeyObject } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { privateKeyFromSeed, randomSeed, rawPublicKey, signBytes, verifyBytes } from './ed25519.ts'

/**
 * A node's Ed25519 identity. Signing runs on node:crypto (OpenSSL); the libp2p PeerId and
 * private key are derived from the same 32-byte seed, so the PeerId on the wire is the key
 * that signs envelopes.
 */
export class NodeIdentity {
  readonly peerId: PeerId
  /** base58btc PeerId string, as libp2p prints it */
  readonly id: string
  readonly publicKey: Uint8Array
  readonly libp2pKey: Ed25519PrivateKey
  readonly #seed: Uint8Array
  readonly #privateKey: KeyObject

  private constructor (seed: Uint8Array, libp2pKey: Ed25519PrivateKey) {
    this.#seed = seed
    this.#privateKey = privateKeyFromSeed(seed)
    this.publicKey = rawPublicKey(this.#privateKey)
    this.libp2pKey = libp2pKey
    this.peerId = peerIdFromPrivateKey(libp2pKey)
    this.id = this.peerId.toString()
  }

  static async fromSeed (seed: Uint8Array): Promise<NodeIdentity> {
    const copy = new Uint8Array(seed)
    return new NodeIdentity(copy, await generateKeyPairFromSeed('Ed25519', copy))
  }

  static async generate (): Promise<NodeIdentity> {
    return NodeIdentity.fromSeed(randomSeed())
  }

  /** The private seed; only the keystore should need it. */
  exportSeed (): Uint8Array {
    return new Uint8Array(this.#seed)
  }

  sign (data: Uint8Array): Uint8Array {
    return signBytes(this.#privateKey, data)
  }

  verify (data: Uint8Array, signature: Uint8Array): boolean {
    return verifyBytes(this.#privateKey, data, signature)
  }
}
