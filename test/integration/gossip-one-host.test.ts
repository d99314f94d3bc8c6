import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHost, gossipScore, type Host } from '../../src/net/host.ts'
import { privateNetwork } from '../../src/net/pnet.ts'
import { SignedGossip, type VerifiedMessage } from '../../src/net/gossip.ts'
import { TOPICS } from '../../src/net/protocols.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'
import { generateSwarmKey } from '../../src/net/swarm-key.ts'

// gossipsub penalises more than 10 peers seen from one IP address; a federation on one machine
// (or behind one NAT) must not graylist itself
test('13 nodes on one address: the hub scores every peer >= 0 and relays to all', async () => {
  const N = 13
  const psk = generateSwarmKey()
  const ids = await Promise.all(Array.from({ length: N }, (_, i) => NodeIdentity.fromSeed(new Uint8Array(32).fill(i + 101))))
  const hosts: Host[] = await Promise.all(ids.map(id => createHost({ privateKey: id.libp2pKey, listen: ['/ip4/127.0.0.1/tcp/0'], protector: privateNetwork({ psk }), dht: false })))
  try {
    await Promise.all(hosts.map(h => h.start()))
    const gossips = hosts.map((h, i) => new SignedGossip(h.services.pubsub, { identity: ids[i]!, constitution: DEFAULT_CONSTITUTION }))
    gossips.forEach(g => g.start())
    const hub = hosts[0]!
    await Promise.all(hosts.slice(1).map(async h => await h.dial(hub.getMultiaddrs()[0]!)))

    const heartbeat = async (): Promise<void> => { await new Promise(resolve => { hub.services.pubsub.addEventListener('gossipsub:heartbeat', resolve, { once: true }) }) }
    while (hub.services.pubsub.getSubscribers(TOPICS.patterns).length < N - 1) await heartbeat()
    await heartbeat() // scores are refreshed on the heartbeat

    const scores = hosts.slice(1).map(h => gossipScore(hub, h.peerId.toString()))
    assert.ok(scores.every(s => s >= 0), `hub's scores of its 12 peers on 127.0.0.1: ${scores.map(s => s.toFixed(1)).join(' ')}`)

    const received = new Set<number>()
    gossips.forEach((g, i) => g.onMessage((m: VerifiedMessage) => { if (m.envelope.type === 'test.one-host') received.add(i) }))
    await gossips[N - 1]!.publish(TOPICS.patterns, 'test.one-host', { n: 1 })
    while (received.size < N - 1) await heartbeat()
    assert.deepEqual([...received].sort((a, b) => a - b), Array.from({ length: N - 1 }, (_, i) => i))
  } finally {
    await Promise.all(hosts.map(h => h.stop()))
  }
})
