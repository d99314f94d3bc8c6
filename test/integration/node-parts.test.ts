import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { memory } from '@libp2p/memory'
import { BizraNode } from '../../src/node/node.ts'
import { DEFAULT_CONFIG } from '../../src/node/config.ts'
import { soloGenesis } from '../../src/node/genesis.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { until } from '../helpers/nodes.ts'
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'

/** N identities of one federation; `make(i, bootstrap)` builds node i in memory (store and transport) */
async function memoryFederation (n: number, name: string, parts: { dht?: boolean } = {}): Promise<(i: number, bootstrap: string[]) => Promise<BizraNode>> {
  const swarmKey = randomBytes(32)
  const ids = await Promise.all(Array.from({ length: n }, async () => await NodeIdentity.generate()))
  const genesis = { ...soloGenesis(ids[0]!.id), validators: ids.map(i => i.id), federationId: name }
  return async (i, bootstrap) => {
    const db = new MemoryLevel<string, string>()
    await db.open()
    return BizraNode.create({
      identity: ids[i]!,
      swarmKey,
      genesis,
      config: { ...DEFAULT_CONFIG, listen: [`/memory/${name}-${i}-${ids[i]!.id.slice(-6)}`], bootstrap, api: null, heartbeatMs: 200 },
      db,
      transport: memory(),
      ...parts,
      logger: false,
      ipc: false
    })
  }
}

describe('a node built from parts (no home): in-memory store and transport', () => {
  test('two nodes over @libp2p/memory join, route a task and stop cleanly', async () => {
    const make = await memoryFederation(2, 'mem-test')
    const a = await make(0, [])
    const b = await make(1, [a.addresses()[0]!])
    try {
      assert.match(a.addresses()[0]!, /^\/memory\//)
      await until([a, b], () => a.peers().some(p => p.peerId === b.peerId && p.state === 'ACTIVE') && b.peers().some(p => p.peerId === a.peerId && p.state === 'ACTIVE'), 'both ACTIVE')
      b.skills.register({ id: 'upper', name: 'Upper', description: '', tags: [], inputModes: ['text/plain'], outputModes: ['text/plain'] },
        async m => ({ parts: m.parts.map(p => 'text' in p ? { text: p.text.toUpperCase() } : p) }))
      await until([a, b], () => a.a2a.directory.providers('upper').includes(b.peerId), 'a knows b offers upper')
      const t = await a.tasks.waitTask((await a.tasks.sendTask({ skill: 'upper', message: { parts: [{ text: 'memory' }] } })).id)
      assert.equal(t.state, 'completed', JSON.stringify(t.error))
      assert.deepEqual(t.result, [{ text: 'MEMORY' }])
      assert.equal(a.paths, null)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  test('a late joiner gets the card of a peer it is not connected to from the neighbour that forwarded its heartbeat, never dials it for it, and can send it a task', async () => {
    const make = await memoryFederation(3, 'relay-test', { dht: false }) // no DHT walk that could connect a and c
    // b in the middle; c offers a skill and b holds c's card before a exists, so c's card is
    // not gossiped again while a is there (cards are republished every 5 minutes)
    const b = await make(1, [])
    const c = await make(2, [b.addresses()[0]!])
    const nodes = [b, c]
    try {
      c.skills.register({ id: 'upper', name: 'Upper', description: '', tags: [], inputModes: ['text/plain'], outputModes: ['text/plain'] },
        async m => ({ parts: m.parts.map(p => 'text' in p ? { text: p.text.toUpperCase() } : p) }))
      await until(nodes, () => b.a2a.directory.providers('upper').includes(c.peerId), 'b holds c\'s card')
      const a = await make(0, [b.addresses()[0]!])
      nodes.push(a)
      let aConnectedToC = false
      a.libp2p.addEventListener('peer:connect', e => { if (e.detail.toString() === c.peerId) aConnectedToC = true })
      await until(nodes, () => a.a2a.directory.providers('upper').includes(c.peerId), 'a holds c\'s card')
      assert.equal(aConnectedToC, false, 'a dialled c for its card')
      assert.equal(a.libp2p.getConnections(peerIdFromString(c.peerId)).length, 0)
      const envelope = a.a2a.directory.envelope(c.peerId)
      assert.equal(envelope?.sender, c.peerId, 'the card a holds is the one c signed')
      assert.deepEqual(a.a2a.directory.card(c.peerId), c.a2a.agentCard())
      // c's heartbeat gave a its addresses: a task reaches c by PeerId, with no DHT to look it up
      const t = await a.tasks.waitTask((await a.tasks.sendTask({ skill: 'upper', message: { parts: [{ text: 'relay' }] } })).id)
      assert.equal(t.state, 'completed', JSON.stringify(t.error))
      assert.deepEqual(t.result, [{ text: 'RELAY' }])
    } finally {
      await Promise.all(nodes.map(async n => await n.stop()))
    }
  })

  test('asking a node without a home for an API or IPC socket is a clear error, and the store is closed', async () => {
    const db = new MemoryLevel<string, string>()
    await db.open()
    const identity = await NodeIdentity.generate()
    await assert.rejects(BizraNode.create({ identity, swarmKey: randomBytes(32), genesis: soloGenesis(identity.id), config: { ...DEFAULT_CONFIG, listen: ['/memory/x'], api: '127.0.0.1:0' }, db, transport: memory(), logger: false }), /neither the API nor the IPC socket/)
    assert.equal(db.status, 'closed')
  })
})
