import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createEnvelope } from '../../src/pci/envelope.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { TOPICS } from '../../src/net/protocols.ts'
import { gossipScore } from '../../src/net/host.ts'
import type { BizraNode } from '../../src/node/node.ts'
import type { VerifiedMessage } from '../../src/net/gossip.ts'
import { startTestNode, swarmKeyFile, until } from '../helpers/nodes.ts'

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))

describe('a federation of 5 real nodes over loopback TCP', () => {
  const key = swarmKeyFile()
  let nodes: BizraNode[] = []
  let boot: BizraNode

  before(async () => {
    boot = await startTestNode({ swarmKey: key })
    const others = await Promise.all([1, 2, 3, 4].map(() => startTestNode({ swarmKey: key, bootstrap: [boot.addresses()[0]!] })))
    nodes = [boot, ...others]
  })

  after(async () => {
    await Promise.all(nodes.map(n => n.stop()))
  })

  test('all join through one bootstrap node and reach ACTIVE', async () => {
    await until(nodes, () => nodes.every(n => n.status().state === 'ACTIVE' &&
      nodes.filter(o => o !== n).every(o => n.peers().find(p => p.peerId === o.peerId)?.state === 'ACTIVE')),
    'every node ACTIVE with the 4 others ACTIVE in its view')
    for (const n of nodes) assert.equal(n.status().peers, 4)
  })

  test('a published envelope reaches every other node, verified', async () => {
    const received = new Map<string, VerifiedMessage>()
    const offs = nodes.map(n => n.gossip.onMessage(m => {
      if (m.topic === TOPICS.patterns && m.envelope.type === 'test.hello') received.set(n.peerId, m)
    }))
    // wait until the mesh carries the topic to everyone, then publish once
    await until(nodes, () => nodes.slice(1).every(n => boot.libp2p.services.pubsub.getSubscribers(TOPICS.patterns).some(p => p.equals(n.libp2p.peerId)) ||
      n.libp2p.services.pubsub.getSubscribers(TOPICS.patterns).length > 0), 'subscriptions known')
    const { envelope } = await boot.gossip.publish(TOPICS.patterns, 'test.hello', { hello: 'federation' })
    await until(nodes, () => received.size === 4, 'delivery to 4 nodes')
    for (const n of nodes.slice(1)) {
      const m = received.get(n.peerId)!
      assert.equal(m.envelope.sender, boot.peerId)
      assert.equal(m.envelope.sig, envelope.sig)
      assert.deepEqual(m.envelope.payload, { hello: 'federation' })
    }
    offs.forEach(off => off())
  })

  test('a tampered or forged envelope is delivered to nobody and costs the sender gossip score', async () => {
    const delivered: string[] = []
    const offs = nodes.map(n => n.gossip.onMessage(m => {
      if (m.envelope.type === 'test.evil') delivered.push(n.peerId)
    }))
    const sender = nodes[1]!
    const victim = nodes[0]!
    const scoreBefore = gossipScore(victim.libp2p, sender.peerId)
    const rejectedAt = new Set<string>()
    // the sender's honest heartbeats keep arriving, so read the victim's view of it at the
    // moment of each rejection, not later
    let lowestBelief = 1
    const offRejected = nodes.map(n => n.onEvent(e => {
      if (e.type === 'message:rejected' && e.from === sender.peerId) {
        rejectedAt.add(n.peerId)
        if (n === victim) lowestBelief = Math.min(lowestBelief, victim.peers().find(p => p.peerId === sender.peerId)?.belief ?? 1)
      }
    }))

    const tampered = createEnvelope(sender.identity, { type: 'test.evil', payload: { amount: 1 } })
    tampered.payload = { amount: 1_000_000 }
    const stranger = await NodeIdentity.generate()
    const forged = { ...createEnvelope(stranger, { type: 'test.evil', payload: { x: 1 } }), sender: sender.peerId }
    for (const bad of [tampered, forged]) await sender.gossip.publishRaw(TOPICS.patterns, encode(bad))
    await sender.gossip.publishRaw(TOPICS.patterns, new TextEncoder().encode('{not json'))

    await until(nodes, () => rejectedAt.size >= 1 && gossipScore(victim.libp2p, sender.peerId) < scoreBefore,
      'victim rejects and lowers the sender score')
    assert.deepEqual(delivered, [])
    assert.ok(gossipScore(victim.libp2p, sender.peerId) < 0, 'score went negative')
    assert.ok(lowestBelief < 0.9, `NTU belief fell (${lowestBelief})`)
    offs.forEach(off => off())
    offRejected.forEach(off => off())
  })
})

describe('dark mesh at node level', () => {
  test('a node with another swarm key cannot connect and learns no PeerId', async () => {
    const a = await startTestNode({ swarmKey: swarmKeyFile() })
    const b = await startTestNode({ swarmKey: swarmKeyFile() })
    try {
      // dial the bare TCP address: whatever b learns, it can only learn from the wire
      const bare = a.addresses()[0]!.replace(/\/p2p\/.*$/, '')
      await assert.rejects(b.dial(bare, AbortSignal.timeout(5_000)))
      assert.equal(b.libp2p.getConnections().length, 0)
      assert.equal(a.libp2p.getConnections().length, 0)
      assert.equal(b.peers().length, 0)
      const known = await b.libp2p.peerStore.all()
      assert.ok(!known.some(p => p.id.toString() === a.peerId), 'b must not learn a PeerId')
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
