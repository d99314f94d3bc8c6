/**
 * Offline verification of a session DAG proof: the path of nodes from one node up to a head,
 * each node listing the one before it among its parents. Pure; never throws on hostile input.
 */
import { canTransition, isHash, nodeHash, nodeShapeError, type HashedNode } from './dag.ts'

export const MAX_PROOF_NODES = 10_000

export interface Proof {
  v: 1
  /** from the proven node (first) to the head (last) */
  nodes: HashedNode[]
  head: string
}

export interface ProofExpectation {
  /** payload hash the first node must carry */
  payloadHash?: string
  /** head the proof must end at */
  head?: string
}

export type ProofCheck = { ok: true, head: string } | { ok: false, reason: string }

const PROOF_KEYS = 'head,nodes,v'

export function verifyProof (proof: unknown, expected: ProofExpectation = {}): ProofCheck {
  const fail = (reason: string): ProofCheck => ({ ok: false, reason })
  if (proof === null || typeof proof !== 'object' || Array.isArray(proof)) return fail('proof is not an object')
  if (Object.keys(proof).sort().join(',') !== PROOF_KEYS) return fail('proof must have exactly the fields v, nodes, head')
  const p = proof as Record<string, unknown>
  if (p.v !== 1) return fail(`unsupported proof version ${JSON.stringify(p.v)}`)
  if (!Array.isArray(p.nodes)) return fail('nodes is not an array')
  if (p.nodes.length === 0) return fail('nodes is empty')
  if (p.nodes.length > MAX_PROOF_NODES) return fail(`too many nodes (${p.nodes.length} > ${MAX_PROOF_NODES})`)
  if (!isHash(p.head)) return fail('head must be a lowercase hex 32-byte hash')

  const nodes = p.nodes as unknown[]
  // the latest node of each session seen so far along the path
  const lastInSession = new Map<string, HashedNode>()
  let prev: HashedNode | undefined
  for (let i = 0; i < nodes.length; i++) {
    const shape = nodeShapeError(nodes[i], true)
    if (shape !== undefined) return fail(`node ${i}: ${shape}`)
    const node = nodes[i] as HashedNode
    if (nodeHash(node) !== node.hash) return fail(`node ${i}: hash does not match its content`)
    if (prev !== undefined) {
      if (!node.parents.includes(prev.hash)) return fail(`node ${i} does not list node ${i - 1} as a parent`)
      if (node.ts < prev.ts) return fail(`node ${i}: ts ${node.ts} precedes its parent's ${prev.ts}`)
    }
    const earlier = lastInSession.get(node.session)
    if (earlier !== undefined) {
      const legal = node.parents.includes(earlier.hash)
        ? canTransition(earlier.state, node.state)
        : earlier.state !== 'committed' && node.state !== 'init'
      if (!legal) return fail(`node ${i}: illegal transition ${earlier.state} -> ${node.state} in session ${JSON.stringify(node.session)}`)
    }
    lastInSession.set(node.session, node)
    prev = node
  }
  const last = prev!
  if (last.hash !== p.head) return fail('head does not match the last node')
  if (expected.head !== undefined && p.head !== expected.head) return fail(`head is ${p.head}, expected ${expected.head}`)
  const first = nodes[0] as HashedNode
  if (expected.payloadHash !== undefined && first.payloadHash !== expected.payloadHash) {
    return fail(`first node's payloadHash is ${first.payloadHash}, expected ${expected.payloadHash}`)
  }
  return { ok: true, head: p.head }
}
