/**
 * npm run bench:transport — one stream of BENCH_MIB (default 256) MiB between two nodes in one
 * process over loopback TCP, with the private network (swarm key) and without it, same run.
 * Last line: one JSON object.
 */
import { createHost, type Host } from '../../src/net/host.ts'
import { privateNetwork } from '../../src/net/pnet.ts'
import { generateSwarmKey } from '../../src/net/swarm-key.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import type { Stream } from '@libp2p/interface'

const MIB = Number(process.env.BENCH_MIB ?? 256)
const PROTOCOL = '/bizra/bench/bulk/1.0.0'
const CHUNK = 64 * 1024

/** Sends MIB MiB on one stream; resolves with MiB/s once the receiver has counted every byte. */
export async function transfer (a: Host, b: Host, mib: number): Promise<number> {
  const total = mib * 1024 * 1024
  const received = new Promise<number>((resolve, reject) => {
    void b.handle(PROTOCOL, async (stream: Stream) => {
      let n = 0
      try {
        for await (const chunk of stream) n += chunk.byteLength
        resolve(n)
      } catch (err) {
        reject(err)
      }
    })
  })
  const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL)
  const chunk = new Uint8Array(CHUNK).fill(7)
  const t0 = performance.now()
  for (let sent = 0; sent < total; sent += CHUNK) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await stream.close()
  const n = await received
  const seconds = (performance.now() - t0) / 1000
  await b.unhandle(PROTOCOL)
  if (n !== total) throw new Error(`received ${n} of ${total} bytes`)
  return mib / seconds
}

async function pair (withKey: boolean): Promise<[Host, Host]> {
  const psk = generateSwarmKey()
  const hosts = await Promise.all([1, 2].map(async i => createHost({
    privateKey: (await NodeIdentity.fromSeed(new Uint8Array(32).fill(i))).libp2pKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    protector: withKey ? privateNetwork({ psk }) : undefined
  })))
  await Promise.all(hosts.map(h => h.start()))
  return hosts as [Host, Host]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // alternate plain and private rounds so drift of this shared machine hits both alike
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
  const samples: Record<'plain' | 'pnet', number[]> = { plain: [], pnet: [] }
  let failure: string | undefined
  for (let r = 0; r < ROUNDS && failure === undefined; r++) {
    for (const [name, withKey] of [['plain', false], ['pnet', true]] as const) {
      const [a, b] = await pair(withKey)
      try {
        samples[name].push(await transfer(a, b, MIB))
      } catch (err) {
        failure = `${name}: ${(err as Error)?.message ?? String(err)}`
      } finally {
        await Promise.all([a.stop(), b.stop()])
      }
    }
  }
  const med = (xs: number[]): number => xs.slice().sort((x, y) => x - y)[xs.length >> 1] ?? 0
  const pnet = Math.round(med(samples.pnet) * 10) / 10
  const plain = Math.round(med(samples.plain) * 10) / 10
  console.log(`node ${process.version}; one stream of ${MIB} MiB over loopback TCP + Noise + yamux; median of ${ROUNDS} alternating rounds`)
  console.log(`plain MiB/s ${samples.plain.map(x => x.toFixed(0)).join(', ')}; private network MiB/s ${samples.pnet.map(x => x.toFixed(0)).join(', ')}`)
  if (failure !== undefined) console.log(`FAILED: ${failure}`)
  console.log(JSON.stringify({ bench: 'transport', mib: MIB, pnetMiBps: pnet, plainMiBps: plain, ratio: failure === undefined ? Math.round(pnet / plain * 1000) / 1000 : 0 }))
  process.exit(failure === undefined ? 0 : 1)
}
