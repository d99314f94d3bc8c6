import { existsSync, mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { homePaths, openIdentity, resolveHome } from '../../node/home.ts'
import { decodeKeystore, encodeKeystore, replaceIdentity, saveIdentity } from '../../identity/keystore.ts'
import { peerKeys, PeerKeyError } from '../../identity/peer-key.ts'
import { verifyBytes } from '../../identity/ed25519.ts'
import { writeFileExclusive } from '../../util/fs.ts'
import { parse, readInput, readInputBytes, str, UsageError, type Values } from '../args.ts'
import { emit, passphrase } from '../output.ts'

export const usage = [
  'bizra identity show                                   PeerId and public key of this node',
  'bizra identity export [--out FILE]                    keystore JSON (encrypted when BIZRA_PASSPHRASE is set)',
  'bizra identity import FILE|- [--force]                install a keystore as this node\'s identity',
  'bizra identity sign (--message TEXT | --file FILE|-)  Ed25519 signature (base64url) of the bytes',
  'bizra identity verify --sig SIG [--peer PEERID] (--message TEXT | --file FILE|-)'
].join('\n')

const OPTIONS = {
  out: { type: 'string', short: 'o' },
  force: { type: 'boolean', default: false },
  message: { type: 'string', short: 'm' },
  file: { type: 'string', short: 'f' },
  sig: { type: 'string' },
  peer: { type: 'string' }
} as const

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'identity')
  const [sub, ...rest] = positionals
  const home = resolveHome(str(values, 'home'))
  const json = values.json === true
  switch (sub) {
    case 'show': {
      const identity = await openIdentity(home, passphrase())
      const publicKey = Buffer.from(identity.publicKey).toString('base64url')
      emit(json, { peerId: identity.id, publicKey, keyType: 'Ed25519', file: homePaths(home).identity },
        `PeerId:     ${identity.id}\nPublic key: ${publicKey} (Ed25519, base64url)\nKey file:   ${homePaths(home).identity}`)
      return 0
    }
    case 'export': {
      const identity = await openIdentity(home, passphrase())
      const text = encodeKeystore(identity, passphrase())
      const out = str(values, 'out')
      if (out === undefined) {
        process.stdout.write(text)
      } else {
        writeFileExclusive(resolve(out), text, 0o600)
        emit(json, { file: resolve(out), peerId: identity.id, encrypted: passphrase() !== undefined },
          `Exported ${identity.id} to ${resolve(out)}${passphrase() === undefined ? ' (unencrypted: keep it safe)' : ' (encrypted)'}`)
      }
      return 0
    }
    case 'import': {
      const source = rest[0]
      if (source === undefined) throw new UsageError('identity import: give the keystore FILE (or - for stdin)')
      const identity = await decodeKeystore(readInput(source, 'keystore'), source === '-' ? 'stdin' : source, passphrase())
      const target = homePaths(home).identity
      mkdirSync(home, { recursive: true, mode: 0o700 })
      let backup: string | undefined
      if (existsSync(target)) {
        if (values.force !== true) {
          throw new UsageError(`${target} already holds an identity; pass --force to replace it (the old file is kept as a backup)`)
        }
        backup = replaceIdentity(target, identity, passphrase())
      } else {
        saveIdentity(target, identity, passphrase())
      }
      emit(json, { peerId: identity.id, file: target, backup: backup ?? null },
        `Imported ${identity.id} into ${target}${backup !== undefined ? ` (previous identity kept at ${backup})` : ''}`)
      return 0
    }
    case 'sign': {
      const identity = await openIdentity(home, passphrase())
      const signature = Buffer.from(identity.sign(messageBytes(values))).toString('base64url')
      emit(json, { peerId: identity.id, signature }, signature)
      return 0
    }
    case 'verify': {
      const sig = str(values, 'sig')
      if (sig === undefined) throw new UsageError('identity verify: --sig is required')
      if (!/^[A-Za-z0-9_-]+$/.test(sig)) throw new UsageError('identity verify: --sig must be base64url')
      const peer = str(values, 'peer') ?? (await openIdentity(home, passphrase())).id
      let key
      try {
        key = peerKeys.get(peer)
      } catch (err) {
        if (err instanceof PeerKeyError) throw new UsageError(`identity verify: --peer: ${err.message}`)
        throw err
      }
      const ok = verifyBytes(key, messageBytes(values), Buffer.from(sig, 'base64url'))
      emit(json, { ok, peerId: peer }, ok ? `valid signature by ${peer}` : `INVALID signature for ${peer}`)
      return ok ? 0 : 1
    }
    default:
      throw new UsageError(`usage:\n${usage}`)
  }
}

function messageBytes (values: Values): Uint8Array {
  const message = str(values, 'message')
  const file = str(values, 'file')
  if ((message === undefined) === (file === undefined)) throw new UsageError('give exactly one of --message TEXT or --file FILE|-')
  if (message !== undefined) return Buffer.from(message, 'utf8')
  return readInputBytes(file!, 'message file')
}
