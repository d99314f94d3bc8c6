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
