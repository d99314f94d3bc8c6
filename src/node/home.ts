import { existsSync, mkdirSync, statSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { NodeIdentity } from '../identity/identity.ts'
import { loadIdentity, saveIdentity } from '../identity/keystore.ts'
import { formatSwarmKey, generateSwarmKey, loadSwarmKey } from '../net/swarm-key.ts'
import { FileError, writeFileExclusive } from '../util/fs.ts'

/** The node's home directory and the files in it (DESIGN.md "Defaults"). */
export interface HomePaths {
  home: string
  identity: string
  swarmKey: string
  apiToken: string
  db: string
  socket: string
  /** GGUF model files */
  models: string
}

/** `--home`, else `$BIZRA_HOME`, else `./.bizra`; always absolute. */
export function resolveHome (flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? (env.BIZRA_HOME !== undefined && env.BIZRA_HOME !== '' ? env.BIZRA_HOME : '.bizra'))
}

export function homePaths (home: string): HomePaths {
  return {
    home,
    identity: join(home, 'identity.key'),
    swarmKey: join(home, 'swarm.key'),
    apiToken: join(home, 'api.token'),
    db: join(home, 'db'),
    socket: join(home, 'node.sock'),
    models: join(home, 'models')
  }
}

export interface InitResult {
  paths: HomePaths
  identity: NodeIdentity
  /** files this call created, by name (identity.key, swarm.key, api.token) */
  created: string[]
}

/**
 * Creates whatever the home lacks: the directory (0700), an Ed25519 identity (encrypted when
 * a passphrase is given), a swarm key and an API token, all 0600. Existing files are loaded
 * and checked, never replaced, so running it twice changes nothing.
 */
export async function initHome (home: string, passphrase?: string): Promise<InitResult> {
  const paths = homePaths(home)
  if (existsSync(home) && !statSync(home).isDirectory()) throw new FileError(home, 'home exists and is not a directory')
  mkdirSync(home, { recursive: true, mode: 0o700 })
  const created: string[] = []

  let identity: NodeIdentity
  if (existsSync(paths.identity)) {
    identity = await loadIdentity(paths.identity, passphrase)
  } else {
    identity = await NodeIdentity.generate()
    saveIdentity(paths.identity, identity, passphrase)
    created.push('identity.key')
  }
  if (existsSync(paths.swarmKey)) {
    loadSwarmKey(paths.swarmKey)
  } else {
    writeFileExclusive(paths.swarmKey, formatSwarmKey(generateSwarmKey()), 0o600)
    created.push('swarm.key')
  }
  if (!existsSync(paths.apiToken)) {
    writeFileExclusive(paths.apiToken, randomBytes(32).toString('hex') + '\n', 0o600)
    created.push('api.token')
  }
  return { paths, identity, created }
}

/** Loads the identity of an initialised home; a missing key is an error that says what to run. */
export async function openIdentity (home: string, passphrase?: string): Promise<NodeIdentity> {
  const { identity } = homePaths(home)
  if (!existsSync(identity)) throw new FileError(identity, 'no identity here; run `bizra init` first (or pass --home)')
  return loadIdentity(identity, passphrase)
}
