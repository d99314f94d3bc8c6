/**
 * Fuzz: random and mutated envelopes into verifyEnvelope. It must never throw, must always
 * answer ok:true or ok:false with a code R001..R006 and a reason, and may only accept an input
 * that is exactly a validly signed envelope. Reproduce a failure with BIZRA_FUZZ_SEED=<seed>.
 */
import { mulberry32 } from '../helpers/random.ts'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  AGENTS, createEnvelope, envelopeDigest, MAX_ENVELOPE_BYTES, verifyEnvelope, type Envelope, type VerifyResult
} from '../../src/pci/envelope.ts'
import { canonicalize } from '../../src/pci/canonical.ts'
import { ReplayCache } from '../../src/pci/replay.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'

const SEED = Number(process.env.BIZRA_FUZZ_SEED ?? 0x5eed) >>> 0
const CASES = 6000
const NOW = Date.parse('2025-06-01T12:00:00.000Z')
const CODES = ['R001', 'R002', 'R003', 'R004', 'R005', 'R006'] as const
const FIELDS = ['v', 'type', 'sender', 'agent', 'payload', 'ts', 'ttl', 'ihsan', 'snr', 'nonce', 'sig'] as const

type Loose = Record<string, unknown>


const identities = await Promise.all([1, 2, 3].map(async b => await NodeIdentity.fromSeed(new Uint8Array(32).fill(b))))

test(`verifyEnvelope survives ${CASES} random and mutated envelopes (seed ${SEED})`, (t) => {
  const rnd = mulberry32(SEED)
  const int = (n: number): number => Math.floor(rnd() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const chance = (p: number): boolean => rnd() < p

  const nest = (n: number, wrap: (v: unknown) => unknown): unknown => {
    let v: unknown = 0
    for (let i = 0; i < n; i++) v = wrap(v)
    return v
  }

  const weirdChar = (): string => pick([
    'A', 'z', '0', '9', '-', '_', '=', '+', '/', ' ', '.', ':', 'O', 'l', 'I', '\u0000', '\n', '"', '\\',
    '\u00e9', '\u20ac', '\ud800', '\udc00', '\ud83d\ude00', 'Z', 'T', 'f', 'F'
  ])

  const randomString = (): string => {
    let s = ''
    const n = int(12)
    for (let i = 0; i < n; i++) s += chance(0.5) ? String.fromCharCode(0x20 + int(0x5f)) : weirdChar()
    return s
  }

  const plainJson = (depth = 0): unknown => {
    switch (depth > 3 ? int(4) : int(6)) {
      case 0: return null
      case 1: return chance(0.5)
      case 2: return chance(0.5) ? int(1000) : (rnd() - 0.5) * 10 ** (int(30) - 15)
      case 3: return randomString().replace(/[\ud800-\udfff]/g, 'x')
      case 4: {
        const o: Loose = {}
        for (let i = 0, n = int(5); i < n; i++) o[`k${int(20)}`] = plainJson(depth + 1)
        return o
      }
      default: return Array.from({ length: int(4) }, () => plainJson(depth + 1))
    }
  }

  const weirdValue = (): unknown => {
    switch (int(24)) {
      case 0: return nest(100, v => [v])
      case 1: return nest(40, v => ({ a: v }))
      case 2: return nest(33, v => [v])
      case 3: return JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}')
      case 4: return JSON.parse('[{"__proto__":null},{"__proto__":[1,2]}]')
      case 5: return '\ud800'
      case 6: return { ['\udc00' + randomString()]: 1 }
      case 7: return Number.NaN
      case 8: return pick([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 5e-324, Number.MAX_VALUE])
      case 9: return String(int(10_000))
      case 10: return null
      case 11: return []
      case 12: return randomString()
      case 13: return pick([new Date(0), new Map([[1, 2]]), new Set([1]), /x/, new Uint8Array(3), Buffer.from('hi')])
      case 14: return pick([1n, Symbol('s'), () => 1, undefined])
      case 15: {
        const cyclic: Loose = { a: 1 }
        cyclic.self = cyclic
        return cyclic
      }
      case 16: {
        const sparse: unknown[] = [1]
        sparse[5] = 2
        return sparse
      }
      case 17: return chance(0.15) ? 'x'.repeat(MAX_ENVELOPE_BYTES + int(1000)) : 'x'.repeat(int(5000))
      case 18: return chance(0.15) ? '\u20ac'.repeat(350_000 + int(10_000)) : '\u20ac'.repeat(int(5000))
      case 19: return Array.from({ length: int(2000) }, () => rnd())
      case 20: return Object.create(null) as unknown
      case 21: return { toJSON: () => 'sneaky' }
      default: return plainJson()
    }
  }

  // -- valid envelopes to start from ----------------------------------------------------------
  const baseEnvelope = (): Envelope => {
    const identity = pick(identities)
    const low = int(10)
    return createEnvelope(identity, {
      payload: plainJson(),
      type: pick(['message', 'vote', 'task', 'a2a/task.v1']),
      agent: pick(AGENTS),
      ttl: 1 + int(3600),
      ihsan: low === 0 ? rnd() * 0.95 : 0.95 + rnd() * 0.05,
      snr: low === 1 ? rnd() * 0.85 : 0.85 + rnd() * 0.15,
      now: NOW - int(60_000)
    })
  }

  const tryResign = (o: Loose): boolean => {
    const identity = identities.find(id => id.id === o.sender)
    if (identity === undefined) return false
    try {
      const { sig: _sig, ...body } = o
      o.sig = Buffer.from(identity.sign(envelopeDigest(body as Omit<Envelope, 'sig'>))).toString('base64url')
      return true
    } catch {
      return false
    }
  }

  const safeString = (v: unknown): string => {
    try { return String(v) } catch { return '[unprintable]' }
  }

  const flipChars = (s: string): string => {
    if (s.length === 0) return weirdChar()
    const chars = [...s]
    for (let k = 0, n = 1 + int(2); k < n; k++) {
      const i = int(chars.length)
      switch (int(4)) {
        case 0: chars[i] = weirdChar(); break
        case 1: chars.splice(i, 1); break
        case 2: chars.splice(i, 0, weirdChar()); break
        default: chars[i] = (chars[i] ?? 'a').toUpperCase() === chars[i] ? (chars[i] ?? 'a').toLowerCase() : (chars[i] ?? 'a').toUpperCase()
      }
    }
    return chars.join('')
  }

  /** Applies one mutation in place; returns its name. */
  const mutate = (o: Loose, donors: Envelope[]): string => {
    const field = pick(FIELDS)
    switch (int(11)) {
      case 0: delete o[field]; return `delete ${field}`
      case 1: {
        const name = pick(['extra', 'Sig', 'signature', 'V', '', 'payload ', '__proto__', 'constructor', randomString()])
        if (name === '__proto__') {
          // an own "__proto__" member, as JSON.parse creates one (plain assignment would set the prototype)
          Object.defineProperty(o, '__proto__', { value: JSON.parse('{"v":1}'), enumerable: true, configurable: true, writable: true })
        } else {
          o[name] = weirdValue()
        }
        return `add ${JSON.stringify(name)}`
      }
      case 2: {
        const old = o[field]
        o[field] = pick<unknown>([
          typeof old === 'number' ? String(old) : typeof old === 'string' ? Number(old) : 0,
          null, [], {}, [old], true, Number.NaN, -1, 1.5, '', safeString(old), undefined
        ])
        return `retype ${field}`
      }
      case 3: {
        if (chance(0.2) && typeof o.sig === 'string') {
          // respell the last character, whose low 4 bits are base64 padding
          o.sig = o.sig.slice(0, -1) + pick([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'])
          return 'respell sig tail'
        }
        const f = pick(['sig', 'nonce', 'sender', 'ts', 'type', 'agent'] as const)
        o[f] = flipChars(safeString(o[f]))
        return `flip ${f}`
      }
      case 4: o.payload = weirdValue(); return 'weird payload'
      case 5: o.sender = pick(identities).id; return 'swap sender'
      case 6: o.sig = pick(donors).sig; return 'donor sig'
      case 7: o.nonce = pick(donors).nonce; return 'donor nonce'
      case 8: {
        const f = pick(['ihsan', 'snr', 'ttl', 'v'] as const)
        o[f] = pick([0, 0.5, 0.9, 0.95, 1, 2, -0, 1e-300, 3600, 3601, 60])
        return `renumber ${f}`
      }
      case 9: {
        o.ts = new Date(NOW + pick([-7_200_000, -3_700_000, -31_000, 0, 29_000, 31_000, 3_600_000, 1e12])).toISOString()
        return 'shift ts'
      }
      default: {
        // a field changed and then properly signed again: only time and scores can fail now
        const f = pick(['ts', 'ihsan', 'snr', 'ttl', 'payload'] as const)
        if (f === 'ts') o.ts = new Date(NOW + (rnd() - 0.5) * 8_000_000).toISOString()
        else if (f === 'ttl') o.ttl = 1 + int(3600)
        else if (f === 'payload') o.payload = chance(0.5) ? weirdValue() : plainJson()
        else o[f] = rnd()
        return tryResign(o) ? `resigned ${f}` : `resign failed ${f}`
      }
    }
  }

  const randomBytesAsJson = (): { input: unknown, desc: string } => {
    const alphabet = '{}[]":,0123456789.-+eEtrufalsn \\u\n'
    const bytes = new Uint8Array(int(64))
    for (let i = 0; i < bytes.length; i++) bytes[i] = chance(0.7) ? alphabet.charCodeAt(int(alphabet.length)) : int(256)
    const text = new TextDecoder().decode(bytes)
    try {
      return { input: JSON.parse(text), desc: 'random bytes (parsed)' }
    } catch {
      return { input: text, desc: 'random bytes (string)' }
    }
  }

  const corruptedJsonText = (e: Envelope): { input: unknown, desc: string } => {
    const bytes = Buffer.from(JSON.stringify(e))
    for (let k = 0, n = 1 + int(3); k < n; k++) bytes[int(bytes.length)] = chance(0.5) ? int(256) : bytes[int(bytes.length)]!
    const text = bytes.toString('utf8')
    try {
      return { input: JSON.parse(text), desc: 'flipped JSON bytes (parsed)' }
    } catch {
      return { input: text, desc: 'flipped JSON bytes (string)' }
    }
  }

  // -- the run ---------------------------------------------------------------------------------
  const counts: Record<string, number> = { ok: 0 }
  for (const c of CODES) counts[c] = 0
  const shared = new ReplayCache(10_000)
  const accepted: Envelope[] = []
  const donors: Envelope[] = Array.from({ length: 8 }, baseEnvelope)

  for (let i = 0; i < CASES; i++) {
    let input: unknown
    let desc: string
    /** the validly signed object the input came from; an accepted input must equal it */
    let signed: Loose | undefined
    const kind = int(20)
    if (kind < 12) {
      const base = baseEnvelope()
      if (chance(0.2)) donors[int(donors.length)] = base
      const o: Loose = { ...base }
      signed = { ...base }
      const steps: string[] = []
      for (let k = 0, n = int(4); k < n; k++) {
        const step = mutate(o, donors)
        steps.push(step)
        if (step.startsWith('resigned')) signed = { ...o }
      }
      input = o
      desc = steps.length === 0 ? 'valid' : steps.join(' > ')
    } else if (kind < 14 && accepted.length > 0) {
      const e = pick(accepted)
      input = chance(0.5) ? e : JSON.parse(JSON.stringify(e))
      signed = { ...e }
      desc = 'replay of an accepted envelope'
    } else if (kind < 16) {
      const base = baseEnvelope()
      signed = { ...base }
      ;({ input, desc } = corruptedJsonText(base))
    } else if (kind < 18) {
      ({ input, desc } = randomBytesAsJson())
    } else {
      input = weirdValue()
      desc = 'random value'
    }

    const now = chance(0.9) ? NOW : NOW + pick([-120_000, 3_000_000, 4_000_000, 8_000_000])
    const replay = desc.startsWith('replay') || chance(0.5) ? shared : chance(0.5) ? false : new ReplayCache()
    const where = `seed ${SEED} (BIZRA_FUZZ_SEED=${SEED}), case ${i}: ${desc}`

    let before: string | undefined
    try { before = canonicalize(input) } catch { before = undefined }

    let r: VerifyResult
    try {
      r = verifyEnvelope(input, { now, replay })
    } catch (err) {
      assert.fail(`verifyEnvelope threw (${where}): ${(err as Error)?.stack ?? String(err)}`)
    }

    if (r.ok) {
      counts.ok!++
      assert.ok(r.digest instanceof Uint8Array && r.digest.length === 32, where)
      assert.equal(r.envelope, input, where)
      assert.ok(signed !== undefined, `accepted an input that was never signed (${where})`)
      assert.equal(canonicalize(input), canonicalize(signed), `accepted an altered envelope (${where})`)
      if (replay === shared) accepted.push(r.envelope)
    } else {
      assert.ok((CODES as readonly string[]).includes(r.code), `unknown code ${String(r.code)} (${where})`)
      assert.equal(typeof r.reason, 'string', where)
      assert.ok(r.reason.length > 0, `empty reason (${where})`)
      counts[r.code]!++
    }
    if (before !== undefined) assert.equal(canonicalize(input), before, `verifyEnvelope changed its input (${where})`)
  }

  const summary = `seed ${SEED}: ${JSON.stringify(counts)}`
  t.diagnostic(summary)
  assert.ok(counts.ok! > 0, `no envelope was accepted (${summary})`)
  for (const code of CODES) assert.ok(counts[code]! > 0, `${code} was never produced (${summary})`)
  assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), CASES, summary)
})
