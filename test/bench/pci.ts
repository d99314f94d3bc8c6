/**
 * npm run bench:pci — what the envelope costs over a bare signature, on one 256-byte payload:
 * raw node:crypto Ed25519 sign/verify of the payload bytes, envelope create/verify around the
 * same payload, and gate-chain checks of it. Last line: one JSON object.
 */
import { sign, verify } from 'node:crypto'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { privateKeyFromSeed, publicKeyFromRaw } from '../../src/identity/ed25519.ts'
import { createEnvelope, verifyEnvelope, type Envelope } from '../../src/pci/envelope.ts'
import { ReplayCache } from '../../src/pci/replay.ts'
import { canonicalize } from '../../src/pci/canonical.ts'
import { checkEnvelopeGates } from '../../src/governance/gates.ts'
import { compare } from './harness.ts'

const seed = new Uint8Array(32).fill(7)
const identity = await NodeIdentity.fromSeed(seed)
const privateKey = privateKeyFromSeed(seed)
const publicKey = publicKeyFromRaw(identity.publicKey)

// A realistic 256-byte payload: a pattern observation as a node would gossip it.
const payload: Record<string, unknown> = {
  kind: 'observation',
  region: 'eu-west',
  pattern: 'mesh-degree-stable',
  text: '',
  metrics: { p50Ms: 8.5, p99Ms: 31, peers: 42 }
}
const filler = 'Gossip mesh held degree six through three heartbeats; no partitions, validators in agreement, commit latency within budget and rising slowly.'
payload.text = filler.slice(0, 256 - canonicalize(payload).length)
const payloadBytes = Buffer.from(canonicalize(payload))
if (payloadBytes.length !== 256) throw new Error(`payload is ${payloadBytes.length} bytes, expected 256`)

const rawSig = sign(null, payloadBytes, privateKey)
const POOL = 1 << 14
const envelopes: Envelope[] = Array.from({ length: POOL }, () => createEnvelope(identity, { payload, ihsan: 0.97, snr: 0.9 }))
let replay = new ReplayCache(POOL * 2)
const gateTarget = envelopes[0]!

const ms = Number(process.env.BENCH_MS ?? 400)
const result = compare({
  rawSign: () => sign(null, payloadBytes, privateKey),
  rawVerify: () => verify(null, payloadBytes, publicKey, rawSig),
  create: () => createEnvelope(identity, { payload, ihsan: 0.97, snr: 0.9 }),
  verify: (i) => {
    const k = i & (POOL - 1)
    if (k === 0) replay = new ReplayCache(POOL * 2) // each envelope is new to the cache it meets
    const r = verifyEnvelope(envelopes[k], { replay })
    if (!r.ok) throw new Error(`bench envelope rejected: ${r.code} ${r.reason}`)
  },
  gates: () => {
    if (!checkEnvelopeGates(gateTarget).passed) throw new Error('bench payload blocked by gates')
  }
}, { rounds: Number(process.env.BENCH_ROUNDS ?? 9), ms })

const line = {
  bench: 'pci',
  payloadBytes: payloadBytes.length,
  rawSign: result.rawSign,
  rawVerify: result.rawVerify,
  create: result.create,
  verify: result.verify,
  gates: result.gates,
  createRatio: Math.round((result.create / result.rawSign) * 1000) / 1000,
  verifyRatio: Math.round((result.verify / result.rawVerify) * 1000) / 1000
}
console.log(`node ${process.version}; targets: createRatio >= 0.8, verifyRatio >= 0.8, gates >= 1700000/s`)
console.log(JSON.stringify(line))
