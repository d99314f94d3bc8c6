import { createBLAKE3 } from 'hash-wasm'

/** Domain separation prefix of every envelope digest (DESIGN.md). */
export const PCI_DOMAIN = 'bizra-pci-v1:'

// hash-wasm's WASM BLAKE3 measured fastest here (npm run bench:candidates). One hasher is
// reused: init/update/digest run synchronously, so calls never interleave.
const hasher = await createBLAKE3()
const encoder = new TextEncoder()
let scratch = new Uint8Array(4096)

/** BLAKE3-256 of arbitrary bytes. */
export function blake3 (data: Uint8Array): Uint8Array {
  hasher.init()
  hasher.update(data)
  return hasher.digest('binary')
}

/** BLAKE3-256 of the UTF-8 encoding of `prefix + text`, without building the joined string. */
export function blake3Text (text: string, prefix = ''): Uint8Array {
  const needed = (prefix.length + text.length) * 3
  if (scratch.length < needed) scratch = new Uint8Array(Math.max(needed, scratch.length * 2))
  let written = 0
  if (prefix.length > 0) written = encoder.encodeInto(prefix, scratch).written
  written += encoder.encodeInto(text, scratch.subarray(written)).written
  hasher.init()
  hasher.update(scratch.subarray(0, written))
  return hasher.digest('binary')
}

/** digest = BLAKE3("bizra-pci-v1:" || canonical JSON of the envelope without sig) */
export function pciDigest (canonicalBody: string): Uint8Array {
  return blake3Text(canonicalBody, PCI_DOMAIN)
}
