import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import './yamux-window.ts'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { gossipsub, StrictNoSign, type GossipSub } from '@libp2p/gossipsub'
import { createTopicScoreParams } from '@libp2p/gossipsub/score'
import { bootstrap } from '@libp2p/bootstrap'
import { mdns } from '@libp2p/mdns'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { PeerDiscovery, ConnectionProtector, Ed25519PrivateKey, ComponentLogger, Transport, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Registry } from 'prom-client'
import { ALL_TOPICS, DHT_PROTOCOL, MAX_GOSSIP_BYTES } from './protocols.ts'

export interface HostServices {
  identify: Identify
  ping: Ping
  /** absent on hosts created with `dht: false` */
  dht?: KadDHT
  pubsub: GossipSub
  [key: string]: unknown
}

export type Host = Libp2p<HostServices>

export interface HostOptions {
  privateKey: Ed25519PrivateKey
  listen: string[]
  bootstrap?: string[]
  /** factory of the private-network protector (omit only for benchmarks' plain baseline) */
  protector?: (components: any) => ConnectionProtector
  mdns?: boolean
  /** collect libp2p metrics into this prom-client registry */
  metricsRegistry?: Registry
  logger?: ComponentLogger
  /** gossipsub mesh degree (D); default 6 as in the spec */
  meshDegree?: number
  /** inbound connections accepted per second from one host (default 50) */
  inboundConnectionThreshold?: number
  /** the transport (default TCP); the simulator passes an in-memory one */
  transport?: (components: any) => Transport
  /** run the Kademlia DHT (default true). Without it skills are found through gossiped cards only: the simulator's lighter nodes */
  dht?: boolean
  /** gossipsub direct peers: always sent every message, kept connected (super-peers bridging regions) */
  directPeers?: Array<{ id: PeerId, addrs: Multiaddr[] }>
}

/**
 * Gossipsub topic scores: an invalid message (REJECT from our validator) costs the peer that
 * forwarded it, so a sender of forged envelopes falls below the graylist threshold.
 */
function topicScores (): Record<string, ReturnType<typeof createTopicScoreParams>> {
  const topics: Record<string, ReturnType<typeof createTopicScoreParams>> = {}
  for (const t of ALL_TOPICS) {
    topics[t] = createTopicScoreParams({
      topicWeight: 1,
      // time in mesh counts per second (the default quantum is 1 ms, which would drown every
      // penalty under the topic score cap)
      timeInMeshWeight: 0.01,
      timeInMeshQuantum: 1000,
      // no penalties for quiet meshes: federation topics can be idle for long stretches
      meshMessageDeliveriesWeight: 0,
      meshFailurePenaltyWeight: 0,
      // P4 is squared: one invalid message costs 10, three cost 90 (past the graylist at -80)
      invalidMessageDeliveriesWeight: -10,
      invalidMessageDeliveriesDecay: 0.9
    })
  }
  return topics
}

/**
 * The node's libp2p host: TCP + Noise + yamux behind the private-network protector, identify,
 * ping, a federation-private Kademlia DHT and gossipsub. Envelopes carry their author's
 * signature, so gossipsub runs StrictNoSign (no second signature per message) and message ids
 * are content hashes.
 */
export async function createHost (options: HostOptions): Promise<Host> {
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  if (options.bootstrap !== undefined && options.bootstrap.length > 0) {
    peerDiscovery.push(bootstrap({ list: options.bootstrap, timeout: 0 }))
  }
  if (options.mdns === true) peerDiscovery.push(mdns())

  return createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: options.listen },
    transports: [options.transport ?? tcp()],
    connectionProtector: options.protector,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionManager: {
      // libp2p allows 5 inbound connections per second from one host; a federation started on
      // one machine, or several nodes behind one address, joins faster than that
      inboundConnectionThreshold: options.inboundConnectionThreshold ?? 50
    },
    connectionMonitor: {
      // libp2p pings every connection every 10 s and aborts one whose ping takes over 5 s. A
      // node busy validating a burst (or many nodes sharing one machine) answers late but is
      // alive, and the abort drops every gossip message in flight on that connection. Dead
      // peers are found by TCP and by the membership's heartbeats (phi-accrual), so the ping
      // is only a backstop here
      pingInterval: 30_000,
      pingTimeout: { minTimeout: 30_000 }
    },
    metrics: options.metricsRegistry !== undefined
      ? prometheusMetrics({ registry: options.metricsRegistry, collectDefaultMetrics: false, preserveExistingMetrics: true })
      : undefined,
    logger: options.logger,
    services: {
      identify: identify(),
      ping: ping(),
      ...(options.dht === false ? {} : { dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: false, peerInfoMapper: passthroughMapper, allowQueryWithZeroPeers: true }) }),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictNoSign,
        emitSelf: false,
        allowPublishToZeroTopicPeers: true,
        D: options.meshDegree ?? 6,
        directPeers: options.directPeers ?? [],
        maxInboundDataLength: MAX_GOSSIP_BYTES + 64 * 1024,
        // IDONTWANT (gossipsub 1.2) for messages of 1 KiB and more, go-libp2p's threshold (js
        // defaults to 512 B). Most envelopes (votes, heartbeats, cards) are 0.5-1 KiB: for them
        // an IDONTWANT to every mesh peer costs as many frames as the duplicates it might save
        idontwantMinDataSize: 1024,
        scoreParams: {
          topics: topicScores(),
          // gossipsub's Sybil defence penalises more than 10 peers seen from one IP address
          // ((n - 10)^2 x -5): on a private mesh every peer holds the swarm key, and a federation
          // on one machine or behind one NAT is normal, so the penalty would graylist honest
          // peers (16 nodes on one host scored -125, past the -80 graylist, and gossip stopped)
          IPColocationFactorWeight: 0
        }
      })
    }
  }) as Promise<Host>
}

// GossipSub's exported interface omits two public methods of its implementation that tests,
// benchmarks and the status API need; this is the one place that knows about them.
interface GossipSubInspect {
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
}

/** The gossipsub peer score this host holds for a peer. */
export function gossipScore (host: Host, peerId: string): number {
  return (host.services.pubsub as unknown as GossipSubInspect).getScore(peerId)
}

/** PeerIds in this host's gossipsub mesh for a topic. */
export function meshPeers (host: Host, topic: string): string[] {
  return (host.services.pubsub as unknown as GossipSubInspect).getMeshPeers(topic)
}
