/**
 * npm run bench:transport — one stream of BENCH_MIB (default 256) MiB from one libp2p node to
 * another over loopback TCP + Noise + yamux, with our private network (src/net/pnet.ts) and
 * without any protector, in the same run.
 *
 * The headline figures come from two nodes in two processes, as two nodes run: this process
 * sends, a child process (this file with --receiver) receives. The same transfer between two
 * nodes in this one process follows as context: there both ends' XSalsa20 (and Noise) run on
 * one thread, which no deployment does, so its ratio is lower. Last, the same stream over stock
 * @libp2p/pnet in this process, capped by a timeout, with its failure caught and reported.
 *
 * A transfer is timed from the first byte sent until the receiver's reply, which it sends once
 * it has counted the last byte (the count, checked). After one full-size warm-up of each mode, a
 * plain transfer, then BENCH_ROUNDS (default 5) rounds of (pnet, plain), each from a collected
 * heap; each mode reports the median of its transfers, and the ratio is the median of the
 * rounds' ratios, each a pnet transfer over the mean of the two plain ones around it (transfers
 * a moment apart see the same machine, whose speed drifts by a fifth from one second to the
 * next here). The last line is one JSON object:
 * {"bench":"transport","mib":…,"pnetMiBps":…,"plainMiBps":…,"ratio":…,"inProcess":{…},"stockPnet":{…}}
 */
import { fork, type ChildProcess } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { preSharedKey } from '@libp2p/pnet'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { ConnectionProtector, Stream } from '@libp2p/interface'
import { DEFAULT_XSALSA20_BACKEND, privateNetwork } from '../../src/net/pnet.ts'
import { formatSwarmKey, generateSwarmKey } from '../../src/net/swarm-key.ts'
import { median } from './harness.ts'

const MIB = Number(process.env.BENCH_MIB ?? 256)
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5))
const STOCK_TIMEOUT_MS = Number(process.env.BENCH_STOCK_TIMEOUT_MS ?? 60_000)
const PROTOCOL = '/bizra/bench/bulk/1.0.0'
const CHUNK = 64 * 1024

type Protector = (components: any) => ConnectionProtector
type Mode = 'plain' | 'pnet'

async function bulkNode (protector: Protector | undefined): Promise<Libp2p> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionProtector: protector,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
  // the receiving end: counts what arrives, then answers with the count (8 bytes) and closes
  await node.handle(PROTOCOL, async (stream: Stream) => {
    let count = 0
    for await (const data of stream) count += data.byteLength
    const reply = new Uint8Array(8)
    new DataView(reply.buffer).setBigUint64(0, BigInt(count))
    stream.send(reply)
    await stream.close()
  })
  return node
}

/**
 * Sends `mib` MiB to `to` on one new stream and resolves with MiB/s, from the first byte sent
 * to the receiver's reply. Rejects if the stream or connection fails, if the receiver counted
 * other than what was sent, or when `signal` aborts.
 */
async function transfer (from: Libp2p, to: Multiaddr, mib: number, signal?: AbortSignal): Promise<number> {
  const total = mib * 1024 * 1024
  const chunk = new Uint8Array(CHUNK).map((_, i) => (i * 131 + 7) & 0xff)
  const aborted = new Promise<never>((_resolve, reject) => {
    if (signal?.aborted === true) reject(signal.reason)
    signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })
  aborted.catch(() => {})
  const run = async (): Promise<number> => {
    const stream = await from.dialProtocol(to, PROTOCOL, { signal })
    const t0 = performance.now()
    const reply = (async () => {
      const parts: Uint8Array[] = []
      for await (const data of stream) parts.push(data.subarray())
      return Buffer.concat(parts)
    })()
    reply.catch(() => {}) // observed below; a failed send must not leave it unhandled
    for (let sent = 0; sent < total; sent += CHUNK) {
      if (!stream.send(chunk)) await stream.onDrain({ signal })
    }
    await stream.close({ signal })
    const answer = await reply
    const seconds = (performance.now() - t0) / 1000
    const counted = answer.length === 8 ? Number(answer.readBigUInt64BE(0)) : -1
    if (counted !== total) throw new Error(`the receiver counted ${counted} of ${total} bytes`)
    return mib / seconds
  }
  return Promise.race([run(), aborted])
}

const round1 = (x: number): number => Math.round(x * 10) / 10
const round3 = (x: number): number => Math.round(x * 1000) / 1000
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

interface Measured { plainMiBps: number, pnetMiBps: number, ratio: number }

/**
 * Warm-up, then a plain transfer and ROUNDS rounds of (private network, plain) from `senders` to
 * `receivers` (one node of each mode): each private-network transfer sits between two plain ones
 * and its round's ratio is against their mean, so the machine's drift over those seconds cancels
 * (always plain first, then pnet, as before, let a slowing machine flatter or hurt one mode).
 */
async function measure (label: string, senders: Record<Mode, Libp2p>, receivers: Record<Mode, Multiaddr>): Promise<Measured> {
  // a full-size warm-up each: the plain path keeps speeding up (JIT, yamux windows) for a
  // while, and measuring it cold would flatter the ratio
  await transfer(senders.plain, receivers.plain, MIB)
  await transfer(senders.pnet, receivers.pnet, MIB)
  const timed = async (mode: Mode): Promise<number> => {
    // each transfer from a collected heap (the script runs with --expose-gc), so that the
    // previous one's garbage is not collected inside it
    ;(globalThis as { gc?: () => void }).gc?.()
    return await transfer(senders[mode], receivers[mode], MIB)
  }
  const speeds: Record<Mode, number[]> = { plain: [await timed('plain')], pnet: [] }
  const ratios: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    speeds.pnet.push(await timed('pnet'))
    speeds.plain.push(await timed('plain'))
    ratios.push(speeds.pnet[r]! / ((speeds.plain[r]! + speeds.plain[r + 1]!) / 2))
    console.log(`${label}, round ${r + 1}: private network ${speeds.pnet[r]!.toFixed(1)} MiB/s between plain ${speeds.plain[r]!.toFixed(1)} and ${speeds.plain[r + 1]!.toFixed(1)}: ${ratios[r]!.toFixed(3)}`)
  }
  return {
    plainMiBps: round1(median(speeds.plain)),
    pnetMiBps: round1(median(speeds.pnet)),
    ratio: round3(median(ratios))
  }
}

/** The receiving process: a plain and a private-network node; tells the parent their addresses. */
async function receiver (hexKey: string): Promise<void> {
  const plain = await bulkNode(undefined)
  const pnet = await bulkNode(privateNetwork({ psk: Buffer.from(hexKey, 'hex') }))
  process.send!({ plain: plain.getMultiaddrs()[0]!.toString(), pnet: pnet.getMultiaddrs()[0]!.toString() })
  process.on('disconnect', () => { process.exit(0) })
}

/** Forks the receiving process and resolves with its nodes' addresses. */
async function startReceiver (key: Uint8Array): Promise<{ child: ChildProcess, addresses: Record<Mode, Multiaddr> }> {
  const child = fork(fileURLToPath(import.meta.url), ['--receiver', Buffer.from(key).toString('hex')], { stdio: 'inherit' })
  const addresses = await new Promise<Record<Mode, string>>((resolve, reject) => {
    child.once('message', resolve as (m: unknown) => void)
    child.once('exit', (code) => { reject(new Error(`the receiving process exited (code ${code}) before it listened`)) })
  })
  return { child, addresses: { plain: multiaddr(addresses.plain), pnet: multiaddr(addresses.pnet) } }
}

async function main (): Promise<void> {
  const key = generateSwarmKey()
  console.log(`node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; loadavg ${loadavg().map(l => l.toFixed(2)).join(' ')}`)
  console.log(`one stream of ${MIB} MiB (${CHUNK / 1024} KiB writes), loopback TCP + Noise + yamux; a full-size warm-up, then plain and ${ROUNDS} rounds of (private network, plain); ratio: median of each private-network transfer over the mean of the plain ones around it`)
  console.log(`our private network: XSalsa20 on ${DEFAULT_XSALSA20_BACKEND}`)

  let failure: unknown
  let twoProcesses: Measured | undefined
  let inProcess: Measured | undefined
  const senders = { plain: await bulkNode(undefined), pnet: await bulkNode(privateNetwork({ psk: key })) }
  const { child, addresses } = await startReceiver(key)
  try {
    twoProcesses = await measure('two processes', senders, addresses)
  } catch (err) {
    failure = err
  } finally {
    child.disconnect()
  }
  if (failure === undefined) {
    // both ends in this process: both ends' ciphers on one thread
    const receivers = { plain: await bulkNode(undefined), pnet: await bulkNode(privateNetwork({ psk: key })) }
    try {
      inProcess = await measure('one process', senders, { plain: receivers.plain.getMultiaddrs()[0]!, pnet: receivers.pnet.getMultiaddrs()[0]! })
    } catch (err) {
      failure = err
    } finally {
      await Promise.all(Object.values(receivers).map(async n => n.stop()))
    }
  }
  await Promise.all(Object.values(senders).map(async n => n.stop()))
  if (failure !== undefined) console.log(`our private network failed: ${message(failure)}`)

  // stock @libp2p/pnet last, so that whatever it does to the process cannot touch the runs above
  let stockPnet: { MiBps: number | null, completed: boolean, error?: string }
  const stockErrors: unknown[] = []
  const stockProtector = recordingCloseErrors(preSharedKey({ psk: new TextEncoder().encode(formatSwarmKey(key)) }), stockErrors)
  const stock = [await bulkNode(stockProtector), await bulkNode(stockProtector)] as const
  try {
    const mibps = await transfer(stock[0], stock[1].getMultiaddrs()[0]!, MIB, AbortSignal.timeout(STOCK_TIMEOUT_MS))
    stockPnet = { MiBps: round1(mibps), completed: true }
    console.log(`stock @libp2p/pnet (one process): ${mibps.toFixed(1)} MiB/s`)
  } catch (err) {
    // the connection's own error says why; the stream only sees that it closed
    const why = message(stockErrors[0] ?? err)
    stockPnet = { MiBps: null, completed: false, error: why }
    console.log(`stock @libp2p/pnet did not complete: ${why}`)
  } finally {
    await Promise.all(stock.map(async n => n.stop()))
  }

  console.log(JSON.stringify({
    bench: 'transport',
    mib: MIB,
    pnetMiBps: twoProcesses?.pnetMiBps ?? null,
    plainMiBps: twoProcesses?.plainMiBps ?? null,
    ratio: twoProcesses?.ratio ?? null,
    inProcess: inProcess ?? null,
    stockPnet
  }))
  process.exit(failure === undefined ? 0 : 1)
}

if (process.argv[2] === '--receiver') await receiver(process.argv[3]!)
else if (import.meta.url === `file://${process.argv[1]}`) await main()
