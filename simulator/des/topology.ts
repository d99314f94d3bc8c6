import { apportion, type Scenario } from '../scenario.ts'
import type { Rng } from './rng.ts'

/**
 * Who is connected to whom. Nodes are numbered region by region (region r holds
 * [regionStart[r], regionStart[r + 1])). Each node dials `peersPerNode` random nodes of its own
 * region (and gets inbound connections from others); a node of a bridged region also dials two
 * of its region's super-peers (its bootstrap list); super-peers connect to one another and
 * are gossipsub direct peers of one another, which is how messages cross regions. Without
 * super-peers, every node of a multi-region scenario dials `crossRegionPeers` (default 1)
 * random nodes of other regions.
 *
 * Connections are stored as CSR (offsets + one flat Int32Array), duplicates removed.
 */
export interface Topology {
  n: number
  regions: number
  region: Uint8Array
  regionStart: Int32Array
  isSuper: Uint8Array
  superPeers: Int32Array
  connOff: Int32Array
  conn: Int32Array
  /** direct (gossipsub "direct peer") lists: super-peer to super-peer */
  directOff: Int32Array
  direct: Int32Array
}

const FULL_SUPER_MESH = 2000
const SUPER_LINKS = 64

export function buildTopology (s: Scenario, rng: Rng): Topology {
  const R = s.regions.length
  const regionStart = new Int32Array(R + 1)
  for (let r = 0; r < R; r++) regionStart[r + 1] = regionStart[r]! + s.regions[r]!.nodes
  const n = regionStart[R]!
  const region = new Uint8Array(n)
  for (let r = 0; r < R; r++) region.fill(r, regionStart[r]!, regionStart[r + 1]!)

  // super-peers: the first nodes of each bridged region, shared out by region size
  const isSuper = new Uint8Array(n)
  const superByRegion: number[][] = Array.from({ length: R }, () => [])
  const sp = s.superPeers
  if (sp !== undefined && sp.count > 0) {
    const bridged = s.regions.map((r, i) => ({ r, i })).filter(x => sp.bridges.includes(x.r.name))
    const shares = apportion(sp.count, bridged.map(x => x.r.nodes), 1)
    bridged.forEach((x, k) => {
      const cnt = Math.min(shares[k]!, x.r.nodes)
      for (let j = 0; j < cnt; j++) {
        const node = regionStart[x.i]! + j
        isSuper[node] = 1
        superByRegion[x.i]!.push(node)
      }
    })
  }
  const superPeers = Int32Array.from(superByRegion.flat())
  const ppn = s.topology?.peersPerNode ?? 8
  const cross = s.topology?.crossRegionPeers ?? (R > 1 && superPeers.length === 0 ? 1 : 0)

  // directed dials, then made symmetric
  const S = superPeers.length
  const superEdges = S <= FULL_SUPER_MESH ? (S * (S - 1)) / 2 : S * SUPER_LINKS
  let cap = n * (ppn + 2 + cross) + superEdges
  let src = new Int32Array(cap)
  let dst = new Int32Array(cap)
  let e = 0
  const add = (a: number, b: number): void => {
    if (e === cap) {
      cap *= 2
      const s2 = new Int32Array(cap); s2.set(src); src = s2
      const d2 = new Int32Array(cap); d2.set(dst); dst = d2
    }
    src[e] = a
    dst[e] = b
    e++
  }
  for (let r = 0; r < R; r++) {
    const start = regionStart[r]!
    const size = regionStart[r + 1]! - start
    const dials = Math.min(ppn, size - 1)
    const sps = superByRegion[r]!
    for (let i = start; i < start + size; i++) {
      for (let k = 0; k < dials; k++) {
        let j = start + rng.int(size - 1)
        if (j >= i) j++
        add(i, j)
      }
      if (sps.length > 0 && isSuper[i] === 0) {
        add(i, sps[rng.int(sps.length)]!)
        if (sps.length > 1) add(i, sps[rng.int(sps.length)]!)
      }
      for (let k = 0; k < cross && n > size; k++) {
        let j = rng.int(n - size)
        if (j >= start) j += size
        add(i, j)
      }
    }
  }
  // super-peers: a full mesh of direct peers (or SUPER_LINKS random ones each when there are very many)
  const dSrc: number[] = []
  const dDst: number[] = []
  if (S <= FULL_SUPER_MESH) {
    for (let a = 0; a < S; a++) for (let b = a + 1; b < S; b++) { dSrc.push(superPeers[a]!); dDst.push(superPeers[b]!) }
  } else {
    for (let a = 0; a < S; a++) {
      for (let k = 0; k < SUPER_LINKS; k++) {
        let b = rng.int(S - 1)
        if (b >= a) b++
        dSrc.push(superPeers[a]!); dDst.push(superPeers[b]!)
      }
    }
  }
  for (let k = 0; k < dSrc.length; k++) add(dSrc[k]!, dDst[k]!)

  const [connOff, conn] = csr(n, src, dst, e)
  const [directOff, direct] = csr(n, Int32Array.from(dSrc), Int32Array.from(dDst), dSrc.length)
  return { n, regions: R, region, regionStart, isSuper, superPeers, connOff, conn, directOff, direct }
}

/** Symmetric adjacency in CSR form, each list sorted and without duplicates or self-loops. */
function csr (n: number, src: Int32Array, dst: Int32Array, e: number): [Int32Array, Int32Array] {
  const deg = new Int32Array(n + 1)
  for (let k = 0; k < e; k++) { deg[src[k]!]!++; deg[dst[k]!]!++ }
  const off = new Int32Array(n + 1)
  for (let i = 0; i < n; i++) off[i + 1] = off[i]! + deg[i]!
  const fill = off.slice(0, n)
  const list = new Int32Array(off[n]!)
  for (let k = 0; k < e; k++) {
    const a = src[k]!
    const b = dst[k]!
    list[fill[a]!++] = b
    list[fill[b]!++] = a
  }
  // sort each list and squeeze out duplicates, compacting in place
  const outOff = new Int32Array(n + 1)
  let w = 0
  for (let i = 0; i < n; i++) {
    const a = off[i]!
    const b = off[i + 1]!
    if (b - a > 1) list.subarray(a, b).sort()
    outOff[i] = w
    let last = -1
    for (let k = a; k < b; k++) {
      const v = list[k]!
      if (v !== last && v !== i) { list[w++] = v; last = v }
    }
  }
  outOff[n] = w
  return [outOff, list.slice(0, w)]
}
