import { randomBytes } from 'node:crypto'
import { FileError, readTextFile } from '../util/fs.ts'

/**
 * Pre-shared swarm key in the IPFS/libp2p format, which go-libp2p and @libp2p/pnet read too:
 *   /key/swarm/psk/1.0.0/\n/base16/\n<64 hex digits>\n
 */
export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'
export const SWARM_KEY_LENGTH = 32

export function generateSwarmKey (): Uint8Array {
  return new Uint8Array(randomBytes(SWARM_KEY_LENGTH))
}

export function formatSwarmKey (key: Uint8Array): string {
  if (key.length !== SWARM_KEY_LENGTH) throw new RangeError(`a swarm key is ${SWARM_KEY_LENGTH} bytes`)
  return `${SWARM_KEY_HEADER}\n/base16/\n${Buffer.from(key).toString('hex')}\n`
}

/** Parses swarm key text; `source` (a file name) is named in every error. */
export function parseSwarmKey (text: string, source: string): Uint8Array {
  const lines = text.split(/\r?\n/).map(l => l.trim()).filter(l => l.length > 0)
  const bad = (why: string): FileError => new FileError(source, `malformed swarm key: ${why}`)
  if (lines[0] !== SWARM_KEY_HEADER) throw bad(`first line must be ${SWARM_KEY_HEADER}`)
  if (lines[1] !== '/base16/') throw bad('second line must be /base16/ (the only encoding supported)')
  const hex = lines[2]
  if (hex === undefined || !/^[0-9a-fA-F]{64}$/.test(hex)) throw bad('third line must be 64 hex digits (32 bytes)')
  if (lines.length > 3) throw bad('unexpected content after the key')
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

export function loadSwarmKey (path: string): Uint8Array {
  return parseSwarmKey(readTextFile(path, 'swarm key'), path)
}
