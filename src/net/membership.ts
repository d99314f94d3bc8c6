import { PhiAccrual } from './phi-accrual.ts'
import { DEFAULT_NTU_CONFIG, INITIAL_NTU_STATE, ntuObserve, type NtuConfig, type NtuState } from '../governance/ntu.ts'
import type { MemberState, NodeEvent, PeerView } from '../node/types.ts'

/**
 * Who is in the federation, as this node sees it: a pure state machine (time passed in, the
 * transitions it causes returned as events) that the libp2p adapter and the simulator drive.
 *
 *   connected        -> JOINING   (peer:joined)
 *   heartbeat        -> ACTIVE    (peer:active)
 *   phi >= suspect   -> SUSPECT   (peer:suspect)
 *   phi >= dead, or silent past deadAfterMs -> DEAD (peer:dead)
 *   DEAD and silent past forgetAfterMs, or a JOINING peer that leaves -> forgotten (peer:left)
 *
 * Each peer also carries an NTU fed by how its messages validate (1 valid, 0 invalid). Its
 * trust = NTU belief x the share of valid messages in the NTU window: NTU belief alone
 * measures how steady a stream is, and a steadily invalid stream is steady too.
 */

export interface MembershipConfig {
  selfId: string
  heartbeatIntervalMs: number
  suspectPhi?: number
  deadPhi?: number
  /** silence after which a peer is DEAD whatever phi says (default 10 intervals) */
  deadAfterMs?: number
  /** silence after which a DEAD peer is forgotten (default 30 intervals) */
  forgetAfterMs?: number
  /** no bootstrap peers: the node is a federation of one and ACTIVE at once */
  lone?: boolean
  lowTrustThreshold?: number
  ntu?: NtuConfig
}

export interface HeartbeatInfo {
  addresses?: string[]
  load?: number
}

interface Peer {
  id: string
  state: MemberState
  detector: PhiAccrual
  ntu: NtuState
  addresses: string[]
  load: number | undefined
  connected: boolean
  lastSeen: number | null
  /** last time anything was heard or the peer connected, for forgetting */
  lastContact: number
}

const STATE_RANK: Record<MemberState, number> = { ACTIVE: 0, JOINING: 1, SUSPECT: 2, DEAD: 3 }

export interface MemberView extends PeerView {
  /** NTU belief x share of valid messages in the window (0..1); what routing ranks by */
  trust: number
  load: number | undefined
}

export class Membership {
  readonly #c: Required<Omit<MembershipConfig, 'ntu'>> & { ntu: NtuConfig }
  readonly #peers = new Map<string, Peer>()

  constructor (config: MembershipConfig) {
    const interval = config.heartbeatIntervalMs
    this.#c = {
      selfId: config.selfId,
      heartbeatIntervalMs: interval,
      suspectPhi: config.suspectPhi ?? 8,
      deadPhi: config.deadPhi ?? 16,
      deadAfterMs: config.deadAfterMs ?? interval * 10,
      forgetAfterMs: config.forgetAfterMs ?? interval * 30,
      lone: config.lone ?? false,
      lowTrustThreshold: config.lowTrustThreshold ?? 0.3,
      ntu: config.ntu ?? DEFAULT_NTU_CONFIG
    }
  }

  connected (peerId: string, now: number): NodeEvent[] {
    if (peerId === this.#c.selfId) return []
    const events: NodeEvent[] = []
    const p = this.#peer(peerId, now, events)
    p.connected = true
    p.lastContact = now
    return events
  }

  disconnected (peerId: string, now: number): NodeEvent[] {
    const p = this.#peers.get(peerId)
    if (p === undefined) return []
    p.connected = false
    if (p.state === 'JOINING' && p.lastSeen === null) {
      this.#peers.delete(peerId)
      return [{ type: 'peer:left', peerId, ts: now }]
    }
    return [] // a peer that was heard from is judged by its heartbeats, not its connection
  }

  heartbeat (peerId: string, now: number, info: HeartbeatInfo = {}): NodeEvent[] {
    if (peerId === this.#c.selfId) return []
    const events: NodeEvent[] = []
    const p = this.#peer(peerId, now, events)
    p.detector.heartbeat(now)
    p.lastSeen = now
    p.lastContact = now
    if (info.addresses !== undefined && info.addresses.length > 0) p.addresses = info.addresses
    if (info.load !== undefined && Number.isFinite(info.load)) p.load = info.load
    if (p.state !== 'ACTIVE') {
      p.state = 'ACTIVE'
      events.push({ type: 'peer:active', peerId, ts: now })
    }
    return events
  }

  /** Feeds the peer's NTU: a message it forwarded validated (true) or was rejected (false). */
  messageValidated (peerId: string, ok: boolean, _now: number): NodeEvent[] {
    const p = this.#peers.get(peerId)
    if (p !== undefined) p.ntu = ntuObserve(p.ntu, ok ? 1 : 0, this.#c.ntu)
    return []
  }

  /** Re-evaluates every peer's suspicion; call it a few times per heartbeat interval. */
  tick (now: number): NodeEvent[] {
    const events: NodeEvent[] = []
    for (const p of this.#peers.values()) {
      if (p.lastSeen === null) {
        if (!p.connected && now - p.lastContact > this.#c.deadAfterMs) {
          this.#peers.delete(p.id)
          events.push({ type: 'peer:left', peerId: p.id, ts: now })
        }
        continue
      }
      const phi = p.detector.phi(now)
      const silence = now - p.lastSeen
      if (p.state === 'ACTIVE' && (phi >= this.#c.suspectPhi || silence > this.#c.deadAfterMs)) {
        p.state = 'SUSPECT'
        events.push({ type: 'peer:suspect', peerId: p.id, ts: now })
      }
      if (p.state === 'SUSPECT' && (phi >= this.#c.deadPhi || silence > this.#c.deadAfterMs)) {
        p.state = 'DEAD'
        events.push({ type: 'peer:dead', peerId: p.id, ts: now })
      }
      if (p.state === 'DEAD' && now - p.lastContact > this.#c.forgetAfterMs) {
        this.#peers.delete(p.id)
        events.push({ type: 'peer:left', peerId: p.id, ts: now })
      }
    }
    return events
  }

  /** This node's own state: JOINING until it hears an ACTIVE peer (a lone node is ACTIVE). */
  selfState (_now: number): MemberState {
    if (this.#c.lone) return 'ACTIVE'
    for (const p of this.#peers.values()) if (p.state === 'ACTIVE') return 'ACTIVE'
    return 'JOINING'
  }

  view (peerId: string, now: number): MemberView | undefined {
    const p = this.#peers.get(peerId)
    return p === undefined ? undefined : this.#view(p, now)
  }

  views (now: number): MemberView[] {
    return [...this.#peers.values()].map(p => this.#view(p, now))
  }

  trust (peerId: string): number {
    const p = this.#peers.get(peerId)
    return p === undefined ? 0 : trustOf(p.ntu)
  }

  isLowTrust (peerId: string): boolean {
    return this.trust(peerId) < this.#c.lowTrustThreshold
  }

  /** Best first: ACTIVE, JOINING, SUSPECT, DEAD, unknown; within a state by trust, then PeerId. */
  rankPeers (peerIds: readonly string[]): string[] {
    const key = (id: string): [number, number] => {
      const p = this.#peers.get(id)
      return p === undefined ? [4, 0] : [STATE_RANK[p.state], -trustOf(p.ntu)]
    }
    return [...peerIds].sort((a, b) => {
      const [sa, ta] = key(a)
      const [sb, tb] = key(b)
      return sa - sb || ta - tb || (a < b ? -1 : a > b ? 1 : 0)
    })
  }

  #peer (peerId: string, now: number, events: NodeEvent[]): Peer {
    let p = this.#peers.get(peerId)
    if (p === undefined) {
      p = {
        id: peerId,
        state: 'JOINING',
        detector: new PhiAccrual({ expectedIntervalMs: this.#c.heartbeatIntervalMs }),
        ntu: INITIAL_NTU_STATE,
        addresses: [],
        load: undefined,
        connected: false,
        lastSeen: null,
        lastContact: now
      }
      this.#peers.set(peerId, p)
      events.push({ type: 'peer:joined', peerId, ts: now })
    }
    return p
  }

  #view (p: Peer, now: number): MemberView {
    return {
      peerId: p.id,
      state: p.state,
      addresses: p.addresses,
      belief: p.ntu.belief,
      trust: trustOf(p.ntu),
      phi: Math.round(p.detector.phi(now) * 100) / 100,
      lastSeen: p.lastSeen,
      connected: p.connected,
      load: p.load
    }
  }
}

function trustOf (ntu: NtuState): number {
  if (ntu.recent.length === 0) return ntu.belief
  let valid = 0
  for (const o of ntu.recent) valid += o
  return ntu.belief * (valid / ntu.recent.length)
}

export function createMembership (config: MembershipConfig): Membership {
  return new Membership(config)
}
