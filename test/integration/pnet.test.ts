import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createConnection } from 'node:net'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { xsalsa20 } from '@noble/ciphers/salsa.js'
import type { ConnectionProtector, Stream } from '@libp2p/interface'
import { createXSalsa20Stream, privateNetwork, PrivateNetworkError, DEFAULT_XSALSA20_BACKEND } from '../../src/net/pnet.ts'
import { formatSwarmKey, generateSwarmKey } from '../../src/net/swarm-key.ts'

type Node = Libp2p<{ identify: Identify, ping: Ping }>
type Protector = (components: any) => ConnectionProtector

const ECHO = '/bizra/test/echo/1.0.0'
const SINK = '/bizra/test/sink/1.0.0'
const CHUNK = 64 * 1024

async function node (protector: Protector, inboundUpgradeTimeout?: number): Promise<Node> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionProtector: protector,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: inboundUpgradeTimeout === undefined ? undefined : { inboundUpgradeTimeout },
    services: { identify: identify(), ping: ping() }
  })
}

/** `preSharedKey` from @libp2p/pnet takes the swarm.key file's bytes, not the raw key. */
const stockProtector = (key: Uint8Array): Protector => preSharedKey({ psk: new TextEncoder().encode(formatSwarmKey(key)) })

function tcpPort (n: Libp2p): number {
  const port = n.getMultiaddrs()[0]!.getComponents().find(c => c.name === 'tcp')?.value
  assert.ok(port !== undefined, 'the node listens on TCP')
  return Number(port)
}

/** The node's TCP address without /p2p/<id>: a dialer that uses it knows no PeerId beforehand. */
const tcpAddress = (n: Libp2p): Multiaddr => multiaddr(`/ip4/127.0.0.1/tcp/${tcpPort(n)}`)

/** Deterministic, varied payload: chunk i is a window into a random pool (views; never mutated). */
function payload (mib: number): { chunks: () => Generator<Uint8Array>, sha256: () => string } {
  const pool = randomBytes(1024 * 1024 + CHUNK)
  const count = mib * 1024 * 1024 / CHUNK
  const chunks = function * (): Generator<Uint8Array> {
    for (let i = 0; i < count; i++) {
      const at = (i * 7919) % (pool.length - CHUNK)
      yield pool.subarray(at, at + CHUNK)
    }
  }
  const sha256 = (): string => {
    const h = createHash('sha256')
    for (const c of chunks()) h.update(c)
    return h.digest('hex')
  }
  return { chunks, sha256 }
}

async function sendAll (stream: Stream, chunks: Iterable<Uint8Array>): Promise<void> {
  for (const c of chunks) {
    if (!stream.send(c)) await stream.onDrain()
  }
  await stream.close()
}

async function hashAll (stream: Stream): Promise<{ sha256: string, bytes: number }> {
  const h = createHash('sha256')
  let bytes = 0
  for await (const data of stream) {
    h.update(data.subarray())
    bytes += data.byteLength
  }
  return { sha256: h.digest('hex'), bytes }
}

/** The dialer sends `mib` MiB on one stream; the listener echoes it back; both ways are hashed. */
async function echoChecked (dialer: Libp2p, listener: Libp2p, mib: number): Promise<void> {
  await listener.handle(ECHO, async (stream: Stream) => {
    for await (const data of stream) {
      if (!stream.send(data)) await stream.onDrain()
    }
    await stream.close()
  })
  const data = payload(mib)
  const stream = await dialer.dialProtocol(listener.getMultiaddrs()[0]!, ECHO)
  const [, back] = await Promise.all([sendAll(stream, data.chunks()), hashAll(stream)])
  assert.equal(back.bytes, mib * 1024 * 1024)
  assert.equal(back.sha256, data.sha256())
}

async function stopAll (...nodes: Libp2p[]): Promise<void> {
  await Promise.all(nodes.map(async n => n.stop()))
}

describe('private network protector (src/net/pnet.ts)', () => {
  test('XSalsa20 keystream runs on across arbitrary chunk boundaries, on libsodium and on noble', { timeout: 10_000 }, () => {
    assert.equal(DEFAULT_XSALSA20_BACKEND, 'libsodium', 'sodium-native should load here')
    for (const backend of ['libsodium', 'noble'] as const) {
      for (let trial = 0; trial < 8; trial++) {
        const key = randomBytes(32)
        const nonce = randomBytes(24)
        const message = randomBytes(1 + (trial * 40_503) % 200_000)
        const expected = xsalsa20(key, nonce, message) // one shot, independent implementation
        const stream = createXSalsa20Stream(nonce, key, backend)
        const out = Buffer.from(message)
        for (let at = 0, step = 1; at < out.length; step = (step * 37 + 11) % 70_001) {
          const end = Math.min(out.length, at + (step % 3 === 0 ? step % 64 : step))
          stream.update(out.subarray(at, end), out.subarray(at, end)) // in place
          at = end
        }
        assert.ok(out.equals(expected), `${backend} trial ${trial}`)
      }
    }
  })

  test('a peer that sends under 24 nonce bytes and closes fails with PrivateNetworkError', { timeout: 10_000 }, async () => {
    const [outbound, inbound] = multiaddrConnectionPair()
    const protector = privateNetwork({ psk: generateSwarmKey() })()
    const rejected = assert.rejects(protector.protect(inbound), (err: Error) => {
      assert.ok(err instanceof PrivateNetworkError)
      assert.equal(err.name, 'PrivateNetworkError')
      assert.equal(PrivateNetworkError.name, 'PrivateNetworkError')
      assert.match(err.message, /10\/24/)
      return true
    })
    outbound.send(new Uint8Array(10))
    await outbound.close()
    await rejected
    assert.notEqual(inbound.status, 'open')
  })

  test('bytes that arrive in the same chunk as the nonce are decrypted, not lost', { timeout: 10_000 }, async () => {
    const key = generateSwarmKey()
    const [raw, inbound] = multiaddrConnectionPair()
    const protecting = privateNetwork({ psk: key })().protect(inbound)
    // the remote end, by hand: its nonce and its first ciphertext in one write
    const nonce = randomBytes(24)
    const hello = Buffer.from('hello from the other side of the dark mesh')
    raw.send(Buffer.concat([nonce, xsalsa20(key, nonce, hello)]))
    const conn = await protecting
    const got: Buffer[] = []
    await new Promise<void>(resolve => {
      conn.addEventListener('message', (evt) => {
        got.push(Buffer.from(evt.data.subarray()))
        if (Buffer.concat(got).length >= hello.length) resolve()
      })
    })
    assert.equal(Buffer.concat(got).toString(), hello.toString())
    await Promise.all([conn.close(), raw.close()])
  })

  test('the nonce exchange times out, and honours the caller\'s signal', { timeout: 10_000 }, async () => {
    const [, silent] = multiaddrConnectionPair()
    await assert.rejects(privateNetwork({ psk: generateSwarmKey(), handshakeTimeoutMs: 100 })().protect(silent), (err: Error) => {
      assert.ok(err instanceof PrivateNetworkError)
      assert.match(err.message, /within 100 ms/)
      return true
    })
    const [, silent2] = multiaddrConnectionPair()
    await assert.rejects(privateNetwork({ psk: generateSwarmKey() })().protect(silent2, { signal: AbortSignal.timeout(50) }), (err: Error) => {
      assert.ok(err instanceof PrivateNetworkError)
      assert.match(err.message, /aborted/)
      return true
    })
  })

  test('two nodes with the same swarm key connect and ping', { timeout: 10_000 }, async () => {
    const key = generateSwarmKey()
    const a = await node(privateNetwork({ psk: key }))
    const b = await node(privateNetwork({ psk: key }))
    try {
      const rtt = await a.services.ping.ping(b.getMultiaddrs()[0]!)
      assert.ok(rtt >= 0)
      assert.equal(a.getConnections(b.peerId).length, 1)
      assert.equal(b.getConnections(a.peerId).length, 1)
    } finally {
      await stopAll(a, b)
    }
  })

  test('interoperates with stock @libp2p/pnet: 4 MiB echoed with SHA-256, each side dialling', { timeout: 20_000 }, async () => {
    const key = generateSwarmKey()
    const cases: Array<[string, Protector, Protector]> = [
      ['ours dials stock', privateNetwork({ psk: key }), stockProtector(key)],
      ['stock dials ours', stockProtector(key), privateNetwork({ psk: key })],
      ['ours (noble backend) dials stock', privateNetwork({ psk: key, backend: 'noble' }), stockProtector(key)]
    ]
    for (const [name, dialerProtector, listenerProtector] of cases) {
      const dialer = await node(dialerProtector)
      const listener = await node(listenerProtector)
      try {
        await echoChecked(dialer, listener, 4)
      } catch (err) {
        assert.fail(`${name}: ${(err as Error)?.stack ?? String(err)}`)
      } finally {
        await stopAll(dialer, listener)
      }
    }
  })

  test('carries one 256 MiB stream to the end with the right SHA-256', { timeout: 45_000 }, async () => {
    const key = generateSwarmKey()
    const a = await node(privateNetwork({ psk: key }))
    const b = await node(privateNetwork({ psk: key }))
    try {
      const data = payload(256)
      const received = new Promise<{ sha256: string, bytes: number }>((resolve, reject) => {
        void b.handle(SINK, async (stream: Stream) => { hashAll(stream).then(resolve, reject) })
      })
      const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, SINK)
      await sendAll(stream, data.chunks())
      const got = await received
      assert.equal(got.bytes, 256 * 1024 * 1024)
      assert.equal(got.sha256, data.sha256())
    } finally {
      await stopAll(a, b)
    }
  })

  test('a node with another swarm key cannot connect and learns no PeerId', { timeout: 10_000 }, async () => {
    // without the key the listener sees garbage: multistream-select either rejects it at once or
    // waits for more bytes until the upgrade timeout (shortened here) drops the connection
    const a = await node(privateNetwork({ psk: generateSwarmKey() }), 1_000)
    const b = await node(privateNetwork({ psk: generateSwarmKey() }))
    const events: string[] = []
    for (const n of [a, b]) {
      for (const type of ['peer:connect', 'peer:identify', 'connection:open'] as const) {
        n.addEventListener(type, () => { events.push(type) })
      }
    }
    try {
      await assert.rejects(b.dial(tcpAddress(a), { signal: AbortSignal.timeout(10_000) }))
      assert.deepEqual(events, [])
      assert.equal(a.getConnections().length, 0)
      assert.equal(b.getConnections().length, 0)
      assert.equal(await b.peerStore.has(a.peerId), false, 'the dialer must not learn the PeerId')
      assert.equal(await a.peerStore.has(b.peerId), false, 'the listener must not learn the PeerId')
    } finally {
      await stopAll(a, b)
    }
  })

  describe('a raw TCP client learns nothing and the connection dies', () => {
    const multistreamHeader = Buffer.concat([Buffer.from([19]), Buffer.from('/multistream/1.0.0\n'), Buffer.from([7]), Buffer.from('/noise\n')])
    const probes: Array<[string, Buffer]> = [
      ['plaintext multistream header', multistreamHeader],
      ['garbage', randomBytes(24 + 4096)]
    ]
    for (const [name, probe] of probes) {
      test(name, { timeout: 10_000 }, async () => {
        // a keyless peer is only dropped when the layer above the protector fails or gives up:
        // a short upgrade timeout bounds the case where the garbage asks it to wait for more
        const a = await node(privateNetwork({ psk: generateSwarmKey() }), 1_000)
        try {
          const socket = createConnection({ host: '127.0.0.1', port: tcpPort(a) })
          const received: Buffer[] = []
          socket.on('data', (d: Buffer) => { received.push(d) })
          socket.on('error', () => {}) // a reset is one way for the node to end it
          const closed = new Promise<'closed'>(resolve => socket.once('close', () => { resolve('closed') }))
          await new Promise<void>((resolve, reject) => {
            socket.once('connect', resolve)
            socket.once('error', reject)
          })
          socket.write(probe)
          let timer: NodeJS.Timeout | undefined
          const outcome = await Promise.race([
            closed,
            new Promise<'open'>(resolve => { timer = setTimeout(() => { resolve('open') }, 2_000) })
          ])
          clearTimeout(timer)
          socket.destroy()
          const all = Buffer.concat(received)
          assert.ok(!all.includes(Buffer.from('multistream')), 'no multistream header in the clear')
          assert.ok(!all.includes(Buffer.from('/noise')), 'no protocol names in the clear')
          assert.ok(!all.includes(Buffer.from(a.peerId.toString())), 'no PeerId string')
          assert.ok(!all.includes(Buffer.from(a.peerId.toMultihash().bytes)), 'no PeerId bytes')
          assert.ok(!all.includes(Buffer.from(a.peerId.publicKey!.raw)), 'no public key bytes')
          assert.equal(outcome, 'closed', 'the node must drop the connection')
          assert.equal(a.getConnections().length, 0)
        } finally {
          await a.stop()
        }
      })
    }
  })
})
