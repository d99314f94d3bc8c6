import type { MessagePort } from 'node:worker_threads'
import { ConnectionFailedError, ListenError, serviceCapabilities, transportSymbol, type Listener, type MultiaddrConnection, type PeerId, type Transport, type ComponentLogger, type CreateListenerOptions, type DialTransportOptions, type Connection, type Logger } from '@libp2p/interface'
import { AbstractMultiaddrConnection, type AbstractMultiaddrConnectionInit } from '@libp2p/utils'
import { multiaddr, CODE_P2P, type Multiaddr } from '@multiformats/multiaddr'
import { Memory } from '@multiformats/multiaddr-matcher'
import { TypedEventEmitter } from 'main-event'
import { Uint8ArrayList } from 'uint8arraylist'
import type { LatencySpec } from '../scenario.ts'

/**
 * An in-process libp2p transport for the `real` engine, in the manner of @libp2p/memory, but
 * with a delay per link: each chunk sent from node a to node b arrives after the latency
 * between their regions (mean +- jitter), in order, pipelined (a burst is not serialised
 * behind one delay per chunk). A reliable stream does not lose bytes, so a link's loss rate
 * shows as what TCP turns loss into: that chunk (and what follows it) arrives one
 * retransmission timeout later. Links across a partition refuse dials, and the engine aborts
 * the connections that cross it when the partition starts.
 *
 * Nodes may live in different worker threads. A node listening in this thread is reached
 * directly; one in another thread is reached through a LinkBridge, a MessagePort between the
 * two threads that carries the dial (open, accepted or refused), every chunk and the close.
 * The delay is applied on the sending side either way, so a link behaves the same whether or
 * not it crosses threads (plus the port's hop, well under a millisecond when the receiving
 * thread keeps up).
 */

export interface LinkModel {
  /** node index of a PeerId (undefined: not in the simulation) */
  indexOf: (peerId: string) => number | undefined
  /** region index of a node */
  regionOf: (node: number) => number
  latency: (fromRegion: number, toRegion: number) => LatencySpec
  loss: (fromRegion: number, toRegion: number) => number
  cut: (fromRegion: number, toRegion: number) => boolean
  /** uniform [0, 1) draws; seeded by the engine */
  random: () => number
  /** a node listening in another thread: its PeerId and the bridge to that thread */
  remote?: (address: string) => { peerId: string, bridge: LinkBridge } | undefined
  /** every chunk handed to a link: per-node traffic */
  onSend?: (from: number, to: number, bytes: number) => void
  /** chunks and bytes handed to links, and chunks that paid a retransmission for loss */
  stats: { chunks: number, bytes: number, retransmits: number }
}

/** TCP's minimum retransmission timeout, the delay a lost segment costs */
const MIN_RTO_MS = 200

/** ms on a clock every thread of the process shares (performance.now() is per thread) */
const sharedNow = (): number => performance.timeOrigin + performance.now()

/**
 * What one end of a link hands its bytes and its close to: the other end, or a bridge to the
 * thread where the other end is. `at` is when the bytes arrive, on the shared clock.
 */
interface LinkSink {
  linkData: (data: Uint8ArrayList | Uint8Array, at: number) => void
  /** no more data: close once everything pushed has arrived */
  linkEnd: () => void
  /** gone at once (what was not delivered yet is lost) */
  linkReset: (err: Error) => void
}

interface Endpoint {
  peerId: string
  listener: LinkListener
}

/** address -> listener of this thread */
const listeners = new Map<string, Endpoint>()

/**
 * One end of a link. What it sends gets its arrival time here (the link's delay after the
 * previous chunk's, so chunks stay in order and a burst is pipelined) and waits at the other
 * end until then: the receiving end keeps the queue, so a link that crosses threads is timed
 * by the thread that delivers it, as a link within one thread is.
 */
class LinkConnection extends AbstractMultiaddrConnection implements LinkSink {
  remote: LinkSink | undefined
  readonly #queue: Array<{ at: number, data: Uint8ArrayList | Uint8Array }> = []
  #timer: NodeJS.Timeout | undefined
  /** arrival time of the last chunk this end sent */
  #lastSent = 0
  #ending = false
  readonly #delay: (bytes: number) => number
  /** called once when the link goes away (a bridge forgets it) */
  onGone: (() => void) | undefined

  constructor (init: AbstractMultiaddrConnectionInit, delay: (bytes: number) => number) {
    super(init)
    this.#delay = delay
    this.addEventListener('close', () => { this.onGone?.(); this.onGone = undefined })
  }

  sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } {
    const at = Math.max(this.#lastSent, sharedNow() + this.#delay(data.byteLength))
    this.#lastSent = at
    this.remote?.linkData(data.sublist(), at)
    return { sentBytes: data.byteLength, canSendMore: true }
  }

  sendReset (err: Error): void {
    this.remote?.linkReset(err)
  }

  async sendClose (): Promise<void> {
    this.remote?.linkEnd()
  }

  sendPause (): void {}
  sendResume (): void {}

  // the receiving side

  linkData (data: Uint8ArrayList | Uint8Array, at: number): void {
    this.#queue.push({ at, data })
    this.#schedule()
  }

  linkEnd (): void {
    this.#ending = true
    if (this.#queue.length === 0) this.onTransportClosed()
  }

  linkReset (err: Error): void {
    this.#queue.length = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.onTransportClosed(err)
  }

  #schedule (): void {
    if (this.#timer !== undefined || this.#queue.length === 0) return
    this.#timer = setTimeout(() => this.#drain(), Math.max(0, this.#queue[0]!.at - sharedNow()))
  }

  #drain (): void {
    this.#timer = undefined
    const now = sharedNow()
    // everything due goes up in one piece: the layers above parse frames in a loop, and each
    // call ends with a failed length read (noise throws a RangeError for it), so fewer calls
    // are cheaper and deliver the same bytes in the same order
    let due: Uint8ArrayList | undefined
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now + 0.5) {
      const { data } = this.#queue.shift()!
      if (due === undefined) due = data instanceof Uint8Array ? new Uint8ArrayList(data) : data
      else due.append(data)
    }
    if (due !== undefined) this.onData(due)
    if (this.#queue.length > 0) this.#schedule()
    else if (this.#ending) this.onTransportClosed()
  }
}

class LinkListener extends TypedEventEmitter<any> implements Listener {
  readonly #init: CreateListenerOptions
  readonly #peerId: PeerId
  readonly #shutdown = new AbortController()
  readonly log: Logger
  address: string | undefined
  readonly connections = new Set<MultiaddrConnection>()

  constructor (peerId: PeerId, init: CreateListenerOptions, log: Logger) {
    super()
    this.#peerId = peerId
    this.#init = init
    this.log = log
  }

  async listen (ma: Multiaddr): Promise<void> {
    const name = ma.getComponents()[0]?.value
    const address = `/memory/${name ?? Math.random().toString(36).slice(2)}`
    if (listeners.has(address)) throw new ListenError(`address ${address} already in use`)
    this.address = address
    listeners.set(address, { peerId: this.#peerId.toString(), listener: this })
    queueMicrotask(() => this.safeDispatchEvent('listening'))
  }

  accept (maConn: MultiaddrConnection): void {
    this.connections.add(maConn)
    maConn.addEventListener('close', () => this.connections.delete(maConn))
    this.#init.upgrader.upgradeInbound(maConn, { signal: this.#shutdown.signal }).catch(err => maConn.abort(err))
  }

  getAddrs (): Multiaddr[] {
    return this.address === undefined ? [] : [multiaddr(this.address)]
  }

  updateAnnounceAddrs (): void {}

  async close (): Promise<void> {
    if (this.address !== undefined) listeners.delete(this.address)
    for (const c of this.connections) c.abort(new ConnectionFailedError('listener closed'))
    this.#shutdown.abort()
    queueMicrotask(() => this.safeDispatchEvent('close'))
  }
}

/** The delay of one chunk on the link from node `from` to node `to`. */
function chunkDelay (m: LinkModel, from: number, to: number): (bytes: number) => number {
  const a = m.regionOf(from)
  const b = m.regionOf(to)
  return bytes => {
    const spec = m.latency(a, b)
    const base = Math.max(0.05, spec.mean + (m.random() * 2 - 1) * spec.jitter)
    const lost = m.random() < m.loss(a, b)
    if (lost) m.stats.retransmits++
    m.stats.chunks++
    m.stats.bytes += bytes
    m.onSend?.(from, to, bytes)
    return base + (lost ? Math.max(MIN_RTO_MS, 3 * spec.mean) : 0)
  }
}

class LinkTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = 'bizra-sim-links'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  readonly #components: { peerId: PeerId, logger: ComponentLogger }
  readonly #model: LinkModel

  constructor (components: { peerId: PeerId, logger: ComponentLogger }, model: LinkModel) {
    this.#components = components
    this.#model = model
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    options.signal?.throwIfAborted()
    const hasPeer = ma.getComponents().some(c => c.code === CODE_P2P)
    const address = (hasPeer ? ma.decapsulate('/p2p') : ma).toString()
    const local = listeners.get(address)
    const remote = local === undefined ? this.#model.remote?.(address) : undefined
    const targetPeer = local?.peerId ?? remote?.peerId
    if (targetPeer === undefined) throw new ConnectionFailedError(`no simulated node listens at ${ma.toString()}`)
    const self = this.#components.peerId.toString()
    const m = this.#model
    const from = m.indexOf(self)
    const to = m.indexOf(targetPeer)
    if (from === undefined || to === undefined) throw new ConnectionFailedError('a node outside the simulation')
    const ra = m.regionOf(from)
    const rb = m.regionOf(to)
    if (m.cut(ra, rb)) throw new ConnectionFailedError(`regions ${ra} and ${rb} are partitioned`)
    const log = this.#components.logger.forComponent('bizra:sim:link')
    const dialer = new LinkConnection({ remoteAddr: ma, direction: 'outbound', log }, chunkDelay(m, from, to))
    // the dial itself takes one round trip
    const rtt = new Promise(resolve => setTimeout(resolve, m.latency(ra, rb).mean * 2))
    if (local !== undefined) {
      const listenerSide = new LinkConnection({ remoteAddr: multiaddr(`${address}-in-${self.slice(-8)}/p2p/${self}`), direction: 'inbound', log }, chunkDelay(m, to, from))
      dialer.remote = listenerSide
      listenerSide.remote = dialer
      await rtt
      local.listener.accept(listenerSide)
    } else {
      const accepted = remote!.bridge.open(dialer, address, self)
      // the other thread answers unless it is gone: the dial's own signal bounds the wait
      const aborted = new Promise<never>((_resolve, reject) => {
        options.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true })
      })
      aborted.catch(() => {})
      try {
        await Promise.race([Promise.all([rtt, accepted]), aborted])
      } catch (err) {
        dialer.abort(err as Error)
        throw err
      }
    }
    try {
      return await options.upgrader.upgradeOutbound(dialer, { ...options })
    } catch (err) {
      dialer.abort(err as Error)
      throw err
    }
  }

  createListener (options: CreateListenerOptions): Listener {
    return new LinkListener(this.#components.peerId, options, this.#components.logger.forComponent('bizra:sim:link'))
  }

  listenFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(ma => Memory.exactMatch(ma))
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return this.listenFilter(multiaddrs)
  }
}

/** The transport factory a simulated node is created with. */
export function simLinks (model: LinkModel): (components: { peerId: PeerId, logger: ComponentLogger }) => Transport {
  return components => new LinkTransport(components, model)
}

// ---- links between threads ------------------------------------------------------------------

const OP_OPEN = 0
const OP_ACCEPT = 1
const OP_REFUSE = 2
const OP_DATA = 3
const OP_CLOSE = 4

/** One batch on a bridge's port: operations in order, and the bytes of its OP_DATA entries. */
interface BridgeBatch {
  /** [OP_OPEN, id, address, dialer] | [OP_ACCEPT, id] | [OP_REFUSE, id, why] | [OP_DATA, id, length, arrival] | [OP_CLOSE, id, error ('' for a clean end)] */
  ops: Array<number | string>
  data: Uint8Array
}

/**
 * The links between the nodes of this thread and those of one other thread, over one
 * MessagePort. Connection ids are even when this side dialled (lower thread index) or odd
 * (higher), so the two sides never pick the same one. Everything sent during one turn of the
 * event loop goes as one message, its bytes in one transferred buffer.
 */
export class LinkBridge {
  readonly #port: MessagePort
  readonly #model: LinkModel
  readonly #conns = new Map<number, LinkConnection>()
  readonly #dials = new Map<number, { resolve: () => void, reject: (err: Error) => void }>()
  #nextId: number
  #ops: Array<number | string> = []
  #chunks: Uint8Array[] = []
  #bytes = 0
  #flushing = false

  constructor (port: MessagePort, model: LinkModel, lowerSide: boolean) {
    this.#port = port
    this.#model = model
    this.#nextId = lowerSide ? 0 : 1
    port.on('message', (batch: BridgeBatch) => this.#receive(batch))
  }

  /** Dials `address` in the other thread for `dialer`; resolves once that thread accepted. */
  async open (dialer: LinkConnection, address: string, dialerPeer: string): Promise<void> {
    const id = this.#nextId
    this.#nextId += 2
    this.#attach(id, dialer)
    const answer = new Promise<void>((resolve, reject) => this.#dials.set(id, { resolve, reject }))
    this.#op(OP_OPEN, id, address, dialerPeer)
    return answer
  }

  close (): void {
    this.#port.close()
  }

  #attach (id: number, conn: LinkConnection): void {
    this.#conns.set(id, conn)
    conn.remote = {
      linkData: (data, at) => {
        if (!this.#conns.has(id)) return
        this.#op(OP_DATA, id, data.byteLength, at)
        if (data instanceof Uint8Array) this.#chunks.push(data)
        else for (const buf of data) this.#chunks.push(buf)
        this.#bytes += data.byteLength
      },
      linkEnd: () => {
        if (this.#conns.delete(id)) this.#op(OP_CLOSE, id, '')
      },
      linkReset: err => {
        if (this.#conns.delete(id)) this.#op(OP_CLOSE, id, err.message || err.name || 'reset')
      }
    }
    conn.onGone = () => {
      if (this.#conns.get(id) === conn) {
        this.#conns.delete(id)
        this.#op(OP_CLOSE, id, 'closed')
      }
    }
  }

  #op (...op: Array<number | string>): void {
    for (const x of op) this.#ops.push(x)
    if (!this.#flushing) {
      this.#flushing = true
      // after the timers and I/O of this turn: one message for everything they sent
      setImmediate(() => this.#flush())
    }
  }

  #flush (): void {
    this.#flushing = false
    const data = new Uint8Array(this.#bytes)
    let off = 0
    for (const c of this.#chunks) { data.set(c, off); off += c.byteLength }
    const batch: BridgeBatch = { ops: this.#ops, data }
    this.#ops = []
    this.#chunks = []
    this.#bytes = 0
    try {
      this.#port.postMessage(batch, [data.buffer])
    } catch {
      // the other thread is gone: the run is ending
    }
  }

  #receive (batch: BridgeBatch): void {
    const { ops, data } = batch
    let off = 0
    for (let k = 0; k < ops.length;) {
      const op = ops[k] as number
      const id = ops[k + 1] as number
      switch (op) {
        case OP_OPEN: {
          this.#accept(id, ops[k + 2] as string, ops[k + 3] as string)
          k += 4
          break
        }
        case OP_ACCEPT: {
          this.#dials.get(id)?.resolve()
          this.#dials.delete(id)
          k += 2
          break
        }
        case OP_REFUSE: {
          const why = ops[k + 2] as string
          this.#dials.get(id)?.reject(new ConnectionFailedError(why))
          this.#dials.delete(id)
          this.#conns.delete(id)
          k += 3
          break
        }
        case OP_DATA: {
          const len = ops[k + 2] as number
          const conn = this.#conns.get(id)
          // a copy-free view: the batch buffer was transferred to this thread and is ours
          if (conn !== undefined && len > 0) conn.linkData(data.subarray(off, off + len), ops[k + 3] as number)
          off += len
          k += 4
          break
        }
        case OP_CLOSE: {
          const why = ops[k + 2] as string
          const conn = this.#conns.get(id)
          this.#conns.delete(id)
          const dial = this.#dials.get(id)
          if (dial !== undefined) { this.#dials.delete(id); dial.reject(new ConnectionFailedError(why || 'closed')) }
          if (conn !== undefined) {
            if (why === '') conn.linkEnd()
            else conn.linkReset(new ConnectionFailedError(why))
          }
          k += 3
          break
        }
        default:
          throw new Error(`bad bridge op ${op}`)
      }
    }
  }

  #accept (id: number, address: string, dialerPeer: string): void {
    const target = listeners.get(address)
    const m = this.#model
    const from = m.indexOf(dialerPeer)
    const to = target === undefined ? undefined : m.indexOf(target.peerId)
    if (target === undefined || from === undefined || to === undefined) {
      this.#op(OP_REFUSE, id, `no simulated node listens at ${address}`)
      return
    }
    if (m.cut(m.regionOf(to), m.regionOf(from))) {
      this.#op(OP_REFUSE, id, 'partitioned')
      return
    }
    const conn = new LinkConnection({
      remoteAddr: multiaddr(`${address}-in-${dialerPeer.slice(-8)}/p2p/${dialerPeer}`),
      direction: 'inbound',
      log: target.listener.log
    }, chunkDelay(m, to, from))
    this.#attach(id, conn)
    this.#op(OP_ACCEPT, id)
    target.listener.accept(conn)
  }
}
