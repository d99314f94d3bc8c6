/**
 * npm run bench:transport — one stream of BENCH_MIB (default 256) MiB between two libp2p nodes in
 * this process over loopback TCP + Noise + yamux, with our private network (src/net/pnet.ts) and
 * without any protector, in the same run; then the same stream over stock @libp2p/pnet, capped
 * by a timeout, with its failure caught and reported.
 *
 * The two modes alternate for BENCH_ROUNDS (default 3) rounds after one full-size warm-up each, and
 * each mode reports the median of its rounds, so a burst of load from elsewhere on the machine
 * does not land on one mode only. Every line but the last is context; the last line is one JSON
 * object: {"bench":"transport","mib":…,"pnetMiBps":…,"plainMiBps":…,"ratio":…,"stockPnet":{…}}.
 */
import { cpus, loadavg } from 'node:os'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { preSharedKey } from '@libp2p/pnet'
import type { ConnectionProtector, Stream } from '@libp2p/interface'
import { DEFAULT_XSALSA20_BACKEND, privateNetwork } from '../../src/net/pnet.ts'
import { formatSwarmKey, generateSwarmKey } from '../../src/net/swarm-key.ts'

const MIB = Number(process.env.BENCH_MIB ?? 256)
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
const STOCK_TIMEOUT_MS = Number(process.env.BENCH_STOCK_TIMEOUT_MS ?? 60_000)
const PROTOCOL = '/bizra/bench/bulk/1.0.0'
const CHUNK = 64 * 1024

type Protector = (components: any) => ConnectionProtector

async function pair (protector: Protector | undefined): Promise<[Libp2p, Libp2p]> {
  const make = async (): Promise<Libp2p> => createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionProtector: protector,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
  return Promise.all([make(), make()])
}

/**
 * Sends `mib` MiB a -> b on one new stream and resolves with MiB/s, measured from the first byte
 * sent to the receiver having counted the last one. Rejects if the stream or connection fails,
 * if fewer bytes arrive, or when `signal` aborts.
 */
export async function transfer (a: Libp2p, b: Libp2p, mib: number, signal?: AbortSignal): Promise<number> {
  const total = mib * 1024 * 1024
  const chunk = new Uint8Array(CHUNK).map((_, i) => (i * 131 + 7) & 0xff)
  const received = new Promise<number>((resolve, reject) => {
    void b.handle(PROTOCOL, async (stream: Stream) => {
      let n = 0
      try {
        for await (const data of stream) n += data.byteLength
        resolve(n)
      } catch (err) {
        reject(err)
      }
    }, { force: true })
  })
  received.catch(() => {}) // observed below; avoid an unhandled rejection if sending fails first
  const aborted = new Promise<never>((_resolve, reject) => {
    if (signal?.aborted === true) reject(signal.reason)
    signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })
  aborted.catch(() => {})
  const run = async (): Promise<number> => {
    const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL, { signal })
    const t0 = performance.now()
    for (let sent = 0; sent < total; sent += CHUNK) {
      if (!stream.send(chunk)) await stream.onDrain({ signal })
    }
    await stream.close({ signal })
    const n = await received
    const seconds = (performance.now() - t0) / 1000
    if (n !== total) throw new Error(`received ${n} of ${total} bytes`)
    return mib / seconds
  }
  try {
    return await Promise.race([run(), aborted])
  } finally {
    await b.unhandle(PROTOCOL).catch(() => {})
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
const round1 = (x: number): number => Math.round(x * 10) / 10
const message = (err: unknown): string => {
  if (err instanceof Event) {
    const inner = (err as Event & { error?: unknown }).error
    return inner !== undefined ? message(inner) : `stream ${err.type} event`
  }
  const e = err as { name?: string, message?: string } | undefined
  return e?.message !== undefined && e.message !== '' ? `${e.name ?? 'Error'}: ${e.message}` : String(err)
}

/** Wraps a protector factory to keep the error each protected connection closed with, if any. */
function recordingCloseErrors (factory: Protector, errors: unknown[]): Protector {
  return (components) => {
    const protector = factory(components)
    return {
      [Symbol.toStringTag]: 'recording protector',
      async protect (connection, options) {
        const protectedConnection = await protector.protect(connection, options)
        protectedConnection.addEventListener('close', (evt) => {
          if (evt.error != null) errors.push(evt.error)
        })
        return protectedConnection
      }
    }
  }
}

async function main (): Promise<void> {
  const key = generateSwarmKey()
  console.log(`node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; loadavg ${loadavg().map(l => l.toFixed(2)).join(' ')}`)
  console.log(`one stream of ${MIB} MiB (${CHUNK / 1024} KiB writes), two nodes in one process, loopback TCP + Noise + yamux; ${ROUNDS} alternating rounds after a full-size warm-up, median per mode`)
  console.log(`our private network: XSalsa20 on ${DEFAULT_XSALSA20_BACKEND}`)

  const plain = await pair(undefined)
  const pnet = await pair(privateNetwork({ psk: key }))
  const speeds: { plain: number[], pnet: number[] } = { plain: [], pnet: [] }
  let failure: unknown
  try {
    // a full-size warm-up each: the plain path keeps speeding up (JIT, yamux windows) for a
    // while, and measuring it cold would flatter the ratio
    await transfer(plain[0], plain[1], MIB)
    await transfer(pnet[0], pnet[1], MIB)
    for (let r = 0; r < ROUNDS; r++) {
      speeds.plain.push(await transfer(plain[0], plain[1], MIB))
      speeds.pnet.push(await transfer(pnet[0], pnet[1], MIB))
      console.log(`round ${r + 1}: plain ${speeds.plain.at(-1)!.toFixed(1)} MiB/s, private network ${speeds.pnet.at(-1)!.toFixed(1)} MiB/s`)
    }
  } catch (err) {
    failure = err
    console.log(`our private network failed: ${message(err)}`)
  } finally {
    await Promise.all([...plain, ...pnet].map(async n => n.stop()))
  }

  // stock @libp2p/pnet last, so that whatever it does to the process cannot touch the runs above
  let stockPnet: { MiBps: number | null, completed: boolean, error?: string }
  const stockErrors: unknown[] = []
  const stock = await pair(recordingCloseErrors(preSharedKey({ psk: new TextEncoder().encode(formatSwarmKey(key)) }), stockErrors))
  try {
    const mibps = await transfer(stock[0], stock[1], MIB, AbortSignal.timeout(STOCK_TIMEOUT_MS))
    stockPnet = { MiBps: round1(mibps), completed: true }
    console.log(`stock @libp2p/pnet: ${mibps.toFixed(1)} MiB/s`)
  } catch (err) {
    // the connection's own error says why; the stream only sees that it closed
    const why = message(stockErrors[0] ?? err)
    stockPnet = { MiBps: null, completed: false, error: why }
    console.log(`stock @libp2p/pnet did not complete: ${why}`)
  } finally {
    await Promise.all(stock.map(async n => n.stop()))
  }

  const done = failure === undefined
  const pnetMiBps = done ? median(speeds.pnet) : null
  const plainMiBps = done ? median(speeds.plain) : null
  console.log(JSON.stringify({
    bench: 'transport',
    mib: MIB,
    pnetMiBps: pnetMiBps === null ? null : round1(pnetMiBps),
    plainMiBps: plainMiBps === null ? null : round1(plainMiBps),
    ratio: pnetMiBps === null || plainMiBps === null ? null : Math.round(pnetMiBps / plainMiBps * 1000) / 1000,
    stockPnet
  }))
  process.exit(done ? 0 : 1)
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
