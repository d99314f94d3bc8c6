import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { StreamState } from '@chainsafe/libp2p-yamux/stream'
import { createHost, type Host } from '../../src/net/host.ts'
import { privateNetwork } from '../../src/net/pnet.ts'
import { generateSwarmKey } from '../../src/net/swarm-key.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { windowUpdateCanWait, yamuxWindowUpdates } from '../../src/net/yamux-window.ts'
import { mulberry32 } from '../helpers/random.ts'

const SINK = '/bizra/test/window-sink/1.0.0'

async function twoHosts (): Promise<[Host, Host]> {
  const psk = generateSwarmKey()
  const ids = await Promise.all([NodeIdentity.fromSeed(new Uint8Array(32).fill(31)), NodeIdentity.fromSeed(new Uint8Array(32).fill(32))])
  const hosts = await Promise.all(ids.map(id => createHost({ privateKey: id.libp2pKey, listen: ['/ip4/127.0.0.1/tcp/0'], protector: privateNetwork({ psk }), dht: false })))
  await Promise.all(hosts.map(h => h.start()))
  return hosts as [Host, Host]
}

/** the receiver hashes what arrives; `arrived` resolves with the hash and byte count when the sender closes */
async function sink (host: Host): Promise<{ arrived: Promise<{ sha256: string, bytes: number }> }> {
  let done!: (r: { sha256: string, bytes: number }) => void
  const result = new Promise<{ sha256: string, bytes: number }>(resolve => { done = resolve })
  await host.handle(SINK, async (stream: Stream) => {
    const h = createHash('sha256')
    let bytes = 0
    for await (const data of stream) {
      h.update(data.subarray())
      bytes += data.byteLength
    }
    done({ sha256: h.digest('hex'), bytes })
  })
  return { arrived: result }
}

async function send (from: Host, to: Host, chunks: Uint8Array[]): Promise<string> {
  const h = createHash('sha256')
  const stream = await from.dialProtocol(to.getMultiaddrs()[0]!, SINK)
  for (const c of chunks) {
    h.update(c)
    if (!stream.send(c)) await stream.onDrain()
  }
  await stream.close()
  return h.digest('hex')
}

test('an update waits while less than half the window is used, unless it carries SYN/ACK', () => {
  const w = 256 * 1024
  assert.equal(windowUpdateCanWait({ state: StreamState.Established, recvWindow: w, recvWindowCapacity: w - 500 }), true)
  assert.equal(windowUpdateCanWait({ state: StreamState.Established, recvWindow: w, recvWindowCapacity: w / 2 }), false)
  assert.equal(windowUpdateCanWait({ state: StreamState.Finished, recvWindow: w, recvWindowCapacity: w - 1 }), true)
  assert.equal(windowUpdateCanWait({ state: StreamState.Init, recvWindow: w, recvWindowCapacity: w - 1 }), false)
  assert.equal(windowUpdateCanWait({ state: StreamState.SYNReceived, recvWindow: w, recvWindowCapacity: w - 1 }), false)
})

test('many small messages on one stream: one window update per half window, every byte arrives', async () => {
  const [a, b] = await twoHosts()
  try {
    const { arrived } = await sink(b)
    const rand = mulberry32(3)
    const chunks = Array.from({ length: 2000 }, () => Uint8Array.from({ length: 500 }, () => Math.floor(rand() * 256)))
    const before = { ...yamuxWindowUpdates }
    const sent = await send(a, b, chunks)
    const got = await arrived
    assert.equal(got.bytes, 2000 * 500)
    assert.equal(got.sha256, sent)
    const considered = yamuxWindowUpdates.considered - before.considered
    const updates = considered - (yamuxWindowUpdates.waited - before.waited)
    // 1 MB through a 256 KiB window: ~8 updates (128 KiB each), not one per frame
    assert.ok(considered >= 1000, `window updates considered: ${considered}`)
    assert.ok(updates <= 40, `window updates sent: ${updates} of ${considered} considered`)
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
})

test('a 64 MiB stream through the private network completes with the right hash (the window still grows)', { timeout: 60_000 }, async () => {
  const [a, b] = await twoHosts()
  try {
    const { arrived } = await sink(b)
    const rand = mulberry32(4)
    const pool = Uint8Array.from({ length: 1024 * 1024 + 65536 }, () => Math.floor(rand() * 256))
    const chunks = Array.from({ length: 1024 }, (_, i) => pool.subarray((i * 4099) % 1024 * 1024, (i * 4099) % 1024 * 1024 + 65536))
    const sent = await send(a, b, chunks)
    const got = await arrived
    assert.equal(got.bytes, 64 * 1024 * 1024)
    assert.equal(got.sha256, sent)
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
})
