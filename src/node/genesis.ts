import { multiaddr } from '@multiformats/multiaddr'
import { parseConstitution, ConstitutionError, type Constitution } from '../governance/constitution.ts'
import { ed25519PublicKeyOf, PeerKeyError } from '../identity/peer-key.ts'
import { FileError, readTextFile } from '../util/fs.ts'

/** genesis.json (DESIGN.md "Swarm key and genesis"). */
export interface Genesis {
  federationId: string
  /** PeerIds of the validators */
  validators: string[]
  constitution: Constitution
  /** multiaddrs ending in /p2p/<PeerId> */
  bootstrap: string[]
}

/** No genesis: a single-node federation whose validator set is the node itself. */
export function soloGenesis (peerId: string): Genesis {
  return { federationId: `solo-${peerId.slice(-8)}`, validators: [peerId], constitution: parseConstitution(undefined), bootstrap: [] }
}

/** Validates genesis JSON; `source` (the file) is named in every error. */
export function parseGenesis (input: unknown, source: string): Genesis {
  const bad = (why: string): FileError => new FileError(source, `invalid genesis: ${why}`)
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw bad('must be a JSON object')
  const g = input as Record<string, unknown>
  if (typeof g.federationId !== 'string' || !/^[A-Za-z0-9][\w.-]{0,63}$/.test(g.federationId)) {
    throw bad('federationId must be 1-64 characters [A-Za-z0-9_.-]')
  }
  if (!Array.isArray(g.validators) || g.validators.length === 0) throw bad('validators must be a non-empty array of PeerIds')
  const validators: string[] = []
  for (const v of g.validators) {
    if (typeof v !== 'string') throw bad('validators must be PeerId strings')
    try {
      ed25519PublicKeyOf(v)
    } catch (err) {
      if (err instanceof PeerKeyError) throw bad(`validator ${err.message}`)
      throw err
    }
    if (validators.includes(v)) throw bad(`validator ${v} is listed twice`)
    validators.push(v)
  }
  const bootstrap = parseBootstrapList(g.bootstrap ?? [], bad)
  let constitution: Constitution
  try {
    constitution = parseConstitution(g.constitution)
  } catch (err) {
    if (err instanceof ConstitutionError) throw bad(err.message)
    throw err
  }
  return { federationId: g.federationId, validators, constitution, bootstrap }
}

/** Checks that each entry is a multiaddr naming its peer (/p2p/<id>). */
export function parseBootstrapList (list: unknown, bad: (why: string) => Error): string[] {
  if (!Array.isArray(list)) throw bad('bootstrap must be an array of multiaddrs')
  return list.map(a => {
    if (typeof a !== 'string') throw bad('bootstrap entries must be multiaddr strings')
    let ma
    try {
      ma = multiaddr(a)
    } catch {
      throw bad(`not a multiaddr: ${a}`)
    }
    if (ma.getComponents().find(c => c.name === 'p2p') === undefined) throw bad(`bootstrap address must end in /p2p/<PeerId>: ${a}`)
    return a
  })
}

export function loadGenesis (path: string): Genesis {
  const text = readTextFile(path, 'genesis')
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new FileError(path, 'invalid genesis: not JSON')
  }
  return parseGenesis(json, path)
}
