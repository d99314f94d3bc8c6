import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from 'pino'
import type { Host } from '../net/host.ts'
import type { SignedGossip, VerifiedMessage } from '../net/gossip.ts'
import { PROTOCOLS, TOPICS } from '../net/protocols.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import type { Constitution } from '../governance/constitution.ts'
import { SessionDag } from '../state/store.ts'
import type { KeyValueDb } from '../util/db.ts'
import { lpStream } from '@libp2p/utils'
import { createEnvelope, verifyEnvelope, type Envelope } from '../pci/envelope.ts'
import { agentCardProblem, cardDigest } from './cards.ts'
import { AgentDirectory } from './directory.ts'
import { TaskExecutor } from './executor.ts'
import { TaskRouter } from './router.ts'
import { ChannelPool } from './channel.ts'
import { registerBuiltinSkills, SkillRegistry } from './skills.ts'
import { DagTaskLog, verifyTaskProof } from './task-log.ts'
import type { AgentCard, SendTaskOptions, TaskControl, TaskRecord, TaskState } from './types.ts'
import { decodeFrame, encodeFrame, ENVELOPE_TYPES, MAX_A2A_FRAME, type TaskResult } from './wire.ts'

export interface A2aServiceInit {
  host: Host
  gossip: SignedGossip
  identity: NodeIdentity
  constitution: Constitution
  db: KeyValueDb
  version: string
  /** the node's name on its card (default `bizra-<first 8 of PeerId>`) */
  name?: string
  /** skill a message without one runs (default `echo`) */
  defaultSkill?: string
  /** the A2A HTTP endpoint once the API is up, else null */
  apiUrl: () => string | null
  health: (peerId: string) => { trust: number, healthy: boolean }
  log?: Logger
  /** how often the card is gossiped again (default 5 min) */
  cardIntervalMs?: number
  /** every task this node executed, for metrics and events */
  onExecuted?: (e: { taskId: string, requester: string, skill: string, state: TaskState, ms: number, error?: TaskResult['error'] }) => void
}

const CARD_INTERVAL_MS = 5 * 60_000
/** a peer's card is fetched at most this often */
const CARD_FETCH_BACKOFF_MS = 10_000
const DHT_PROVIDE_TIMEOUT_MS = 30_000
const MAX_DHT_PROVIDERS = 20

/** The kad-dht key a skill's providers are recorded under: CIDv1(raw, sha256("bizra-skill:" + id)). */
export async function skillKey (skill: string): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`bizra-skill:${skill}`)))
}

/**
 * A2A on the node: the skill registry, this node's agent card (gossiped on /bizra/1/agents and
 * announced per skill as kad-dht provider records), the directory of other nodes' cards, the
 * executor serving /bizra/a2a/1.0.0 and the router that sends tasks out.
 */
export class A2aService implements TaskControl {
  readonly skills = new SkillRegistry()
  readonly directory = new AgentDirectory()
  readonly executor: TaskExecutor
  readonly router: TaskRouter
  readonly dag: SessionDag
  /** one long-lived task stream per executor this node sends to */
  readonly channels: ChannelPool
  readonly defaultSkill: string
  readonly #init: A2aServiceInit
  readonly #closers: Array<() => void | Promise<void>> = []
  #publishSoon: NodeJS.Timeout | undefined
  #stopped = false
  readonly #fetchedAt = new Map<string, number>()
  #cardCache: { digest: string, envelope: Envelope } | undefined

  constructor (init: A2aServiceInit) {
    this.#init = init
    this.defaultSkill = init.defaultSkill ?? 'echo'
    // batches reach the OS before a result goes out, so kill -9 loses nothing; fsync per task
    // (power loss) would cost a disk flush per task, and the requester holds the proof anyway
    this.dag = new SessionDag(init.db, { sync: false })
    registerBuiltinSkills(this.skills)
    this.channels = new ChannelPool(async (peerId, signal) => init.host.dialProtocol(peerIdFromString(peerId), PROTOCOLS.a2a, { signal }))
    this.executor = new TaskExecutor({
      identity: init.identity,
      constitution: init.constitution,
      skills: this.skills,
      log: new DagTaskLog(this.dag),
      cardEnvelope: (of) => of === undefined || of === init.identity.id ? this.#signedCard() : this.directory.envelope(of),
      onFinished: e => init.onExecuted?.(e)
    })
    this.router = new TaskRouter({
      identity: init.identity,
      constitution: init.constitution,
      skills: this.skills,
      executor: this.executor,
      directory: this.directory,
      transport: this.channels,
      health: init.health,
      findProviders: async (skill, signal) => this.findProviders(skill, signal),
      verifyProof: verifyTaskProof
    })
    init.gossip.checkPayload(ENVELOPE_TYPES.card, e => {
      const problem = agentCardProblem(e.payload)
      if (problem !== undefined) return `malformed agent card: ${problem}`
      if ((e.payload as AgentCard).peerId !== e.sender) return 'agent card for another peer'
      return undefined
    })
  }

  async start (): Promise<void> {
    const { host, gossip } = this.#init
    await host.handle(PROTOCOLS.a2a, (stream) => { this.executor.handleStream(stream) }, { runOnLimitedConnection: false, maxInboundStreams: 1024, maxOutboundStreams: 1024 })
    this.#closers.push(() => host.unhandle(PROTOCOLS.a2a))
    this.#closers.push(gossip.onMessage(this.#onGossip))
    this.#closers.push(this.skills.onChange(() => {
      this.#publishCardSoon()
      void this.#provideSkills()
    }))
    // no republish when a peer joins: N nodes answering every join would be N^2 messages per
    // join; a newcomer sees each card's digest in its heartbeat and fetches what it lacks
    const every = setInterval(() => {
      this.#publishCardSoon()
      void this.#provideSkills()
    }, this.#init.cardIntervalMs ?? CARD_INTERVAL_MS)
    every.unref()
    this.#closers.push(() => clearInterval(every))
    // announce once the routing table has someone to store records with
    const onConnect = (): void => {
      host.removeEventListener('peer:connect', onConnect)
      setTimeout(() => { void this.#provideSkills() }, 500).unref()
    }
    host.addEventListener('peer:connect', onConnect)
    this.#closers.push(() => host.removeEventListener('peer:connect', onConnect))
    this.#publishCardSoon()
  }

  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#publishSoon !== undefined) clearTimeout(this.#publishSoon)
    this.router.stop()
    this.executor.stop()
    this.channels.closeAll()
    for (const close of this.#closers.reverse()) await close()
  }

  agentCard (): AgentCard {
    const id = this.#init.identity.id
    return {
      name: this.#init.name ?? `bizra-${id.slice(-8)}`,
      description: 'A sovereign node of the BIZRA federation: tasks sent here run on whichever peer offers the skill.',
      version: this.#init.version,
      url: this.#init.apiUrl() ?? `libp2p://${id}`,
      capabilities: { streaming: true, pushNotifications: false },
      defaultInputModes: ['text/plain', 'application/json'],
      defaultOutputModes: ['text/plain', 'application/json'],
      skills: this.skills.list(),
      peerId: id
    }
  }

  cardDigest (): string {
    return cardDigest(this.agentCard())
  }

  agents (): AgentCard[] {
    const own = this.agentCard()
    return [own, ...this.directory.cards().filter(c => c.peerId !== own.peerId)]
  }

  async sendTask (options: SendTaskOptions): Promise<TaskRecord> {
    return this.router.sendTask(options)
  }

  getTask (id: string): TaskRecord | undefined {
    return this.router.getTask(id)
  }

  async waitTask (id: string, signal?: AbortSignal): Promise<TaskRecord> {
    return this.router.waitTask(id, signal)
  }

  async cancelTask (id: string): Promise<TaskRecord> {
    return this.router.cancelTask(id)
  }

  onTask (listener: (task: TaskRecord) => void): () => void {
    return this.router.onTask(listener)
  }

  /** Providers of a skill from kad-dht provider records (not gossip). */
  async findProviders (skill: string, signal: AbortSignal): Promise<string[]> {
    const out = new Set<string>()
    if (this.#init.host.services.dht === undefined) return []
    for await (const p of this.#init.host.contentRouting.findProviders(await skillKey(skill), { signal })) {
      const id = p.id.toString()
      if (id !== this.#init.identity.id) out.add(id)
      if (out.size >= MAX_DHT_PROVIDERS) break
    }
    return [...out]
  }

  /** A peer is gone for good: its card no longer routes tasks. */
  forgetPeer (peerId: string): void {
    this.directory.forget(peerId)
  }

  reportLoad (peerId: string, load: number): void {
    this.directory.reportLoad(peerId, load)
  }

  /**
   * A heartbeat named the digest of the sender's card. When it is not the card held for that
   * peer, fetch the card: from the peer itself over the connection this node has to it (at most
   * once per backoff period per peer), else from `via`, the neighbour that forwarded the
   * heartbeat, which holds the signed card (checked against the digest). Dialling every peer
   * whose heartbeat arrives would connect each node to all others.
   */
  noteCardDigest (peerId: string, digest: string, via?: string): void {
    if (this.#stopped || peerId === this.#init.identity.id) return
    const held = this.directory.card(peerId)
    if (held !== undefined && cardDigest(held) === digest) return
    const now = Date.now()
    if (now - (this.#fetchedAt.get(peerId) ?? 0) < CARD_FETCH_BACKOFF_MS) return
    const { host } = this.#init
    const connected = host.getConnections(peerIdFromString(peerId)).length > 0
    if (!connected && via !== undefined && via !== peerId && via !== this.#init.identity.id) {
      // not connected to it: ask the neighbour that forwarded its heartbeat. No backoff when that
      // neighbour does not hold the card yet: the next heartbeat asks again (a stream on a
      // connection that exists costs little; a dial to every peer would mesh the federation)
      void this.#fetchCard(via, peerId, digest).catch(err => this.#init.log?.debug({ err, peer: peerId, via }, 'agent card relay failed'))
      return
    }
    this.#fetchedAt.set(peerId, now)
    if (this.#fetchedAt.size > 10_000) this.#fetchedAt.clear()
    void this.#fetchCard(peerId, peerId).catch(err => this.#init.log?.debug({ err, peer: peerId }, 'agent card fetch failed'))
  }

  /** Asks `from` for the signed card of `of` (itself when they are the same) and keeps it once verified. */
  async #fetchCard (from: string, of: string, digest?: string): Promise<void> {
    const signal = AbortSignal.timeout(10_000)
    const stream = await this.#init.host.dialProtocol(peerIdFromString(from), PROTOCOLS.a2a, { signal })
    const lp = lpStream(stream, { maxDataLength: MAX_A2A_FRAME })
    try {
      await lp.write(encodeFrame(from === of ? { kind: 'card' } : { kind: 'card', of }), { signal })
      const frame = decodeFrame(await lp.read({ signal })) as { kind?: unknown, envelope?: unknown, message?: unknown } | null
      await stream.close({ signal })
      if (frame?.kind === 'error') throw new Error(`no card: ${String(frame.message)}`)
      const v = verifyEnvelope(frame?.envelope, { constitution: this.#init.constitution, replay: false })
      if (!v.ok) throw new Error(`card envelope ${v.code}: ${v.reason}`)
      const problem = v.envelope.type !== ENVELOPE_TYPES.card ? `type ${v.envelope.type}` : agentCardProblem(v.envelope.payload)
      if (problem !== undefined) throw new Error(`malformed agent card: ${problem}`)
      const card = v.envelope.payload as AgentCard
      if (card.peerId !== of || v.envelope.sender !== of) throw new Error('card of another peer')
      // a relay may hold an older card than the one announced: keep waiting for that one
      if (digest !== undefined && cardDigest(card) !== digest) throw new Error('the relay holds an older card')
      this.directory.upsert(card, Date.now(), v.envelope)
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  /** This node's card in a signed envelope, re-signed only when the card changed or the envelope is half-way to expiry. */
  #signedCard (): Envelope {
    const card = this.agentCard()
    const digest = cardDigest(card)
    const c = this.#cardCache
    if (c !== undefined && c.digest === digest && Date.parse(c.envelope.ts) + (c.envelope.ttl * 1000) / 2 > Date.now()) return c.envelope
    const envelope = createEnvelope(this.#init.identity, { type: ENVELOPE_TYPES.card, payload: card, ihsan: 1, snr: 1, agent: 'SOVEREIGN' })
    this.#cardCache = { digest, envelope }
    return envelope
  }

  readonly #onGossip = (m: VerifiedMessage): void => {
    if (m.topic !== TOPICS.agents || m.envelope.type !== ENVELOPE_TYPES.card) return
    const card = m.envelope.payload as AgentCard
    if (card.peerId === this.#init.identity.id) return
    if (this.directory.upsert(card, Date.now(), m.envelope)) this.#init.log?.debug({ peer: card.peerId, skills: card.skills.map(s => s.id) }, 'agent card')
  }

  #publishCardSoon (): void {
    if (this.#publishSoon !== undefined || this.#stopped) return
    this.#publishSoon = setTimeout(() => {
      this.#publishSoon = undefined
      void this.#publishCard()
    }, 50)
    this.#publishSoon.unref()
  }

  async #publishCard (): Promise<void> {
    if (this.#stopped) return
    try {
      await this.#init.gossip.publish(TOPICS.agents, ENVELOPE_TYPES.card, this.agentCard(), { ihsan: 1, snr: 1, agent: 'SOVEREIGN' })
    } catch (err) {
      if (!this.#stopped) this.#init.log?.debug({ err }, 'agent card publish failed')
    }
  }

  async #provideSkills (): Promise<void> {
    if (this.#stopped || this.#init.host.services.dht === undefined || this.#init.host.getConnections().length === 0) return
    for (const s of this.skills.list()) {
      if (this.#stopped) return
      try {
        await this.#init.host.contentRouting.provide(await skillKey(s.id), { signal: AbortSignal.timeout(DHT_PROVIDE_TIMEOUT_MS) })
      } catch (err) {
        this.#init.log?.debug({ err, skill: s.id }, 'skill provider record not stored')
      }
    }
  }
}
