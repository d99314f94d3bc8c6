import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto'
import { existsSync, linkSync, renameSync, rmSync } from 'node:fs'
import { NodeIdentity } from './identity.ts'
import { SEED_LENGTH } from './ed25519.ts'
import { FileError, readTextFile, writeFileExclusive } from '../util/fs.ts'

/**
 * Keystore file (`<home>/identity.key`, mode 0600): JSON holding the 32-byte Ed25519 seed,
 * either in the clear or encrypted with a passphrase (scrypt -> AES-256-GCM, the PeerId as
 * associated data so the header cannot be swapped).
 */
export interface KeystoreFile {
  bizra: 'identity'
  version: 1
  type: 'Ed25519'
  peerId: string
  encrypted: boolean
  seed?: string
  kdf?: { name: 'scrypt', N: number, r: number, p: number, salt: string }
  cipher?: { name: 'aes-256-gcm', iv: string, tag: string }
  ciphertext?: string
}

export const SCRYPT_PARAMS = { N: 1 << 15, r: 8, p: 1 }
const SCRYPT_MAXMEM = 256 * 1024 * 1024

export class KeystoreError extends FileError {
  static override readonly name: string = 'KeystoreError'
  override readonly name: string = 'KeystoreError'
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url')
const unb64 = (s: unknown): Buffer | undefined =>
  typeof s === 'string' && /^[A-Za-z0-9_-]*$/.test(s) ? Buffer.from(s, 'base64url') : undefined

function deriveKey (passphrase: string, salt: Uint8Array, kdf: { N: number, r: number, p: number }): Buffer {
  return scryptSync(passphrase.normalize('NFKC'), salt, 32, { ...kdf, maxmem: SCRYPT_MAXMEM })
}

/** Serialises an identity as keystore JSON, encrypted when a passphrase is given. */
export function encodeKeystore (identity: NodeIdentity, passphrase?: string): string {
  const base = { bizra: 'identity', version: 1, type: 'Ed25519', peerId: identity.id } as const
  const seed = identity.exportSeed()
  let file: KeystoreFile
  if (passphrase === undefined || passphrase === '') {
    file = { ...base, encrypted: false, seed: b64(seed) }
  } else {
    const salt = randomBytes(16)
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', deriveKey(passphrase, salt, SCRYPT_PARAMS), iv)
    cipher.setAAD(Buffer.from(identity.id))
    const ciphertext = Buffer.concat([cipher.update(seed), cipher.final()])
    file = {
      ...base,
      encrypted: true,
      kdf: { name: 'scrypt', ...SCRYPT_PARAMS, salt: b64(salt) },
      cipher: { name: 'aes-256-gcm', iv: b64(iv), tag: b64(cipher.getAuthTag()) },
      ciphertext: b64(ciphertext)
    }
  }
  return JSON.stringify(file, null, 2) + '\n'
}

/**
 * Parses keystore JSON. `source` names the file (or "stdin") in every error. Throws
 * KeystoreError for corrupt content, a missing or wrong passphrase, or a seed that does not
 * match the recorded PeerId.
 */
export async function decodeKeystore (text: string, source: string, passphrase?: string): Promise<NodeIdentity> {
  const corrupt = (why: string): KeystoreError => new KeystoreError(source, `not a valid BIZRA identity file (${why})`)
  let file: Partial<KeystoreFile>
  try {
    file = JSON.parse(text)
  } catch {
    throw corrupt('not JSON')
  }
  if (file === null || typeof file !== 'object' || file.bizra !== 'identity') throw corrupt('missing "bizra": "identity"')
  if (file.version !== 1) throw corrupt(`unsupported version ${JSON.stringify(file.version)}`)
  if (file.type !== 'Ed25519') throw corrupt(`unsupported key type ${JSON.stringify(file.type)}`)
  if (typeof file.peerId !== 'string') throw corrupt('missing peerId')

  let seed: Uint8Array
  if (file.encrypted === false) {
    const raw = unb64(file.seed)
    if (raw === undefined || raw.length !== SEED_LENGTH) throw corrupt('bad seed')
    seed = raw
  } else if (file.encrypted === true) {
    const salt = unb64(file.kdf?.salt)
    const iv = unb64(file.cipher?.iv)
    const tag = unb64(file.cipher?.tag)
    const ciphertext = unb64(file.ciphertext)
    const kdf = file.kdf
    if (kdf?.name !== 'scrypt' || file.cipher?.name !== 'aes-256-gcm' ||
      salt === undefined || iv === undefined || tag === undefined || ciphertext === undefined ||
      !isPow2(kdf.N) || !isSmallInt(kdf.r) || !isSmallInt(kdf.p) || tag.length !== 16 || iv.length !== 12) {
      throw corrupt('bad encryption header')
    }
    if (passphrase === undefined || passphrase === '') {
      throw new KeystoreError(source, 'identity is encrypted; set BIZRA_PASSPHRASE to unlock it')
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', deriveKey(passphrase, salt, kdf), iv)
      decipher.setAAD(Buffer.from(file.peerId))
      decipher.setAuthTag(tag)
      seed = Buffer.concat([decipher.update(ciphertext), decipher.final()])
    } catch {
      throw new KeystoreError(source, 'wrong passphrase, or the file was altered')
    }
    if (seed.length !== SEED_LENGTH) throw corrupt('bad seed length')
  } else {
    throw corrupt('missing "encrypted"')
  }
  const identity = await NodeIdentity.fromSeed(seed)
  if (identity.id !== file.peerId) throw corrupt('the key does not match its recorded peerId')
  return identity
}

function isPow2 (n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 2 && n <= (1 << 22) && (n & (n - 1)) === 0
}

function isSmallInt (n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 64
}

export async function loadIdentity (path: string, passphrase?: string): Promise<NodeIdentity> {
  return decodeKeystore(readTextFile(path, 'identity key'), path, passphrase)
}

/** Writes a new keystore file; never overwrites an existing one. */
export function saveIdentity (path: string, identity: NodeIdentity, passphrase?: string): void {
  writeFileExclusive(path, encodeKeystore(identity, passphrase), 0o600)
}

/**
 * Replaces the keystore at `path`, keeping the old file as `<path>.bak-<ms>` (returned).
 * The backup is a hard link and the new file is renamed over the old one, so at every
 * instant `path` holds a complete keystore, the old or the new.
 */
export function replaceIdentity (path: string, identity: NodeIdentity, passphrase?: string): string | undefined {
  if (!existsSync(path)) {
    saveIdentity(path, identity, passphrase)
    return undefined
  }
  const staged = `${path}.new-${process.pid}`
  writeFileExclusive(staged, encodeKeystore(identity, passphrase), 0o600)
  try {
    // two replacements within one millisecond must not collide on the backup name
    const stamp = Date.now()
    let backup = `${path}.bak-${stamp}`
    for (let i = 1; ; i++) {
      try {
        linkSync(path, backup)
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 1000) throw err
        backup = `${path}.bak-${stamp}-${i}`
      }
    }
    renameSync(staged, path)
    return backup
  } catch (err) {
    rmSync(staged, { force: true })
    throw err
  }
}
