import { ConnectionFailedError, ListenError, serviceCapabilities, transportSymbol, type Listener, type MultiaddrConnection, type PeerId, type Transport, type ComponentLogger, type CreateListenerOptions, type DialTransportOptions, type Connection } from '@libp2p/interface'
import { AbstractMultiaddrConnection, type AbstractMultiaddrConnectionInit } from '@libp2p/utils'
import { multiaddr, CODE_P2P, type Multiaddr } from '@multiformats/multiaddr'
import { Memory } from '@multiformats/multiaddr-matcher'
import { TypedEventEmitter } from 'main-event'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { LatencySpec } from '../scenario.ts'

/**
 * An in-process libp2p transport for the `real` engine, in the manner of @libp2p/memory, but
 * with a delay per link: each chunk sent from node a to node b arrives after the latency
 * between their regions (mean +- jitter), in order, pipelined (a burst is not serialised
 * behind one delay per chunk). A reliable stream does not lose bytes, so a link's loss rate
 * shows as what TCP turns loss into: that chunk (and what follows it) arrives one
 * retransmission timeout later. Links across a partition refuse dials, and the engine aborts
 * the connections that cross it when the partition starts.
 */

export interface LinkModel {
  /** region index of a node by PeerId string (undefined: not in the simulation) */
  regionOf: (peerId: string) => number | undefined
  latency: (from: number, to: number) => LatencySpec
  loss: (from: number, to: number) => number
  cut: (from: number, to: number) => boolean
  /** uniform [0, 1) draws; seeded by the engine */
  random: () => number
  /** chunks delivered, and chunks that paid a retransmission for loss */
  stats: { chunks: number, bytes: number, retransmits: number }
}

/** TCP's minimum retransmission timeout, the delay a lost segment costs */
const MIN_RTO_MS = 200

interface Endpoint {
  peerId: string
  listener: LinkListener
}

/** address -> listener, shared by every node of the process */
const listeners = new Map<string, Endpoint>()

class LinkConnection extends AbstractMultiaddrConnection {
  remote: LinkConnection | undefined
  readonly #queue: Array<{ at: number, data: Uint8ArrayList }> = []
  #timer: NodeJS.Timeout | undefined
  #last = 0
  #closing = false
  readonly #delay: () => number

  constructor (init: AbstractMultiaddrConnectionInit, delay: () => number) {
    super(init)
    this.#delay = delay
  }

  sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } {
    const now = performance.now()
    const at = Math.max(this.#last, now + this.#delay())
    this.#last = at
    this.#queue.push({ at, data: data.sublist() })
    this.#schedule(now)
    return { sentBytes: data.byteLength, canSendMore: true }
  }

  #schedule (now: number): void {
    if (this.#timer !== undefined || this.#queue.length === 0) return
    this.#timer = setTimeout(() => this.#drain(), Math.max(0, this.#queue[0]!.at - now))
  }

  #drain (): void {
    this.#timer = undefined
    const now = performance.now()
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now + 0.5) {
      const { data } = this.#queue.shift()!
      this.remote?.onData(data)
    }
    if (this.#queue.length > 0) this.#schedule(now)
    else if (this.#closing) this.remote?.onTransportClosed()
  }

  sendReset (err: Error): void {
    this.#queue.length = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.remote?.onTransportClosed(err)
  }

  async sendClose (): Promise<void> {
    this.#closing = true
    if (this.#queue.length === 0 && this.#timer === undefined) this.remote?.onTransportClosed()
  }

  sendPause (): void {}
  sendResume (): void {}
}

class LinkListener extends TypedEventEmitter<any> implements Listener {
  readonly #init: CreateListenerOptions
  readonly #peerId: PeerId
  readonly #shutdown = new AbortController()
  address: string | undefined
  readonly connections = new Set<MultiaddrConnection>()

  constructor (peerId: PeerId, init: CreateListenerOptions) {
    super()
    this.#peerId = peerId
    this.#init = init
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
    const target = listeners.get((hasPeer ? ma.decapsulate('/p2p') : ma).toString())
    if (target === undefined) throw new ConnectionFailedError(`no simulated node listens at ${ma.toString()}`)
    const self = this.#components.peerId.toString()
    const m = this.#model
    const from = m.regionOf(self)
    const to = m.regionOf(target.peerId)
    if (from === undefined || to === undefined) throw new ConnectionFailedError('a node outside the simulation')
    if (m.cut(from, to)) throw new ConnectionFailedError(`regions ${from} and ${to} are partitioned`)
    const delay = (a: number, b: number) => (): number => {
      const spec = m.latency(a, b)
      const base = Math.max(0.05, spec.mean + (m.random() * 2 - 1) * spec.jitter)
      const lost = m.random() < m.loss(a, b)
      if (lost) m.stats.retransmits++
      m.stats.chunks++
      return base + (lost ? Math.max(MIN_RTO_MS, 3 * spec.mean) : 0)
    }
    const log = this.#components.logger.forComponent('bizra:sim:link')
    const dialer = new LinkConnection({ remoteAddr: ma, direction: 'outbound', log }, delay(from, to))
    const listenerSide = new LinkConnection({ remoteAddr: multiaddr(`${target.listener.address!}-in-${self.slice(-8)}/p2p/${self}`), direction: 'inbound', log }, delay(to, from))
    dialer.remote = listenerSide
    listenerSide.remote = dialer
    // the dial itself takes one round trip
    const rtt = m.latency(from, to).mean * 2
    await new Promise(resolve => setTimeout(resolve, rtt))
    target.listener.accept(listenerSide)
    try {
      return await options.upgrader.upgradeOutbound(dialer, { ...options })
    } catch (err) {
      dialer.abort(err as Error)
      throw err
    }
  }

  createListener (options: CreateListenerOptions): Listener {
    return new LinkListener(this.#components.peerId, options)
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
