/** Shapes the node exposes to its control surfaces (IPC, REST, WebSocket) and tests. */

export type MemberState = 'JOINING' | 'ACTIVE' | 'SUSPECT' | 'DEAD'

export interface PeerView {
  peerId: string
  state: MemberState
  addresses: string[]
  /** NTU belief in this peer, fed by how its messages validate (0..1) */
  belief: number
  /** belief x share of valid messages in the NTU window (0..1): what routing ranks peers by */
  trust: number
  /** phi-accrual suspicion level of the peer's heartbeats */
  phi: number
  /** epoch ms of the last heartbeat, null before the first */
  lastSeen: number | null
  connected: boolean
}

export interface NodeStatus {
  peerId: string
  addresses: string[]
  /** REST/WS API address `host:port`, null when the API is off */
  api: string | null
  state: MemberState
  /** number of known peers that are not DEAD */
  peers: number
  connections: number
  federationId: string
  uptimeS: number
  version: string
}

/** Events streamed on /api/v1/ws and used by tests; one JSON object each. */
export type NodeEvent =
  | { type: 'peer:joined' | 'peer:active' | 'peer:suspect' | 'peer:dead' | 'peer:left', peerId: string, ts: number }
  | { type: 'message', topic: string, sender: string, envelopeType: string, ts: number }
  | { type: 'message:rejected', topic: string, from: string, code: string, reason: string, ts: number }
  | { type: 'pattern:proposed', id: string, digest: string, proposer: string, ts: number }
  | { type: 'pattern:vote', id: string, digest: string, voter: string, decision: string, ts: number }
  | { type: 'pattern:committed', id: string, digest: string, decision: string, latencyMs: number, ts: number }
  | { type: 'pattern:expired', id: string, digest: string, ts: number }
  | { type: 'pattern:equivocation', voter: string, digest: string, ts: number }
  | { type: 'task', id: string, skill: string, state: string, provider: string | null, error: string | null, ts: number }
  | { type: 'task:executed', id: string, skill: string, requester: string, state: string, ms: number, ts: number }

/**
 * What a running node offers its control surfaces (IPC socket, REST/WS API). BizraNode
 * implements it; the API and IPC servers depend only on this.
 */
export interface NodeControl {
  readonly peerId: string
  status (): NodeStatus
  peers (): PeerView[]
  /** dials a multiaddr (which must end in /p2p/<id>); resolves once connected */
  dial (multiaddr: string, signal?: AbortSignal): Promise<{ peerId: string }>
  /** Prometheus text exposition of node and libp2p metrics */
  metrics (): Promise<string>
  /** subscribe to node events; returns an unsubscribe function */
  onEvent (listener: (event: NodeEvent) => void): () => void
  /** puts a pattern to the federation's vote (see PatternService.propose) */
  propose (input: { id: string, content: unknown, snr: number, ihsan: number }, options?: { wait?: boolean, signal?: AbortSignal }): Promise<unknown>
  /** committed patterns with their certificates */
  patternList (): Promise<unknown[]>
  /** the latest commit of one pattern, or undefined */
  patternShow (id: string): Promise<unknown>
}
