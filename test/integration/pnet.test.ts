import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createConnection } from 'node:net'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { preSharedKey } from '@libp2p/pnet'
import type { ConnectionProtector, Stream } from '@libp2p/interface'
import { privateNetwork } from '../../src/net/pnet.ts'
import { formatSwarmKey, generateSwarmKey } from '../../src/net/swarm-key.ts'
import { transfer } from '../bench/transport.ts'
import { createHost } from '../../src/net/host.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'

const PROTOCOL = '/bizra/test/checksum/1.0.0'

async function node (protector: () => ConnectionProtector): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionProtector: protector,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}

/** Sends `mib` MiB of seeded bytes a -> b and returns the SHA-256 each side computed. */
async function checksummed (a: Libp2p, b: Libp2p, mib: number): Promise<[string, string]> {
  const received = new Promise<string>((resolve, reject) => {
    void b.handle(PROTOCOL, async (stream: Stream) => {
      const h = createHash('sha256')
      try {
        for await (const chunk of stream) h.update(chunk.subarray())
        resolve(h.digest('hex'))
      } catch (err) { reject(err) }
    })
  })
  const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL)
  const sent = createHash('sha256')
  for (let i = 0; i < mib * 16; i++) {
    const chunk = new Uint8Array(64 * 1024).map((_, k) => (k * 31 + i * 7) & 0xff)
    sent.update(chunk)
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await stream.close()
  return [sent.digest('hex'), await received]
}

describe('private network protector', () => {
  test('interoperates with stock @libp2p/pnet in both directions', async () => {
    const key = generateSwarmKey()
    const ours = await node(privateNetwork({ psk: key }))
    const stock = await node(preSharedKey({ psk: new TextEncoder().encode(formatSwarmKey(key)) }))
    try {
      const [s1, r1] = await checksummed(ours, stock, 4)
      assert.equal(r1, s1)
      const [s2, r2] = await checksummed(stock, ours, 4)
      assert.equal(r2, s2)
    } finally {
      await Promise.all([ours.stop(), stock.stop()])
    }
  })

  test('carries one 256 MiB stream to the end', async () => {
    const psk = generateSwarmKey()
    const hosts = await Promise.all([1, 2].map(async i => createHost({
      privateKey: (await NodeIdentity.fromSeed(new Uint8Array(32).fill(40 + i))).libp2pKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      protector: privateNetwork({ psk })
    })))
    await Promise.all(hosts.map(h => h.start()))
    try {
      const mibps = await transfer(hosts[0]!, hosts[1]!, 256) // throws unless every byte arrived
      assert.ok(mibps > 0)
    } finally {
      await Promise.all(hosts.map(h => h.stop()))
    }
  })

  test('a peer with another key cannot connect', async () => {
    const a = await node(privateNetwork({ psk: generateSwarmKey() }))
    const b = await node(privateNetwork({ psk: generateSwarmKey() }))
    try {
      await assert.rejects(b.dial(a.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) }))
      assert.equal(a.getConnections().length, 0)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  test('a raw TCP client learns nothing: no multistream header, no PeerId, and the connection dies', async () => {
    const a = await node(privateNetwork({ psk: generateSwarmKey() }))
    try {
      const port = Number(/\/tcp\/(\d+)/.exec(a.getMultiaddrs()[0]!.toString())![1])
      const socket = createConnection({ host: '127.0.0.1', port })
      const received: Buffer[] = []
      socket.on('data', d => received.push(d))
      socket.on('error', () => {}) // a reset is one way for the node to end it
      await new Promise(resolve => socket.once('connect', resolve))
      // speak plaintext libp2p, as a peer without the key would
      socket.write(Buffer.concat([Buffer.from([19]), Buffer.from('/multistream/1.0.0\n'), Buffer.from([7]), Buffer.from('/noise\n')]))
      const ended = await Promise.race([
        new Promise<'closed'>(resolve => socket.once('close', () => resolve('closed'))),
        new Promise<'open'>(resolve => setTimeout(() => resolve('open'), 12_000).unref())
      ])
      socket.destroy()
      const all = Buffer.concat(received)
      assert.equal(ended, 'closed', 'the node must drop the connection')
      assert.ok(!all.includes(Buffer.from('multistream')), 'no multistream header in the clear')
      assert.ok(!all.includes(Buffer.from('noise')), 'no protocol names in the clear')
      assert.ok(!all.includes(Buffer.from(a.peerId.toString())), 'no PeerId string')
      assert.ok(!all.includes(Buffer.from(a.peerId.toMultihash().bytes)), 'no PeerId bytes')
      assert.ok(all.length <= 24 + 64, `only a nonce and noise came back (${all.length} bytes)`)
    } finally {
      await a.stop()
    }
  })
})
