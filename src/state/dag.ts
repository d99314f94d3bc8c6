/**
 * The Merkle session DAG's data model (DESIGN.md "Merkle session DAG"): session states and
 * their transitions, node shape and node hashes. Pure: no I/O.
 */
import { canonicalize } from '../pci/canonical.ts'
import { blake3Text } from '../pci/digest.ts'

/** Domain separation prefix of every node hash. */
export const DAG_DOMAIN = 'bizra-dag-v1:'

export const STATES = ['init', 'active', 'computing', 'validated', 'committed'] as const
export type SessionState = typeof STATES[number]

/** computing -> active is a retry; committed ends a session. */
const NEXT: Readonly<Record<SessionState, readonly SessionState[]>> = {
  init: ['active'],
  active: ['computing'],
  computing: ['validated', 'active'],
  validated: ['committed'],
  committed: []
}

export const MAX_SESSION_LENGTH = 512
export const MAX_PARENTS = 256

/** One node as stored; its hash covers everything but `session` (see nodeHash). */
export interface DagNode {
  session: string
  state: SessionState
  /** epoch ms */
  ts: number
  /** hex hashes; a session's previous node, plus other sessions' heads when merging */
  parents: string[]
  /** hex BLAKE3 of the payload's canonical JSON */
  payloadHash: string
}

export interface HashedNode extends DagNode {
  hash: string
}

/** A store or verifier refusal: an illegal transition, an unknown node, a malformed input. */
export class DagError extends Error {
  static override readonly name: string = 'DagError'
  override readonly name: string = 'DagError'
}

export function isState (value: unknown): value is SessionState {
  return typeof value === 'string' && (STATES as readonly string[]).includes(value)
}

export function canTransition (from: SessionState, to: SessionState): boolean {
  return NEXT[from].includes(to)
}

/**
 * Whether a session's first node may have `state`: `init` always; another state only when the
 * session branches from exactly one node whose state it legally follows.
 */
export function canStart (state: SessionState, parentStates: readonly SessionState[]): boolean {
  if (state === 'init') return true
  return parentStates.length === 1 && canTransition(parentStates[0]!, state)
}

const HEX64 = /^[0-9a-f]{64}$/

/** A lowercase hex 32-byte hash. */
export function isHash (value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value)
}

// with the u flag a surrogate pair is one code point, so this matches lone surrogates only
const LONE_SURROGATE = /[\ud800-\udfff]/u

/** 1 to MAX_SESSION_LENGTH characters of well-formed UTF-16 (it is a database key). */
export function isSessionName (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_SESSION_LENGTH && !LONE_SURROGATE.test(value)
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** hex BLAKE3 of the value's RFC 8785 canonical JSON; throws CanonicalizationError on non-JSON values. */
export function payloadHash (value: unknown): string {
  return hex(blake3Text(canonicalize(value)))
}

/** hash = BLAKE3("bizra-dag-v1:" || canonical JSON of { parents, payloadHash, state, ts }) */
export function nodeHash (node: Pick<DagNode, 'state' | 'ts' | 'parents' | 'payloadHash'>): string {
  const { parents, payloadHash, state, ts } = node
  // A well-formed node's canonical JSON is written directly: its members are already in key
  // order, hex hashes and state names need no escaping, and a safe non-negative integer prints
  // as its digits in RFC 8785 as in String(). Anything else goes through the canonicalizer.
  if (Array.isArray(parents) && isHash(payloadHash) && isState(state) && Number.isSafeInteger(ts) && ts >= 0) {
    let body = '{"parents":['
    for (let i = 0; i < parents.length; i++) {
      const p: unknown = parents[i]
      if (!isHash(p)) return hex(blake3Text(canonicalize({ parents, payloadHash, state, ts }), DAG_DOMAIN))
      body += i === 0 ? '"' + p + '"' : ',"' + p + '"'
    }
    body += '],"payloadHash":"' + payloadHash + '","state":"' + state + '","ts":' + String(ts) + '}'
    return hex(blake3Text(body, DAG_DOMAIN))
  }
  return hex(blake3Text(canonicalize({ parents, payloadHash, state, ts }), DAG_DOMAIN))
}

export function hashNode (node: DagNode): HashedNode {
  return { session: node.session, state: node.state, ts: node.ts, parents: [...node.parents], payloadHash: node.payloadHash, hash: nodeHash(node) }
}

const NODE_KEYS = ['parents', 'payloadHash', 'session', 'state', 'ts']
const HASHED_NODE_KEYS = ['hash', ...NODE_KEYS].sort()

/**
 * Why `value` is not a well-formed node (with a `hash` field when `withHash`), or undefined
 * when it is one. Checks shape only, not that the hash matches.
 */
export function nodeShapeError (value: unknown, withHash: boolean): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not an object'
  const keys = Object.keys(value)
  const expected = withHash ? HASHED_NODE_KEYS : NODE_KEYS
  // Object.keys lists distinct own enumerable keys: as many as expected, each expected one own
  // and enumerable, is the same set
  if (keys.length !== expected.length || !expected.every(k => Object.prototype.propertyIsEnumerable.call(value, k))) {
    return `has fields [${keys.sort().join(', ')}], expected [${expected.join(', ')}]`
  }
  const n = value as Record<string, unknown>
  if (!isSessionName(n.session)) return `session must be a well-formed string of 1 to ${MAX_SESSION_LENGTH} characters`
  if (!isState(n.state)) return `state must be one of ${STATES.join(', ')}`
  if (!Number.isSafeInteger(n.ts) || (n.ts as number) < 0) return 'ts must be a non-negative integer (epoch ms)'
  if (!Array.isArray(n.parents) || n.parents.length > MAX_PARENTS) return `parents must be an array of at most ${MAX_PARENTS} hashes`
  if (!n.parents.every(isHash)) return 'parents must be lowercase hex 32-byte hashes'
  if (new Set(n.parents).size !== n.parents.length) return 'parents has duplicates'
  if (!isHash(n.payloadHash)) return 'payloadHash must be a lowercase hex 32-byte hash'
  if (withHash && !isHash(n.hash)) return 'hash must be a lowercase hex 32-byte hash'
  return undefined
}
