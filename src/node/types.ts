/** Shapes the node exposes to its control surfaces (IPC, REST, WebSocket) and tests. */

export type MemberState = 'JOINING' | 'ACTIVE' | 'SUSPECT' | 'DEAD'

export interface PeerView {
  peerId: string
  state: MemberState
  addresses: string[]
  /** NTU belief in this peer, fed by how its messages validate (0..1) */
  belief: number
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
}
