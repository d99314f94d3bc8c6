/**
 * npm run bench:candidates — how the PCI building blocks were chosen: RFC 8785 canonicalizers
 * (three npm packages and ours) on a typical envelope body, and BLAKE3 implementations
 * (@noble/hashes, pure JS; hash-wasm, WebAssembly) on its bytes. All outputs are checked equal
 * before timing. Last line: one JSON object of ops/s.
 */
import canonicalizePkg from 'canonicalize'
import { canonicalize as jsonCanonicalize } from 'json-canonicalize'
import { canonify } from '@truestamp/canonify'
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js'
import { canonicalize } from '../../src/pci/canonical.ts'
import { blake3 } from '../../src/pci/digest.ts'
import { compare } from './harness.ts'

const body = {
  v: 1,
  type: 'message',
  sender: '12D3KooWQ7wJk1b1iYQbPNg5Vyo3vDj5A1mU8dQnbbE8S3D5kYZx',
  agent: 'USER',
  payload: { kind: 'observation', region: 'eu-west', text: 'x'.repeat(160), metrics: { p50Ms: 8.5, p99Ms: 31, peers: 42 } },
  ts: '2026-11-22T12:00:00.000Z',
  ttl: 300,
  ihsan: 0.97,
  snr: 0.9,
  nonce: '0123456789abcdef0123456789abcdef'
}
const ours = canonicalize(body)
for (const [name, out] of [['canonicalize', canonicalizePkg(body)], ['json-canonicalize', jsonCanonicalize(body)], ['@truestamp/canonify', canonify(body)]] as const) {
  if (out !== ours) throw new Error(`${name} disagrees with ours`)
}
const bytes = new TextEncoder().encode('bizra-pci-v1:' + ours)
if (Buffer.compare(Buffer.from(blake3(bytes)), Buffer.from(nobleBlake3(bytes))) !== 0) throw new Error('BLAKE3 implementations disagree')

const opts = { rounds: 3, ms: 400 }
const canon = compare({
  canonicalizePkg: () => canonicalizePkg(body),
  jsonCanonicalize: () => jsonCanonicalize(body),
  truestampCanonify: () => canonify(body),
  ours: () => canonicalize(body)
}, opts)
const hash = compare({
  nobleBlake3: () => nobleBlake3(bytes),
  hashWasmBlake3: () => blake3(bytes)
}, opts)
console.log(`canonical JSON of ${ours.length} chars; BLAKE3 over ${bytes.length} bytes`)
console.log(JSON.stringify({ bench: 'pci-candidates', canonicalize: canon, blake3: hash }))
