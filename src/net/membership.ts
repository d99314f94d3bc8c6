import { PhiAccrual, type PhiAccrualConfig } from './phi-accrual.ts'
import { DEFAULT_NTU_CONFIG, INITIAL_NTU_STATE, ntuObserve, validateNtuConfig, type NtuConfig, type NtuState } from '../governance/ntu.ts'
import type { MemberState, NodeEvent, PeerView } from '../node/types.ts'

/**
 * Who is in the federation, as this node sees it. A pure state machine: no timers, no clock,
 * no libp2p. Every input carries `now` (epoch ms from the libp2p adapter, simulated ms from
 * the discrete-event simulator) and returns the transitions it caused, in order, as node
 * events stamped `ts: now`.
 *
 *   connected / first heartbeat       -> JOINING   peer:joined
 *   heartbeat (JOINING/SUSPECT/DEAD)  -> ACTIVE    peer:active
 *   tick: phi >= suspectPhi           ACTIVE  -> SUSPECT   peer:suspect
 *   tick: phi >= deadPhi, or silent for deadAfterMs
 *                                     SUSPECT -> DEAD      peer:dead
 *   tick: DEAD for forgetAfterMs      -> forgotten         peer:left
 *   disconnected before any heartbeat -> forgotten         peer:left
 *
 * A tick that comes late applies every transition that is due, in order (a peer silent past
 * deadAfterMs goes ACTIVE -> SUSPECT -> DEAD in one tick, both events emitted). Connection
 * loss alone does not make a peer SUSPECT: gossip carries heartbeats over other peers too.
 *
 * Each peer also carries an NTU (src/governance/ntu.ts) fed 1 for every message of its that
 * validated and 0 for every one that was rejected. NTU belief measures how steady that stream
 * is, and a steadily invalid stream is steady too (its belief settles near 0.6), so ranking
 * uses trust = belief x share of valid observations in the NTU window, which falls to 0 for
 * a peer that sends only bad messages. "Low belief" means trust < lowBeliefThreshold.
 */

export const MEMBERSHIP_DEFAULTS = Object.freeze({
  heartbeatIntervalMs: 10_000,
  suspectPhi: 8,
  deadPhi: 16,
  /** hard bound on silence before DEAD, in heartbeat intervals */
  deadAfterIntervals: 6,
  /** how long a DEAD peer is kept before it is forgotten, in heartbeat intervals */
  forgetAfterIntervals: 10,
  lowBeliefThreshold: 0.3
})

export interface MembershipConfig {
  /** this node's PeerId: its own heartbeats and connections are ignored */
  selfId: string
  /** interval peers heartbeat at, ms (default 10 000) */
  heartbeatIntervalMs?: number
  /** phi at which an ACTIVE peer becomes SUSPECT (default 8) */
  suspectPhi?: number
  /** phi at which a SUSPECT peer becomes DEAD (default 16) */
  deadPhi?: number
  /** silence after which a peer is DEAD whatever phi says, ms (default 6 intervals) */
  deadAfterMs?: number
  /** time a peer stays DEAD before it is forgotten with peer:left, ms (default 10 intervals) */
  forgetAfterMs?: number
  /** no bootstrap peers: the node is a federation of one and ACTIVE at once */
  lone?: boolean
  /** trust below this is "low belief" (default 0.3) */
  lowBeliefThreshold?: number
  /** NTU parameters for per-peer belief (default DEFAULT_NTU_CONFIG) */
  ntu?: NtuConfig
  /** phi-accrual tuning; expectedIntervalMs is heartbeatIntervalMs */
  phi?: Omit<PhiAccrualConfig, 'expectedIntervalMs'>
}

export interface ResolvedMembershipConfig {
  readonly selfId: string
  readonly heartbeatIntervalMs: number
  readonly suspectPhi: number
  readonly deadPhi: number
  readonly deadAfterMs: number
  readonly forgetAfterMs: number
  readonly lone: boolean
  readonly lowBeliefThreshold: number
  readonly ntu: Readonly<NtuConfig>
  readonly phi: Readonly<Omit<PhiAccrualConfig, 'expectedIntervalMs'>>
}

/** What a heartbeat (a node-info message) may tell about its sender. */
export interface HeartbeatInfo {
  addresses?: readonly string[]
  load?: number
}

/** The membership transitions, as the node streams them. */
export type MembershipEvent = Extract<NodeEvent, { peerId: string }>

export interface MemberView extends PeerView {
  /** load the peer last reported in its heartbeat, undefined if it never did */
  load: number | undefined
}

/** The inputs as data, for drivers that queue them (the discrete-event simulator). */
export type MembershipInput =
  | { type: 'connected', peerId: string, now: number }
  | { type: 'disconnected', peerId: string, now: number }
  | { type: 'heartbeat', peerId: string, now: number, info?: HeartbeatInfo }
  | { type: 'message', peerId: string, ok: boolean, now: number }
  | { type: 'tick', now: number }

interface Peer {
  readonly id: string
  state: MemberState
  /** created by the first heartbeat, and afresh when a DEAD peer comes back */
  detector: PhiAccrual | undefined
  ntu: NtuState
  addresses: readonly string[]
  load: number | undefined
  connected: boolean
  lastSeen: number | null
  deadSince: number | null
}

const STATE_RANK: Readonly<Record<MemberState, number>> = { ACTIVE: 0, JOINING: 1, SUSPECT: 2, DEAD: 3 }
const UNKNOWN_RANK = 4

function positive (name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`membership ${name} must be a positive finite number`)
  return v
}

export function resolveMembershipConfig (config: MembershipConfig): ResolvedMembershipConfig {
  if (typeof config.selfId !== 'string' || config.selfId === '') throw new RangeError('membership selfId must be a non-empty string')
  const interval = positive('heartbeatIntervalMs', config.heartbeatIntervalMs ?? MEMBERSHIP_DEFAULTS.heartbeatIntervalMs)
  const suspectPhi = positive('suspectPhi', config.suspectPhi ?? MEMBERSHIP_DEFAULTS.suspectPhi)
  const deadPhi = positive('deadPhi', config.deadPhi ?? MEMBERSHIP_DEFAULTS.deadPhi)
  if (deadPhi < suspectPhi) throw new RangeError('membership deadPhi must be >= suspectPhi')
  const deadAfterMs = positive('deadAfterMs', config.deadAfterMs ?? interval * MEMBERSHIP_DEFAULTS.deadAfterIntervals)
  const forgetAfterMs = config.forgetAfterMs ?? interval * MEMBERSHIP_DEFAULTS.forgetAfterIntervals
  if (!(Number.isFinite(forgetAfterMs) && forgetAfterMs >= 0)) throw new RangeError('membership forgetAfterMs must be a finite number >= 0')
  const lowBeliefThreshold = config.lowBeliefThreshold ?? MEMBERSHIP_DEFAULTS.lowBeliefThreshold
  if (!(lowBeliefThreshold >= 0 && lowBeliefThreshold <= 1)) throw new RangeError('membership lowBeliefThreshold must be in [0, 1]')
  const ntu = Object.freeze({ ...(config.ntu ?? DEFAULT_NTU_CONFIG) })
  validateNtuConfig(ntu)
  const phi = Object.freeze({ ...config.phi })
  new PhiAccrual({ ...phi, expectedIntervalMs: interval }) // validates the phi tuning now, not at the first heartbeat
  return Object.freeze({
    selfId: config.selfId,
    heartbeatIntervalMs: interval,
    suspectPhi,
    deadPhi,
    deadAfterMs,
    forgetAfterMs,
    lone: config.lone ?? false,
    lowBeliefThreshold,
    ntu,
    phi
  })
}

/** NTU belief x share of valid observations in the window; belief alone before any. */
export function trustOf (ntu: NtuState): number {
  if (ntu.recent.length === 0) return ntu.belief
  let valid = 0
  for (const o of ntu.recent) valid += o
  return ntu.belief * (valid / ntu.recent.length)
}

export class Membership {
  readonly config: ResolvedMembershipConfig
  readonly #peers = new Map<string, Peer>()

  constructor (config: MembershipConfig) {
    this.config = resolveMembershipConfig(config)
  }

  /** number of peers known (any state) */
  get size (): number {
    return this.#peers.size
  }

  has (peerId: string): boolean {
    return this.#peers.has(peerId)
  }

  /** A connection to the peer opened. A new peer is JOINING until its first heartbeat. */
  connected (peerId: string, now: number): MembershipEvent[] {
    if (peerId === this.config.selfId) return []
    const events: MembershipEvent[] = []
    this.#peer(peerId, now, events).connected = true
    return events
  }

  /**
   * The last connection to the peer closed. A peer never heard from is forgotten (peer:left);
   * one that was heard from keeps its state and is judged by its heartbeats from here on.
   */
  disconnected (peerId: string, now: number): MembershipEvent[] {
    const p = this.#peers.get(peerId)
    if (p === undefined) return []
    p.connected = false
    if (p.state === 'JOINING' && p.lastSeen === null) {
      this.#peers.delete(peerId)
      return [{ type: 'peer:left', peerId, ts: now }]
    }
    return []
  }

  /** A heartbeat from the peer arrived at `now`. Any state but ACTIVE becomes ACTIVE. */
  heartbeat (peerId: string, now: number, info?: HeartbeatInfo): MembershipEvent[] {
    if (peerId === this.config.selfId) return []
    const events: MembershipEvent[] = []
    const p = this.#peer(peerId, now, events)
    if (p.detector === undefined || p.state === 'DEAD') {
      // a peer back from the dead starts a fresh history: the long silence is not a sample
      p.detector = new PhiAccrual({ ...this.config.phi, expectedIntervalMs: this.config.heartbeatIntervalMs })
    }
    p.detector.heartbeat(now)
    p.lastSeen = p.lastSeen === null ? now : Math.max(p.lastSeen, now)
    p.deadSince = null
    if (info?.addresses !== undefined && info.addresses.length > 0) p.addresses = [...info.addresses]
    if (info?.load !== undefined && Number.isFinite(info.load)) p.load = info.load
    if (p.state !== 'ACTIVE') {
      p.state = 'ACTIVE'
      events.push({ type: 'peer:active', peerId, ts: now })
    }
    return events
  }

  /**
   * A message this peer sent us validated (ok) or was rejected. Feeds the peer's NTU with
   * 1 or 0. Unknown peers are ignored. Causes no transition; `now` is accepted for symmetry.
   */
  messageValidated (peerId: string, ok: boolean, _now?: number): MembershipEvent[] {
    const p = this.#peers.get(peerId)
    if (p !== undefined) p.ntu = ntuObserve(p.ntu, ok ? 1 : 0, this.config.ntu)
    return []
  }

  /**
   * Re-evaluates every peer at `now`. Call it a few times per heartbeat interval, or at
   * nextDeadline(now).
   */
  tick (now: number): MembershipEvent[] {
    const c = this.config
    const events: MembershipEvent[] = []
    for (const p of this.#peers.values()) {
      if (p.lastSeen === null || p.detector === undefined) continue // JOINING, never heard
      if (p.state === 'ACTIVE' || p.state === 'SUSPECT') {
        const silence = now - p.lastSeen
        const phi = p.detector.phi(now)
        if (p.state === 'ACTIVE' && (phi >= c.suspectPhi || silence >= c.deadAfterMs)) {
          p.state = 'SUSPECT'
          events.push({ type: 'peer:suspect', peerId: p.id, ts: now })
        }
        if (p.state === 'SUSPECT' && (phi >= c.deadPhi || silence >= c.deadAfterMs)) {
          p.state = 'DEAD'
          p.deadSince = now
          events.push({ type: 'peer:dead', peerId: p.id, ts: now })
        }
      }
      if (p.state === 'DEAD' && p.deadSince !== null && now - p.deadSince >= c.forgetAfterMs) {
        this.#peers.delete(p.id)
        events.push({ type: 'peer:left', peerId: p.id, ts: now })
      }
    }
    return events
  }

  /**
   * The earliest time at which tick() may cause a transition if no other input arrives
   * first (never before `now`), or undefined when nothing is pending. A discrete-event
   * driver can tick only then instead of polling.
   */
  nextDeadline (now: number): number | undefined {
    const c = this.config
    let next = Infinity
    for (const p of this.#peers.values()) {
      if (p.lastSeen === null || p.detector === undefined) continue
      if (p.state === 'ACTIVE') {
        next = Math.min(next, p.detector.reachesPhiAt(c.suspectPhi) ?? Infinity, p.lastSeen + c.deadAfterMs)
      } else if (p.state === 'SUSPECT') {
        next = Math.min(next, p.detector.reachesPhiAt(c.deadPhi) ?? Infinity, p.lastSeen + c.deadAfterMs)
      } else if (p.state === 'DEAD' && p.deadSince !== null) {
        next = Math.min(next, p.deadSince + c.forgetAfterMs)
      }
    }
    return next === Infinity ? undefined : Math.max(next, now)
  }

  /**
   * This node's own state. A lone node (no bootstrap) is ACTIVE. Otherwise it is ACTIVE while
   * it has at least one ACTIVE peer, and JOINING before that, after losing them all, or when
   * the adapter reports zero open connections.
   */
  selfState (_now: number, opts: { connections?: number } = {}): MemberState {
    if (this.config.lone) return 'ACTIVE'
    if (opts.connections === 0) return 'JOINING'
    for (const p of this.#peers.values()) if (p.state === 'ACTIVE') return 'ACTIVE'
    return 'JOINING'
  }

  /** Raw phi of the peer at `now` (0 before its first heartbeat or when unknown). */
  phi (peerId: string, now: number): number {
    return this.#peers.get(peerId)?.detector?.phi(now) ?? 0
  }

  view (peerId: string, now: number): MemberView | undefined {
    const p = this.#peers.get(peerId)
    return p === undefined ? undefined : this.#view(p, now)
  }

  /** Every known peer, in the order they became known. */
  views (now: number): MemberView[] {
    return [...this.#peers.values()].map(p => this.#view(p, now))
  }

  /** The peer's trust (see trustOf); 0 for an unknown peer. */
  trust (peerId: string): number {
    const p = this.#peers.get(peerId)
    return p === undefined ? 0 : trustOf(p.ntu)
  }

  /** trust < lowBeliefThreshold; true for an unknown peer. */
  isLowBelief (peerId: string): boolean {
    return this.trust(peerId) < this.config.lowBeliefThreshold
  }

  /**
   * Best first: ACTIVE, JOINING, SUSPECT, DEAD, then unknown ids; within a state by trust,
   * highest first (so low-belief peers go last among equals); ties by PeerId. Returns a new
   * array; duplicates are kept.
   */
  rankPeers (peerIds: readonly string[]): string[] {
    const keyed = peerIds.map(id => {
      const p = this.#peers.get(id)
      return p === undefined
        ? { id, rank: UNKNOWN_RANK, trust: 0 }
        : { id, rank: STATE_RANK[p.state], trust: trustOf(p.ntu) }
    })
    keyed.sort((a, b) => a.rank - b.rank || b.trust - a.trust || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    return keyed.map(k => k.id)
  }

  #peer (peerId: string, now: number, events: MembershipEvent[]): Peer {
    let p = this.#peers.get(peerId)
    if (p === undefined) {
      p = {
        id: peerId,
        state: 'JOINING',
        detector: undefined,
        ntu: INITIAL_NTU_STATE,
        addresses: [],
        load: undefined,
        connected: false,
        lastSeen: null,
        deadSince: null
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
      addresses: [...p.addresses],
      belief: p.ntu.belief,
      trust: trustOf(p.ntu),
      phi: Math.round((p.detector?.phi(now) ?? 0) * 100) / 100,
      lastSeen: p.lastSeen,
      connected: p.connected,
      load: p.load
    }
  }
}

export function createMembership (config: MembershipConfig): Membership {
  return new Membership(config)
}

/** Applies one input (as data) to the membership; the transitions it caused come back. */
export function stepMembership (m: Membership, input: MembershipInput): MembershipEvent[] {
  switch (input.type) {
    case 'connected': return m.connected(input.peerId, input.now)
    case 'disconnected': return m.disconnected(input.peerId, input.now)
    case 'heartbeat': return m.heartbeat(input.peerId, input.now, input.info)
    case 'message': return m.messageValidated(input.peerId, input.ok, input.now)
    case 'tick': return m.tick(input.now)
  }
}
