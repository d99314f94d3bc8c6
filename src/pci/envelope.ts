import { randomFillSync } from 'node:crypto'
import { canonicalize, CanonicalizationError } from './canonical.ts'
import { pciDigest } from './digest.ts'
import { RejectCode } from './codes.ts'
import { ReplayCache } from './replay.ts'
import { peerKeys, PeerKeyError } from '../identity/peer-key.ts'
import { verifyBytes } from '../identity/ed25519.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import { DEFAULT_CONSTITUTION, type Constitution } from '../governance/constitution.ts'

export const AGENTS = ['USER', 'MODEL', 'SOVEREIGN'] as const
export type Agent = typeof AGENTS[number]

/** A proof-carrying envelope: every message on the wire is one (DESIGN.md). */
export interface Envelope<P = unknown> {
  v: 1
  type: string
  sender: string
  agent: Agent
  payload: P
  ts: string
  ttl: number
  ihsan: number
  snr: number
  nonce: string
  sig: string
}

export interface CreateEnvelopeOptions<P> {
  payload: P
  /** message type, e.g. `message`, `vote`, `task` (default `message`) */
  type?: string
  agent?: Agent
  /** seconds, 1..3600 (default 300) */
  ttl?: number
  /** declared Ihsan score (default: the constitution minimum, 0.95) */
  ihsan?: number
  /** declared signal-to-noise ratio (default: the constitution minimum, 0.85) */
  snr?: number
  /** epoch ms (default Date.now()) */
  now?: number
}

export const DEFAULT_TTL_S = 300
export const MAX_ENVELOPE_BYTES = 1024 * 1024
export const MAX_PAYLOAD_DEPTH = 32

const ENVELOPE_KEYS = ['agent', 'ihsan', 'nonce', 'payload', 'sender', 'sig', 'snr', 'ts', 'ttl', 'type', 'v']
const TYPE_RE = /^[a-z][a-z0-9._:/-]{0,63}$/
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{40,128}$/
const NONCE_RE = /^(?:[0-9a-f]{2}){8,32}$/
// 64 bytes = 86 base64url characters; the last one carries 4 padding bits, which must be zero so
// that each signature has exactly one spelling (else 16 strings verify for one envelope)
const SIG_RE = /^[A-Za-z0-9_-]{85}[AQgw]$/
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/

// Nonces come from a pool of random bytes refilled in bulk: one syscall per 256 envelopes.
const noncePool = Buffer.alloc(16 * 256)
let nonceOffset = noncePool.length

function freshNonce (): string {
  if (nonceOffset >= noncePool.length) {
    randomFillSync(noncePool)
    nonceOffset = 0
  }
  const nonce = noncePool.toString('hex', nonceOffset, nonceOffset + 16)
  nonceOffset += 16
  return nonce
}

/**
 * RFC 8785 form of an envelope without its signature. Every field but the payload is schema
 * checked to a character set that JSON.stringify leaves unescaped, so the members are emitted
 * directly in sorted order; the payload goes through the generic canonicalizer. A property
 * test checks this equals canonicalize() of the same object.
 */
export function canonicalEnvelopeBody (e: Omit<Envelope, 'sig'>, maxDepth = MAX_PAYLOAD_DEPTH): string {
  return '{"agent":"' + e.agent +
    '","ihsan":' + JSON.stringify(e.ihsan) +
    ',"nonce":"' + e.nonce +
    '","payload":' + canonicalize(e.payload, { maxDepth }) +
    ',"sender":"' + e.sender +
    '","snr":' + JSON.stringify(e.snr) +
    ',"ts":"' + e.ts +
    '","ttl":' + e.ttl +
    ',"type":"' + e.type +
    '","v":1}'
}

/** The BLAKE3 digest an envelope's signature covers. */
export function envelopeDigest (e: Omit<Envelope, 'sig'>): Uint8Array {
  return pciDigest(canonicalEnvelopeBody(e))
}

export class EnvelopeError extends Error {
  static override readonly name: string = 'EnvelopeError'
  override readonly name: string = 'EnvelopeError'
}

/** Creates and signs an envelope. Throws EnvelopeError for arguments that would not verify. */
export function createEnvelope<P> (identity: NodeIdentity, options: CreateEnvelopeOptions<P>): Envelope<P> {
  const envelope: Envelope<P> = {
    v: 1,
    type: options.type ?? 'message',
    sender: identity.id,
    agent: options.agent ?? 'USER',
    payload: options.payload,
    ts: new Date(options.now ?? Date.now()).toISOString(),
    ttl: options.ttl ?? DEFAULT_TTL_S,
    ihsan: options.ihsan ?? DEFAULT_CONSTITUTION.ihsan,
    snr: options.snr ?? DEFAULT_CONSTITUTION.snr,
    nonce: freshNonce(),
    sig: ''
  }
  // sender, ts and nonce are ours and well-formed by construction; check what the caller chose
  const problem = checkCallerFields(envelope, DEFAULT_CONSTITUTION.maxTtlS)
  if (problem !== undefined) throw new EnvelopeError(problem)
  let canonical: string
  try {
    canonical = canonicalEnvelopeBody(envelope)
  } catch (err) {
    throw new EnvelopeError(`payload: ${(err as Error).message}`)
  }
  // measured in UTF-8 bytes, as verifyEnvelope does, so that nothing created here is refused there
  if (canonical.length * 3 > MAX_ENVELOPE_BYTES && Buffer.byteLength(canonical) > MAX_ENVELOPE_BYTES) {
    throw new EnvelopeError(`envelope larger than ${MAX_ENVELOPE_BYTES} bytes`)
  }
  envelope.sig = Buffer.from(identity.sign(pciDigest(canonical))).toString('base64url')
  return envelope
}

export interface VerifyOptions {
  /** epoch ms (default Date.now()) */
  now?: number
  constitution?: Constitution
  /** replay cache to check and record nonces in; `false` to skip the replay check */
  replay?: ReplayCache | false
  maxBytes?: number
}

export type VerifyResult =
  | { ok: true, envelope: Envelope, digest: Uint8Array }
  | { ok: false, code: RejectCode, reason: string }

const reject = (code: RejectCode, reason: string): VerifyResult => ({ ok: false, code, reason })

/** Process-wide replay cache used when the caller does not pass its own. */
export const defaultReplayCache = new ReplayCache()

/**
 * Verifies an envelope in the DESIGN.md order: R005 schema and sizes, R001 TTL and clock
 * skew, R002 signature, R003 Ihsan, R004 SNR, R006 replay. Never throws: any input, however
 * malformed, yields a result with a code.
 */
export function verifyEnvelope (input: unknown, options: VerifyOptions = {}): VerifyResult {
  try {
    return verifyUnsafe(input, options)
  } catch (err) {
    return reject(RejectCode.MALFORMED_ENVELOPE, `unverifiable: ${(err as Error)?.message ?? String(err)}`)
  }
}

function verifyUnsafe (input: unknown, options: VerifyOptions): VerifyResult {
  const constitution = options.constitution ?? DEFAULT_CONSTITUTION
  const now = options.now ?? Date.now()

  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return reject(RejectCode.MALFORMED_ENVELOPE, 'envelope must be a JSON object')
  }
  const e = input as Envelope
  const keys = Object.keys(e)
  if (keys.length !== ENVELOPE_KEYS.length || !keys.every(k => ENVELOPE_KEYS.includes(k))) {
    const extra = keys.filter(k => !ENVELOPE_KEYS.includes(k))
    const missing = ENVELOPE_KEYS.filter(k => !(k in e))
    return reject(RejectCode.MALFORMED_ENVELOPE,
      missing.length > 0 ? `missing field(s): ${missing.join(', ')}` : `unknown field(s): ${extra.slice(0, 5).join(', ')}`)
  }
  const problem = checkFields(e, Math.min(constitution.maxTtlS, 3600))
  if (problem !== undefined) return reject(RejectCode.MALFORMED_ENVELOPE, problem)
  if (typeof e.sig !== 'string' || !SIG_RE.test(e.sig)) return reject(RejectCode.MALFORMED_ENVELOPE, 'sig must be a base64url Ed25519 signature')

  let canonical: string
  try {
    canonical = canonicalEnvelopeBody(e)
  } catch (err) {
    if (err instanceof CanonicalizationError) return reject(RejectCode.MALFORMED_ENVELOPE, `payload: ${err.message}`)
    throw err
  }
  const maxBytes = options.maxBytes ?? MAX_ENVELOPE_BYTES
  if (canonical.length * 3 > maxBytes && Buffer.byteLength(canonical) > maxBytes) {
    return reject(RejectCode.MALFORMED_ENVELOPE, `envelope larger than ${maxBytes} bytes`)
  }

  let publicKey
  try {
    publicKey = peerKeys.get(e.sender)
  } catch (err) {
    if (err instanceof PeerKeyError) return reject(RejectCode.MALFORMED_ENVELOPE, `sender: ${err.message}`)
    throw err
  }

  const issued = Date.parse(e.ts)
  const skewMs = constitution.clockSkewS * 1000
  if (issued > now + skewMs) return reject(RejectCode.TTL_EXPIRED, `ts ${e.ts} is beyond the ${constitution.clockSkewS} s clock skew`)
  const expiresAt = issued + e.ttl * 1000 + skewMs
  if (now > expiresAt) return reject(RejectCode.TTL_EXPIRED, `expired at ${new Date(issued + e.ttl * 1000).toISOString()}`)

  const digest = pciDigest(canonical)
  if (!verifyBytes(publicKey, digest, Buffer.from(e.sig, 'base64url'))) {
    return reject(RejectCode.INVALID_SIGNATURE, 'signature does not match sender and content')
  }
  if (e.ihsan < constitution.ihsan) return reject(RejectCode.IHSAN_BELOW_THRESHOLD, `ihsan ${e.ihsan} < ${constitution.ihsan}`)
  if (e.snr < constitution.snr) return reject(RejectCode.SNR_BELOW_THRESHOLD, `snr ${e.snr} < ${constitution.snr}`)

  const replay = options.replay ?? defaultReplayCache
  if (replay !== false && !recordNonce(e, replay, constitution, now)) return replayed(e)
  return { ok: true, envelope: e, digest }
}

/**
 * The R006 step alone, for an envelope whose other checks passed elsewhere (a worker thread:
 * verify-thread.ts): records its nonce until the envelope expires; false if it was seen already.
 */
export function recordNonce (e: Envelope, replay: ReplayCache, constitution: Constitution, now: number): boolean {
  const expiresAt = Date.parse(e.ts) + e.ttl * 1000 + constitution.clockSkewS * 1000
  return replay.checkAndAdd(e.sender + ':' + e.nonce, expiresAt, now)
}

export const replayed = (e: Envelope): VerifyResult => reject(RejectCode.REPLAY, `nonce ${e.nonce} already seen from this sender`)

/** Schema of a received envelope (all but sig); returns the first problem or undefined. */
function checkFields (e: Omit<Envelope, 'sig'>, maxTtl: number): string | undefined {
  if (e.v !== 1) return 'v must be 1'
  if (typeof e.sender !== 'string' || !PEER_ID_RE.test(e.sender)) return 'sender must be a base58 PeerId'
  if (typeof e.ts !== 'string' || !TS_RE.test(e.ts) || Number.isNaN(Date.parse(e.ts))) return 'ts must be an ISO-8601 timestamp'
  if (typeof e.nonce !== 'string' || !NONCE_RE.test(e.nonce)) return 'nonce must be 16 to 64 lowercase hex characters'
  return checkCallerFields(e, maxTtl)
}

/** The fields a creator chooses; checked on create and on verify. */
function checkCallerFields (e: Omit<Envelope, 'sig'>, maxTtl: number): string | undefined {
  if (typeof e.type !== 'string' || !TYPE_RE.test(e.type)) return 'type must match [a-z][a-z0-9._:/-]{0,63}'
  if (typeof e.agent !== 'string' || !(AGENTS as readonly string[]).includes(e.agent)) return `agent must be one of ${AGENTS.join(', ')}`
  if (typeof e.ttl !== 'number' || !Number.isInteger(e.ttl) || e.ttl < 1 || e.ttl > maxTtl) return `ttl must be an integer from 1 to ${maxTtl} seconds`
  if (typeof e.ihsan !== 'number' || !(e.ihsan >= 0 && e.ihsan <= 1)) return 'ihsan must be a number from 0 to 1'
  if (typeof e.snr !== 'number' || !(e.snr >= 0 && e.snr <= 1)) return 'snr must be a number from 0 to 1'
  if (e.payload === undefined) return 'payload is required'
  return undefined
}
