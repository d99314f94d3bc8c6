import { test, describe } from 'node:test'
import { mulberry32 } from '../helpers/random.ts'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js'
import canonicalizeRef from 'canonicalize'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  AGENTS, canonicalEnvelopeBody, createEnvelope, envelopeDigest, EnvelopeError, MAX_ENVELOPE_BYTES, MAX_PAYLOAD_DEPTH,
  verifyEnvelope, type Envelope, type VerifyOptions, type VerifyResult
} from '../../src/pci/envelope.ts'
import { canonicalize } from '../../src/pci/canonical.ts'
import { PCI_DOMAIN } from '../../src/pci/digest.ts'
import { RejectCode } from '../../src/pci/codes.ts'
import { ReplayCache } from '../../src/pci/replay.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { ed25519PublicKeyOf } from '../../src/identity/peer-key.ts'
import { publicKeyFromRaw, verifyBytes } from '../../src/identity/ed25519.ts'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest())


const NOW = Date.parse('2025-06-01T12:00:00.000Z')
const alice = await NodeIdentity.fromSeed(new Uint8Array(32).fill(1))
const bob = await NodeIdentity.fromSeed(new Uint8Array(32).fill(2))

type Loose = Record<string, unknown>

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Verifies at NOW with no replay check unless the options say otherwise. */
const check = (e: unknown, options: VerifyOptions = {}): VerifyResult =>
  verifyEnvelope(e, { now: NOW, replay: false, ...options })

function assertOk (r: VerifyResult, what = ''): void {
  assert.equal(r.ok, true, `${what} expected ok, got ${r.ok ? '' : `${r.code} ${r.reason}`}`)
}

function assertReject (r: VerifyResult, code: RejectCode, reason?: RegExp, what = ''): void {
  assert.equal(r.ok, false, `${what} expected ${code}, got ok`)
  if (r.ok) return
  assert.equal(r.code, code, `${what} expected ${code}, got ${r.code}: ${r.reason}`)
  assert.equal(typeof r.reason, 'string')
  assert.ok(r.reason.length > 0, 'a reject carries a reason')
  if (reason !== undefined) assert.match(r.reason, reason, what)
}

const withoutSig = (e: Envelope): Omit<Envelope, 'sig'> => {
  const { sig: _sig, ...body } = e
  return body
}

/** Signs a hand-built body as `identity` would. */
function signBody (identity: NodeIdentity, body: Omit<Envelope, 'sig'>): Envelope {
  return { ...body, sig: Buffer.from(identity.sign(envelopeDigest(body))).toString('base64url') }
}

const make = (options: Partial<Parameters<typeof createEnvelope>[1]> = {}): Envelope =>
  createEnvelope(alice, { payload: { hello: 'world', n: [1, 2, 3] }, now: NOW, ...options })

describe('createEnvelope / verifyEnvelope', () => {
  test('round trip', () => {
    const e = make()
    const r = verifyEnvelope(e, { now: NOW, replay: new ReplayCache() })
    assertOk(r)
    assert.ok(r.ok)
    assert.equal(r.envelope, e)
    assert.deepEqual(r.digest, envelopeDigest(withoutSig(e)))
    // survives the wire
    assertOk(check(JSON.parse(JSON.stringify(e))))
  })

  test('every field of the DESIGN format is present and well-formed', () => {
    const e = make()
    assert.deepEqual(Object.keys(e).sort(),
      ['agent', 'ihsan', 'nonce', 'payload', 'sender', 'sig', 'snr', 'ts', 'ttl', 'type', 'v'])
    assert.equal(e.v, 1)
    assert.equal(e.type, 'message')
    assert.equal(e.sender, alice.id)
    assert.equal(e.agent, 'USER')
    assert.deepEqual(e.payload, { hello: 'world', n: [1, 2, 3] })
    assert.equal(e.ts, new Date(NOW).toISOString())
    assert.equal(e.ttl, 300)
    assert.equal(e.ihsan, DEFAULT_CONSTITUTION.ihsan)
    assert.equal(e.snr, DEFAULT_CONSTITUTION.snr)
    assert.match(e.nonce, /^[0-9a-f]{32}$/)
    assert.match(e.sig, /^[A-Za-z0-9_-]{86}$/)
    const sigBytes = Buffer.from(e.sig, 'base64url')
    assert.equal(sigBytes.length, 64)
    assert.equal(sigBytes.toString('base64url'), e.sig)

    const custom = make({ type: 'vote', agent: 'SOVEREIGN', ttl: 3600, ihsan: 1, snr: 0.9 })
    assert.equal(custom.type, 'vote')
    assert.equal(custom.agent, 'SOVEREIGN')
    assert.equal(custom.ttl, 3600)
    assert.equal(custom.ihsan, 1)
    assert.equal(custom.snr, 0.9)
    assertOk(check(custom))
    for (const agent of AGENTS) assertOk(check(make({ agent })), agent)
  })

  test('nonces are unique', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 2000; i++) seen.add(make().nonce)
    assert.equal(seen.size, 2000)
  })

  test('createEnvelope refuses arguments that would not verify', () => {
    const bad: Array<Partial<Parameters<typeof createEnvelope>[1]>> = [
      { ttl: 0 }, { ttl: 3601 }, { ttl: 1.5 }, { ihsan: 1.1 }, { ihsan: Number.NaN }, { snr: -0.1 },
      { type: 'Bad Type' }, { type: '' }, { agent: 'ROBOT' as 'USER' },
      { payload: undefined }, { payload: '\ud800' }, { payload: { d: new Date(0) } }, { payload: Number.POSITIVE_INFINITY }
    ]
    for (const options of bad) {
      assert.throws(() => make(options), EnvelopeError, JSON.stringify(options))
    }
  })
})

describe('R002: signature', () => {
  test('a tampered payload or header field', () => {
    const e = make()
    const tampered: Loose[] = [
      { ...e, payload: { hello: 'world', n: [1, 2, 4] } },
      { ...e, payload: { hello: 'world', n: [1, 2, 3], extra: null } },
      { ...e, type: 'vote' },
      { ...e, agent: 'MODEL' },
      { ...e, ttl: 301 },
      { ...e, ts: new Date(NOW + 1).toISOString() },
      { ...e, nonce: e.nonce.replace(/^./, c => (c === '0' ? '1' : '0')) },
      { ...e, snr: 0.86 }
    ]
    for (const t of tampered) assertReject(check(t), RejectCode.INVALID_SIGNATURE, /signature/, JSON.stringify(t))
  })

  test('a tampered ihsan that still passes the threshold', () => {
    const e = make({ ihsan: 0.97 })
    assertOk(check(e))
    assertReject(check({ ...e, ihsan: 0.96 }), RejectCode.INVALID_SIGNATURE)
    assertReject(check({ ...e, ihsan: 1 }), RejectCode.INVALID_SIGNATURE)
  })

  test('a signature from another identity', () => {
    const e = make()
    // bob signs alice's envelope body
    const bobSig = Buffer.from(bob.sign(envelopeDigest(withoutSig(e)))).toString('base64url')
    assertReject(check({ ...e, sig: bobSig }), RejectCode.INVALID_SIGNATURE)
    // alice's signature presented as bob's envelope
    assertReject(check({ ...e, sender: bob.id }), RejectCode.INVALID_SIGNATURE)
    // bob's own envelope's signature on alice's
    const be = createEnvelope(bob, { payload: e.payload, now: NOW })
    assertReject(check({ ...e, sig: be.sig }), RejectCode.INVALID_SIGNATURE)
  })

  test('a flipped signature bit', () => {
    const e = make()
    const bytes = Buffer.from(e.sig, 'base64url')
    for (const i of [0, 31, 32, 63]) {
      const b = Buffer.from(bytes)
      b[i] = b[i]! ^ 1
      assertReject(check({ ...e, sig: b.toString('base64url') }), RejectCode.INVALID_SIGNATURE, undefined, `byte ${i}`)
    }
  })

  test('each signature has exactly one spelling (padding bits of the last character are zero)', () => {
    const e = make()
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const verifying = [...alphabet].filter(c => check({ ...e, sig: e.sig.slice(0, -1) + c }).ok)
    assert.deepEqual(verifying, [e.sig.at(-1)])
  })
})

describe('R001: time', () => {
  const e = make({ ttl: 60 })
  const ts = Date.parse(e.ts)

  test('expired: ts + ttl + 31 s', () => {
    assertReject(check(e, { now: ts + 60_000 + 31_000 }), RejectCode.TTL_EXPIRED, /expired/)
    assertReject(check(e, { now: ts + 3_600_000 }), RejectCode.TTL_EXPIRED)
  })

  test('within ttl + skew is still ok', () => {
    assertOk(check(e, { now: ts + 60_000 }))
    assertOk(check(e, { now: ts + 60_000 + 29_000 }))
    assertOk(check(e, { now: ts + 60_000 + 30_000 }))
  })

  test('ts beyond the clock skew is refused, within it accepted', () => {
    assertReject(check(make({ now: NOW + 31_000 })), RejectCode.TTL_EXPIRED, /clock skew/)
    assertReject(check(make({ now: NOW + 3_600_000 })), RejectCode.TTL_EXPIRED)
    assertOk(check(make({ now: NOW + 30_000 })))
    assertOk(check(make({ now: NOW + 29_000 })))
    assertOk(check(make({ now: NOW - 1000 })))
  })

  test('a timestamp with a UTC offset is read as that instant', () => {
    const body = { ...withoutSig(make({ ttl: 60 })), ts: '2025-06-01T14:00:00+02:00' }
    const signed = signBody(alice, body)
    assertOk(check(signed))
    assertReject(check(signed, { now: NOW + 91_000 }), RejectCode.TTL_EXPIRED)
  })

  test('R001 comes before R002', () => {
    assertReject(check({ ...e, sig: make().sig }, { now: ts + 200_000 }), RejectCode.TTL_EXPIRED)
  })
})

describe('R003 / R004: declared scores', () => {
  test('ihsan 0.9 -> R003', () => {
    assertReject(check(make({ ihsan: 0.9 })), RejectCode.IHSAN_BELOW_THRESHOLD, /ihsan/)
  })

  test('snr 0.5 -> R004', () => {
    assertReject(check(make({ snr: 0.5 })), RejectCode.SNR_BELOW_THRESHOLD, /snr/)
  })

  test('Ihsan is checked before SNR', () => {
    assertReject(check(make({ ihsan: 0.5, snr: 0.1 })), RejectCode.IHSAN_BELOW_THRESHOLD)
  })

  test('exactly at the thresholds passes; the constitution sets them', () => {
    assertOk(check(make({ ihsan: 0.95, snr: 0.85 })))
    const lenient = { ...DEFAULT_CONSTITUTION, ihsan: 0.5, snr: 0.4 }
    assertOk(check(make({ ihsan: 0.9, snr: 0.5 }), { constitution: lenient }))
  })

  test('a bad signature is reported before low scores', () => {
    const e = make({ ihsan: 0.1 })
    assertReject(check({ ...e, payload: 'changed' }), RejectCode.INVALID_SIGNATURE)
  })
})

describe('R006: replay', () => {
  test('the same envelope twice in one cache -> R006; another cache -> ok', () => {
    const e = make()
    const cache = new ReplayCache()
    assertOk(check(e, { replay: cache }))
    assertReject(check(e, { replay: cache }), RejectCode.REPLAY, new RegExp(e.nonce))
    assertReject(check(JSON.parse(JSON.stringify(e)), { replay: cache }), RejectCode.REPLAY)
    assertOk(check(e, { replay: new ReplayCache() }))
  })

  test('replay: false skips the check', () => {
    const e = make()
    for (let i = 0; i < 3; i++) assertOk(check(e, { replay: false }))
  })

  test('without a replay option the process-wide cache is used', () => {
    const e = make()
    assertOk(verifyEnvelope(e, { now: NOW }))
    assertReject(verifyEnvelope(e, { now: NOW }), RejectCode.REPLAY)
  })

  test('after the envelope expires, the nonce no longer blocks (the TTL check does)', () => {
    const e = make({ ttl: 10 })
    const cache = new ReplayCache()
    assertOk(check(e, { replay: cache }))
    assertReject(check(e, { replay: cache, now: NOW + 41_000 }), RejectCode.TTL_EXPIRED)
  })

  test('a forged envelope does not poison the replay cache', () => {
    const cache = new ReplayCache()
    const first = make()
    // a genuine second envelope reusing first's nonce with a different payload, built by hand
    const genuine = signBody(alice, { ...withoutSig(first), payload: { other: true } })
    assert.equal(genuine.nonce, first.nonce)
    const sigBytes = Buffer.from(genuine.sig, 'base64url')
    sigBytes[5] = sigBytes[5]! ^ 0x80
    const forged = { ...genuine, sig: sigBytes.toString('base64url') }
    const bobSigned = { ...genuine, sig: Buffer.from(bob.sign(envelopeDigest(withoutSig(genuine)))).toString('base64url') }

    assertReject(check(forged, { replay: cache }), RejectCode.INVALID_SIGNATURE)
    assertReject(check(bobSigned, { replay: cache }), RejectCode.INVALID_SIGNATURE)
    assertReject(check({ ...genuine, ihsan: 0.1 }, { replay: cache }), RejectCode.INVALID_SIGNATURE)
    assert.equal(cache.size, 0)
    assertOk(check(genuine, { replay: cache }))
    // the nonce is now taken for this sender, whatever the payload
    assertReject(check(first, { replay: cache }), RejectCode.REPLAY)
    assertReject(check(genuine, { replay: cache }), RejectCode.REPLAY)
  })

  test('rejected-for-score and expired envelopes do not take the nonce either', () => {
    const cache = new ReplayCache()
    const low = make({ ihsan: 0.5 })
    assertReject(check(low, { replay: cache }), RejectCode.IHSAN_BELOW_THRESHOLD)
    const old = make({ ttl: 1 })
    assertReject(check(old, { replay: cache, now: NOW + 40_000 }), RejectCode.TTL_EXPIRED)
    assert.equal(cache.size, 0)
  })

  test('the same nonce from two senders is not a replay', () => {
    const cache = new ReplayCache()
    const a = make()
    const b = signBody(bob, { ...withoutSig(a), sender: bob.id })
    assertOk(check(a, { replay: cache }))
    assertOk(check(b, { replay: cache }))
  })
})

describe('R005: malformed', () => {
  const e = make()
  const R005 = (input: unknown, reason?: RegExp, what = ''): void =>
    assertReject(check(input), RejectCode.MALFORMED_ENVELOPE, reason, what)

  test('not an object', () => {
    for (const v of [null, undefined, 42, 'envelope', true, [], [e]]) R005(v, /JSON object/, String(v))
  })

  test('missing field, extra field', () => {
    for (const k of Object.keys(e)) {
      const copy: Loose = { ...e }
      delete copy[k]
      R005(copy, new RegExp(`missing field\\(s\\): ${k}`), k)
    }
    R005({ ...e, extra: 1 }, /unknown field\(s\): extra/)
    R005({ ...e, Sig: e.sig }, /unknown field/)
    const swapped: Loose = { ...e, signature: e.sig }
    delete swapped.sig
    R005(swapped, /missing field\(s\): sig/)
    R005(JSON.parse(JSON.stringify(e).replace(/^\{/, '{"__proto__":{"x":1},')), /unknown field\(s\): __proto__/)
    R005({}, /missing/)
  })

  test('wrong types', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['v', 2, /^v must be 1/],
      ['v', '1', /^v must be 1/],
      ['type', 5, /^type/],
      ['type', 'Not Valid', /^type/],
      ['type', 'x'.repeat(65), /^type/],
      ['agent', 'ROBOT', /^agent/],
      ['agent', null, /^agent/],
      ['payload', undefined, /payload/],
      ['ts', NOW, /^ts/],
      ['ts', 'yesterday', /^ts/],
      ['ts', '2025-06-01', /^ts/],
      ['ts', '2025-06-01T12:00:00', /^ts/],
      ['ts', '2025-06-01 12:00:00Z', /^ts/],
      ['ts', '2025-13-45T99:99:99Z', /^ts/],
      ['ttl', '300', /^ttl/],
      ['ttl', 0, /^ttl/],
      ['ttl', 3601, /^ttl/],
      ['ttl', 1.5, /^ttl/],
      ['ttl', -5, /^ttl/],
      ['ttl', Number.NaN, /^ttl/],
      ['ihsan', '0.99', /^ihsan/],
      ['ihsan', 1.01, /^ihsan/],
      ['ihsan', -0.01, /^ihsan/],
      ['ihsan', Number.NaN, /^ihsan/],
      ['ihsan', null, /^ihsan/],
      ['snr', Number.POSITIVE_INFINITY, /^snr/],
      ['snr', [0.9], /^snr/],
      ['nonce', 42, /^nonce/],
      ['nonce', e.nonce.toUpperCase(), /^nonce/],
      ['nonce', e.nonce + '0', /^nonce/],
      ['nonce', 'ab'.repeat(7), /^nonce/],
      ['nonce', 'ab'.repeat(33), /^nonce/],
      ['nonce', 'zz'.repeat(16), /^nonce/],
      ['sig', 42, /^sig/],
      ['sig', '', /^sig/],
      ['sig', e.sig.slice(1), /^sig/],
      ['sig', e.sig + 'A', /^sig/],
      ['sig', e.sig.slice(0, -2) + '==', /^sig/],
      ['sig', Buffer.from(e.sig, 'base64url').toString('base64'), /^sig/],
      ['sig', e.sig.slice(0, -1) + 'h', /^sig/]
    ]
    for (const [field, value, reason] of cases) {
      R005({ ...e, [field]: value }, reason, `${field}=${String(value)}`)
    }
  })

  test('non-Ed25519 or garbage sender', async () => {
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString()
    const rsa = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'
    for (const sender of [secp, rsa]) {
      R005(signBody(alice, { ...withoutSig(e), sender }), /^sender: .*not Ed25519/, sender)
    }
    const garbage: unknown[] = [
      'hello', '', 42, null, alice.id.slice(0, 30), alice.id + '0', alice.id.replace(/.$/, 'l'),
      '1'.repeat(60), 'z'.repeat(60), 'Q'.repeat(46), alice.id + alice.id.slice(2, 10), 'x'.repeat(200)
    ]
    for (const sender of garbage) {
      R005({ ...e, sender }, /sender/, String(sender))
    }
  })

  test('oversized payload (> 1 MiB)', () => {
    const body = { ...withoutSig(e), payload: 'x'.repeat(MAX_ENVELOPE_BYTES) }
    R005(signBody(alice, body), /larger than/)
    // UTF-8 bytes count, not characters: 400k euro signs are 1.2 MB
    const wide = { ...withoutSig(e), payload: '\u20ac'.repeat(400_000) }
    R005(signBody(alice, wide), /larger than/)
    assert.throws(() => make({ payload: 'x'.repeat(MAX_ENVELOPE_BYTES) }), EnvelopeError)
    assert.throws(() => make({ payload: '\u20ac'.repeat(400_000) }), /larger than/)
    // a smaller limit from the caller
    assertReject(check(e, { maxBytes: 100 }), RejectCode.MALFORMED_ENVELOPE, /larger than 100 bytes/)
    // just under the limit is fine
    const big = make({ payload: 'y'.repeat(MAX_ENVELOPE_BYTES - 1000) })
    assertOk(check(big))
  })

  test('payloads that are not I-JSON or too deep', () => {
    const nest = (n: number): unknown => {
      let v: unknown = 1
      for (let i = 0; i < n; i++) v = [v]
      return v
    }
    assertOk(check(make({ payload: nest(MAX_PAYLOAD_DEPTH) })))
    assert.throws(() => make({ payload: nest(MAX_PAYLOAD_DEPTH + 1) }), EnvelopeError)
    const body = withoutSig(e)
    for (const payload of [nest(MAX_PAYLOAD_DEPTH + 1), nest(100), '\ud800', { '\udfff': 1 }, [Number.NaN], { d: new Date(0) }, new Map()]) {
      R005({ ...body, sig: e.sig, payload }, /^payload: /)
    }
  })

  test('a throwing getter or proxy is R005, never a throw', () => {
    const getter = { ...e }
    Object.defineProperty(getter, 'payload', { enumerable: true, get () { throw new Error('boom') } })
    R005(getter, /unverifiable/)
    const proxy = new Proxy({ ...e }, { ownKeys () { throw new Error('no keys') } })
    R005(proxy, /unverifiable/)
  })
})

// ---------------------------------------------------------------------------------------------

function randomJson (rnd: () => number, depth = 0): unknown {
  const int = (n: number): number => Math.floor(rnd() * n)
  const str = (): string => {
    let s = ''
    const n = int(8)
    for (let i = 0; i < n; i++) {
      const k = int(5)
      s += k === 0 ? String.fromCharCode(int(0x20)) : k === 1 ? String.fromCodePoint(0x10000 + int(0xfffff)) : k === 2 ? String.fromCharCode(0x80 + int(0xd700)) : String.fromCharCode(0x20 + int(0x5f))
    }
    return s
  }
  switch (depth >= 4 ? int(4) : int(6)) {
    case 0: return null
    case 1: return rnd() < 0.5
    case 2: return int(3) === 0 ? int(1e6) - 5e5 : (rnd() - 0.5) * 10 ** (int(50) - 25)
    case 3: return str()
    case 4: {
      const o: Loose = {}
      const n = int(6)
      for (let i = 0; i < n; i++) o[int(4) === 0 ? String(int(50)) : str()] = randomJson(rnd, depth + 1)
      return o
    }
    default: return Array.from({ length: int(5) }, () => randomJson(rnd, depth + 1))
  }
}

describe('canonical form and digest', () => {
  const SEED = 0xb12a
  test(`canonicalEnvelopeBody equals canonicalize() for random envelopes (seed ${SEED})`, () => {
    const rnd = mulberry32(SEED)
    const types = ['message', 'vote', 'task', 'a.b:c/d-e_0']
    const tss = ['2025-06-01T12:00:00.000Z', '2025-06-01T12:00:00Z', '2025-06-01T14:00:00.123456789+02:00', '1999-12-31T23:59:59.9-05:30']
    for (let i = 0; i < 500; i++) {
      const body: Omit<Envelope, 'sig'> = {
        v: 1,
        type: types[Math.floor(rnd() * types.length)]!,
        sender: rnd() < 0.5 ? alice.id : bob.id,
        agent: AGENTS[Math.floor(rnd() * AGENTS.length)]!,
        payload: randomJson(rnd),
        ts: tss[Math.floor(rnd() * tss.length)]!,
        ttl: 1 + Math.floor(rnd() * 3600),
        ihsan: [0, 1, rnd(), 5e-7, 1e-21, 0.95][Math.floor(rnd() * 6)]!,
        snr: [0, 1, rnd(), 1e-7, 0.85][Math.floor(rnd() * 5)]!,
        nonce: Buffer.from(Array.from({ length: 16 }, () => Math.floor(rnd() * 256))).toString('hex')
      }
      const expected = canonicalize(body)
      assert.equal(canonicalEnvelopeBody(body), expected, `seed ${SEED}, case ${i}`)
      assert.equal(canonicalizeRef(body), expected, `seed ${SEED}, case ${i}`)
    }
  })

  test('created envelopes: canonical body, digest and signature are computed as DESIGN says', () => {
    const rnd = mulberry32(SEED + 1)
    const encoder = new TextEncoder()
    for (let i = 0; i < 100; i++) {
      const e = make({ payload: randomJson(rnd), ihsan: 0.95 + rnd() * 0.05, snr: 0.85 + rnd() * 0.15 })
      const canonical = canonicalize(withoutSig(e))
      assert.equal(canonicalEnvelopeBody(withoutSig(e)), canonical)
      const digest = nobleBlake3(encoder.encode('bizra-pci-v1:' + canonical))
      assert.equal(PCI_DOMAIN, 'bizra-pci-v1:')
      assert.deepEqual(envelopeDigest(withoutSig(e)), digest)
      const r = check(e)
      assert.ok(r.ok, `case ${i}: ${r.ok ? '' : r.reason}`)
      assert.deepEqual(r.digest, digest)
      assert.ok(ed.verify(Buffer.from(e.sig, 'base64url'), digest, alice.publicKey), `case ${i}`)
    }
  })
})

describe('@noble/ed25519 cross-checks node:crypto', () => {
  test('50 seeded identities: same public key, byte-identical signatures, mutual verification', async () => {
    const SEED = 0xed25519
    const rnd = mulberry32(SEED)
    for (let i = 0; i < 50; i++) {
      const seed = new Uint8Array(Array.from({ length: 32 }, () => Math.floor(rnd() * 256)))
      const id = await NodeIdentity.fromSeed(seed)
      const nobleKey = ed.getPublicKey(seed)
      assert.equal(hex(nobleKey), hex(id.publicKey), `seed #${i}`)
      assert.equal(hex(ed25519PublicKeyOf(id.id)), hex(id.publicKey), 'the PeerId embeds the public key')
      assert.equal(hex(id.peerId.publicKey!.raw), hex(id.publicKey))

      const e = createEnvelope(id, { payload: { i, r: rnd() }, now: NOW })
      const digest = envelopeDigest(withoutSig(e))
      const nodeSig = id.sign(digest)
      const nobleSig = ed.sign(digest, seed)
      assert.equal(hex(nobleSig), hex(nodeSig), `seed #${i}: signatures differ`)
      assert.equal(Buffer.from(e.sig, 'base64url').toString('hex'), hex(nobleSig), `seed #${i}: envelope sig`)
      assert.ok(ed.verify(nodeSig, digest, nobleKey), `seed #${i}: noble verifies node:crypto`)
      assert.ok(verifyBytes(publicKeyFromRaw(id.publicKey), digest, nobleSig), `seed #${i}: node:crypto verifies noble`)
      assert.ok(id.verify(digest, nobleSig))
      // and an envelope signed by noble verifies as a PCI envelope
      const body = withoutSig(e)
      assertOk(check({ ...body, sig: Buffer.from(ed.sign(envelopeDigest(body), seed)).toString('base64url') }), `seed #${i}`)
      // a wrong message fails both ways
      const other = new Uint8Array(digest)
      other[0] = other[0]! ^ 1
      assert.equal(ed.verify(nodeSig, other, nobleKey), false)
      assert.equal(verifyBytes(publicKeyFromRaw(id.publicKey), other, nobleSig), false)
    }
  })
})
