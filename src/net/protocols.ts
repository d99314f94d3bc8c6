/** Wire names (DESIGN.md "Wire protocols"). */
export const TOPICS = {
  nodeInfo: '/bizra/1/node-info',
  patterns: '/bizra/1/patterns',
  votes: '/bizra/1/votes',
  agents: '/bizra/1/agents'
} as const

export type Topic = typeof TOPICS[keyof typeof TOPICS]
export const ALL_TOPICS: readonly Topic[] = Object.values(TOPICS)

export const PROTOCOLS = {
  a2a: '/bizra/a2a/1.0.0',
  sync: '/bizra/sync/1.0.0'
} as const

/** Kademlia runs under a federation-private protocol id so it never mixes with the public DHT. */
export const DHT_PROTOCOL = '/bizra/kad/1.0.0'

/** Largest gossip message accepted (bytes): one envelope, DESIGN's 1 MiB cap. */
export const MAX_GOSSIP_BYTES = 1024 * 1024
