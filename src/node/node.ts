import { Level } from 'level'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { Registry, Counter, Gauge, Histogram } from 'prom-client'
import type { Connection, PeerId } from '@libp2p/interface'
import { readFileSync } from 'node:fs'
import { initHome, homePaths, type HomePaths } from './home.ts'
import { resolveConfig, parseHostPort, type NodeConfig } from './config.ts'
import { loadGenesis, soloGenesis, type Genesis } from './genesis.ts'
import { createLogger, type Logger } from './logger.ts'
import { PeerBook } from './peer-book.ts'
import type { MemberState, NodeControl, NodeEvent, NodeStatus, PeerView } from './types.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import type { Constitution } from '../governance/constitution.ts'
import { loadSwarmKey } from '../net/swarm-key.ts'
import { privateNetwork } from '../net/pnet.ts'
import { createHost, type Host, type HostOptions } from '../net/host.ts'
import { SignedGossip, type GossipVerify, type VerifiedMessage } from '../net/gossip.ts'
import { TOPICS, type Topic } from '../net/protocols.ts'
import { createMembership, type Membership } from '../net/membership.ts'
import { startIpcServer } from './ipc.ts'
import { FileError } from '../util/fs.ts'
import { PatternStore } from '../consensus/store.ts'
import { PatternService, ENVELOPE_TYPES } from '../consensus/service.ts'
import { registerSyncHandler, fetchCertificates } from '../consensus/sync.ts'
import type { Outcome } from '../consensus/machine.ts'
import type { Vote } from '../consensus/types.ts'
import type { KeyValueDb } from '../util/db.ts'
import { InferenceService, INFER_SKILL } from '../inference/service.ts'
import { OpenAiHttpBackend } from '../inference/openai-backend.ts'
import { WorkerBackend } from '../inference/worker-backend.ts'
import type { ModelEntry } from '../inference/backend.ts'
import { describeModel, listModelFiles } from '../inference/model-store.ts'
import { resolveModelFile } from '../inference/resolve-model.ts'
import { estimateComplexity } from '../inference/tiers.ts'
import { splitBudget } from '../inference/budget.ts'
import { parseChatBody, type InferenceApi } from '../api/inference.ts'
import { A2aService } from '../a2a/service.ts'
import { TaskInputError } from '../a2a/router.ts'
import type { SkillRegistry } from '../a2a/skills.ts'
import type { TaskControl, TaskPart } from '../a2a/types.ts'

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface StartNodeOptions {
  home: string
  passphrase?: string
  /** command-line overrides of `<home>/config.json` and the defaults */
  config?: Partial<NodeConfig>
  /** serve the IPC socket (default true) */
  ipc?: boolean
  /** a logger, or false for none (default: pino to stderr at config.logLevel) */
  logger?: Logger | false
}

/** The node's store: LevelDB from a home, or any abstract-level database (memory-level in the simulator). */
export type NodeDb = KeyValueDb & { close: () => Promise<void> }

/** What BizraNode.create needs: everything BizraNode.start otherwise reads from a home. */
export interface NodeParts {
  identity: NodeIdentity
  swarmKey: Uint8Array
  genesis: Genesis
  /** resolved config (e.g. `{ ...DEFAULT_CONFIG, listen, bootstrap, api: null }`) */
  config: NodeConfig
  /** opened store; the node closes it */
  db: NodeDb
  /** the home, needed only for the IPC socket and the API token */
  paths?: HomePaths
  /** the libp2p transport (default TCP) */
  transport?: HostOptions['transport']
  /** run the DHT (default true); see HostOptions.dht */
  dht?: boolean
  /** collect libp2p's own metrics into the node's registry (default true; the simulator saves the work) */
  libp2pMetrics?: boolean
  /** gossipsub direct peers (see HostOptions.directPeers) */
  directPeers?: HostOptions['directPeers']
  logger?: Logger | false
  /** serve the IPC socket (default true; needs paths) */
  ipc?: boolean
  /** where gossip envelopes are verified (SignedGossipInit.verify; default: a thread where there are 2+ cores) */
  gossipVerify?: GossipVerify
}

/** Payload of a `/bizra/1/node-info` heartbeat. */
export interface NodeInfo {
  state: MemberState
  addresses: string[]
  /** A2A tasks this node is executing now */
  load: number
  /** mean NTU belief this node holds in its peers */
  belief: number
  agentCard: string | null
}

/**
 * The composition root: identity, swarm key, genesis, level, the libp2p host, signed gossip,
 * membership, and the control surfaces (IPC socket, REST/WS API). `BizraNode.start()` brings
 * them up in order; `stop()` takes them down in reverse and closes level.
 */
export class BizraNode implements NodeControl {
  readonly identity: NodeIdentity
  readonly genesis: Genesis
  readonly constitution: Constitution
  readonly config: NodeConfig
  /** the node's home, or null for a node built from parts (BizraNode.create) */
  readonly paths: HomePaths | null
  readonly libp2p: Host
  readonly gossip: SignedGossip
  readonly db: NodeDb
  readonly patterns: PatternService
  readonly patternStore: PatternStore
  /** agent cards, skills, the task executor and router (DESIGN.md "A2A") */
  readonly a2a: A2aService
  /** the model runner and the `infer` skill (DESIGN.md "Inference") */
  readonly inference: InferenceService
  #apiAddress: string | null = null
  #membership: Membership
  #peerBook: PeerBook
  #log: Logger | undefined
  #registry: Registry
  #listeners = new Set<(e: NodeEvent) => void>()
  #timers: NodeJS.Timeout[] = []
  #closers: Array<() => Promise<void> | void> = []
  #startedAt = Date.now()
  #stopping: Promise<void> | undefined
  #heartbeatSoon: NodeJS.Timeout | undefined
  #lastEarlyHeartbeat = 0
  #metrics: {
    messages: Counter, rejected: Counter, peers: Gauge, proposals: Counter, commits: Counter, expiries: Counter, equivocations: Counter, commitLatency: Histogram,
    tasks: Counter, taskLatency: Histogram, executed: Counter
  }
  #synced = new Set<string>()
  /** the heartbeat addresses last given to libp2p's peer store, per peer */
  #storedAddresses = new Map<string, string>()

  private constructor (fields: {
    identity: NodeIdentity, genesis: Genesis, config: NodeConfig, paths: HomePaths | null, libp2p: Host,
    db: NodeDb, registry: Registry, log: Logger | undefined, gossipVerify?: GossipVerify
  }) {
    this.identity = fields.identity
    this.genesis = fields.genesis
    this.constitution = fields.genesis.constitution
    this.config = fields.config
    this.paths = fields.paths
    this.libp2p = fields.libp2p
    this.db = fields.db
    this.#registry = fields.registry
    this.#log = fields.log
    this.gossip = new SignedGossip(this.libp2p.services.pubsub, { identity: this.identity, constitution: this.constitution, verify: fields.gossipVerify })
    this.#membership = createMembership({
      selfId: this.identity.id,
      heartbeatIntervalMs: this.config.heartbeatMs,
      lone: this.config.bootstrap.length === 0 && this.genesis.bootstrap.filter(a => !a.endsWith(this.identity.id)).length === 0
    })
    this.#peerBook = new PeerBook(this.db)
    this.patternStore = new PatternStore(this.db)
    this.patterns = new PatternService({
      gossip: this.gossip,
      store: this.patternStore,
      identity: this.identity,
      genesis: this.genesis,
      timeoutMs: this.config.proposalTimeoutMs,
      log: this.#log,
      onOutcome: o => this.#onOutcome(o)
    })
    this.a2a = new A2aService({
      host: this.libp2p,
      gossip: this.gossip,
      identity: this.identity,
      constitution: this.constitution,
      db: this.db,
      version: VERSION,
      name: this.config.name ?? undefined,
      defaultSkill: this.config.defaultSkill,
      apiUrl: () => this.#apiAddress === null ? null : `http://${this.#apiAddress}`,
      health: peerId => {
        const v = this.#membership.view(peerId, Date.now())
        return { trust: v?.trust ?? 0.5, healthy: v === undefined || v.state === 'ACTIVE' || v.state === 'JOINING' }
      },
      log: this.#log,
      onExecuted: e => {
        this.#metrics.executed.inc({ state: e.state })
        this.#emit({ type: 'task:executed', id: e.taskId, skill: e.skill, requester: e.requester, state: e.state, ms: e.ms, ts: Date.now() })
      }
    })
    this.inference = new InferenceService({
      a2a: this.a2a,
      backend: this.config.llmUrl !== null
        ? new OpenAiHttpBackend({ url: this.config.llmUrl, apiKey: this.config.llmApiKey ?? (process.env.BIZRA_LLM_API_KEY || undefined) })
        : new WorkerBackend({
          onLog: line => this.#log?.debug({ worker: line }, 'inference worker'),
          onEvent: e => this.#log?.info({ ...e }, `inference worker ${e.type}`)
        }),
      admission: { budgetTokens: this.config.inferBudgetTokens },
      log: this.#log
    })
    this.#metrics = {
      messages: new Counter({ name: 'bizra_gossip_messages_total', help: 'Verified gossip messages received, by topic', labelNames: ['topic'], registers: [this.#registry] }),
      rejected: new Counter({ name: 'bizra_gossip_rejected_total', help: 'Gossip messages refused by the validator, by code and action', labelNames: ['code', 'action'], registers: [this.#registry] }),
      peers: new Gauge({ name: 'bizra_peers', help: 'Known peers by membership state', labelNames: ['state'], registers: [this.#registry] }),
      proposals: new Counter({ name: 'bizra_pattern_proposals_total', help: 'Pattern proposals made by this node', registers: [this.#registry] }),
      commits: new Counter({ name: 'bizra_pattern_commits_total', help: 'Pattern commits seen, by decision', labelNames: ['decision'], registers: [this.#registry] }),
      expiries: new Counter({ name: 'bizra_pattern_expiries_total', help: 'Proposals that expired without a quorum', registers: [this.#registry] }),
      equivocations: new Counter({ name: 'bizra_pattern_equivocations_total', help: 'Validators caught signing two votes on one proposal', registers: [this.#registry] }),
      commitLatency: new Histogram({ name: 'bizra_pattern_commit_latency_seconds', help: 'Time from first seeing a proposal to its commit', buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.#registry] }),
      tasks: new Counter({ name: 'bizra_tasks_total', help: 'A2A tasks this node sent, by final state', labelNames: ['state'], registers: [this.#registry] }),
      taskLatency: new Histogram({ name: 'bizra_task_latency_seconds', help: 'A2A tasks this node sent: time from submitted to completed', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60], registers: [this.#registry] }),
      executed: new Counter({ name: 'bizra_tasks_executed_total', help: 'A2A tasks this node ran for itself or peers, by final state', labelNames: ['state'], registers: [this.#registry] })
    }
  }

  /** Starts a node from its home; throws FileError for a bad swarm key, genesis or config. */
  static async start (options: StartNodeOptions): Promise<BizraNode> {
    const { identity, paths } = await initHome(options.home, options.passphrase)
    const config = resolveConfig(options.home, options.config ?? {})
    const swarmKey = loadSwarmKey(config.swarmKey ?? paths.swarmKey)
    const genesis = config.genesis !== null ? loadGenesis(config.genesis) : soloGenesis(identity.id)
    const log = options.logger === false ? undefined : options.logger ?? createLogger(config.logLevel)
    if (config.api !== null && parseHostPort(config.api) === undefined) throw new FileError(options.home, `api must be host:port, got ${config.api}`)

    // a missing or corrupt model is the user's to fix: say so before anything starts
    for (const m of config.models) checkedModelFile(paths.models, m)

    const db = new Level<string, string>(paths.db)
    try {
      await db.open()
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause
      if (cause?.code === 'LEVEL_LOCKED') throw new FileError(paths.db, 'database is locked: another node is running with this home')
      throw new FileError(paths.db, `cannot open the database: ${(err as Error).message}`)
    }

    return BizraNode.create({ identity, swarmKey, genesis, config, db, paths, logger: log ?? false, ipc: options.ipc })
  }

  /**
   * Builds and starts a node from parts already in hand, with no home directory: the
   * simulator's way in (an in-memory store and transport, no IPC, no API). Takes ownership of
   * `db` (closed on stop, or on a failed start).
   */
  static async create (parts: NodeParts): Promise<BizraNode> {
    const { identity, swarmKey, genesis, config, db } = parts
    const paths = parts.paths ?? null
    if ((config.api !== null || parts.ipc !== false) && paths === null) {
      await db.close()
      throw new Error('a node without a home serves neither the API nor the IPC socket: pass config.api = null and ipc = false')
    }
    const registry = new Registry()
    const bootstrap = [...new Set([...config.bootstrap, ...genesis.bootstrap])].filter(a => !a.endsWith(`/p2p/${identity.id}`))
    let libp2p: Host
    try {
      libp2p = await createHost({
        privateKey: identity.libp2pKey,
        listen: config.listen,
        bootstrap,
        protector: privateNetwork({ psk: swarmKey }),
        mdns: config.mdns,
        metricsRegistry: parts.libp2pMetrics === false ? undefined : registry,
        transport: parts.transport,
        dht: parts.dht,
        directPeers: parts.directPeers
      })
    } catch (err) {
      await db.close()
      throw err
    }
    const node = new BizraNode({ identity, genesis, config: { ...config, bootstrap }, paths, libp2p, db, registry, log: parts.logger === false ? undefined : parts.logger, gossipVerify: parts.gossipVerify })
    try {
      await node.#start({ ipc: parts.ipc })
    } catch (err) {
      await node.stop()
      throw err
    }
    return node
  }

  async #start (options: { ipc?: boolean }): Promise<void> {
    const l = this.libp2p
    l.addEventListener('peer:connect', this.#onConnect)
    l.addEventListener('peer:disconnect', this.#onDisconnect)
    this.#closers.push(() => {
      l.removeEventListener('peer:connect', this.#onConnect)
      l.removeEventListener('peer:disconnect', this.#onDisconnect)
    })
    await l.start()
    this.#closers.push(() => l.stop())

    this.gossip.onMessage(this.#onGossip)
    this.gossip.onReject(r => {
      this.#metrics.rejected.inc({ code: r.code, action: r.action })
      if (r.action === 'reject') this.#emitAll(this.#membership.messageValidated(r.from, false, Date.now()))
      this.#emit({ type: 'message:rejected', topic: r.topic, from: r.from, code: r.code, reason: r.reason, ts: Date.now() })
    })
    this.gossip.start()
    this.#closers.push(() => this.gossip.stop())
    this.patterns.start()
    this.#closers.push(() => this.patterns.stop())
    await this.a2a.start()
    this.#closers.push(() => this.inference.close())
    for (const m of this.config.models) await this.loadModel(m)
    if (this.config.llmUrl !== null) {
      void this.inference.refreshSkill().then(models => this.#log?.info({ llmUrl: this.config.llmUrl, models: models.map(m => m.id) }, 'inference server'))
      this.#every(60_000, () => { void this.inference.refreshSkill() })
    }
    this.#closers.push(() => this.a2a.stop())
    this.#closers.push(this.a2a.onTask(t => {
      if (t.state === 'completed' || t.state === 'failed' || t.state === 'rejected' || t.state === 'canceled') {
        this.#metrics.tasks.inc({ state: t.state })
        if (t.state === 'completed') this.#metrics.taskLatency.observe((t.updatedAt - t.createdAt) / 1000)
      }
      this.#emit({ type: 'task', id: t.id, skill: t.skill, state: t.state, provider: t.provider, error: t.error === null ? null : `${t.error.code}: ${t.error.message}`, ts: Date.now() })
    }))
    await registerSyncHandler(l, this.patternStore)
    l.services.pubsub.addEventListener('subscription-change', this.#onSubscriptionChange)
    this.#closers.push(() => l.services.pubsub.removeEventListener('subscription-change', this.#onSubscriptionChange))

    const hb = this.config.heartbeatMs
    this.#every(hb, () => {
      void this.#heartbeat()
      if (this.libp2p.getConnections().length === 0) void this.#dialBootstrap()
    })
    this.#every(Math.max(50, Math.floor(hb / 2)), () => this.#emitAll(this.#membership.tick(Date.now())))
    void this.#heartbeat()
    void this.#redialKnownPeers()

    if (options.ipc !== false && this.paths !== null) {
      const ipc = await startIpcServer(this.paths.socket, {
        status: () => this.status(),
        peers: () => this.peers(),
        dial: async (params: unknown, signal: AbortSignal) => {
          const ma = (params as { multiaddr?: unknown } | null)?.multiaddr
          if (typeof ma !== 'string') throw new Error('dial needs { multiaddr }')
          return this.dial(ma, signal)
        },
        'pattern.propose': async (params: unknown, signal: AbortSignal) => {
          const p = (params ?? {}) as { id?: unknown, content?: unknown, snr?: unknown, ihsan?: unknown, wait?: unknown }
          if (typeof p.id !== 'string' || typeof p.snr !== 'number' || typeof p.ihsan !== 'number' || p.content === undefined) {
            throw new Error('pattern.propose needs { id, content, snr, ihsan }')
          }
          return this.propose({ id: p.id, content: p.content, snr: p.snr, ihsan: p.ihsan }, { wait: p.wait === true, signal })
        },
        'pattern.list': async () => this.patternList(),
        'a2a.agents': () => this.a2a.agents(),
        'task.send': async (params: unknown, signal: AbortSignal) => this.#ipcSendTask(params, signal),
        'task.status': (params: unknown) => {
          const id = (params as { id?: unknown } | null)?.id
          if (typeof id !== 'string') throw new Error('task.status needs { id }')
          const t = this.a2a.getTask(id)
          if (t === undefined) throw new Error(`no task ${id} on this node`)
          return t
        },
        'models.list': async () => this.models(),
        'models.load': async (params: unknown, _signal: AbortSignal, progress: (v: unknown) => void) => {
          const name = (params as { model?: unknown } | null)?.model
          if (typeof name !== 'string' || name === '') throw new Error('models.load needs { model }')
          return this.loadModel(name, fraction => progress({ fraction }))
        },
        'models.unload': async (params: unknown) => {
          const id = (params as { model?: unknown } | null)?.model
          if (typeof id !== 'string' || id === '') throw new Error('models.unload needs { model }')
          await this.inference.unload(id)
          return { unloaded: id }
        },
        'inference.chat': async (params: unknown, signal: AbortSignal, progress: (v: unknown) => void) => {
          const p = (params ?? {}) as { messages?: unknown, maxTokens?: unknown, temperature?: unknown, seed?: unknown, tier?: unknown }
          const req = parseChatBody({ messages: p.messages, max_tokens: p.maxTokens, temperature: p.temperature, seed: p.seed })
          return this.inference.chat(req.req, { signal, onToken: token => progress({ token }) })
        },
        'task.cancel': async (params: unknown) => {
          const id = (params as { id?: unknown } | null)?.id
          if (typeof id !== 'string') throw new Error('task.cancel needs { id }')
          if (this.a2a.getTask(id) === undefined) throw new Error(`no task ${id} on this node`)
          return this.a2a.cancelTask(id)
        },
        'pattern.show': async (params: unknown) => {
          const id = (params as { id?: unknown } | null)?.id
          if (typeof id !== 'string') throw new Error('pattern.show needs { id }')
          return (await this.patterns.show(id)) ?? null
        }
      })
      this.#closers.push(() => ipc.close())
    }
    if (this.config.api !== null && this.paths !== null) {
      const { host, port } = parseHostPort(this.config.api)!
      const token = readFileSync(this.paths.apiToken, 'utf8').trim()
      const { startApiServer } = await import('../api/server.ts')
      const api = await startApiServer({ control: this, identity: this.identity, constitution: this.constitution, token, host, port, logger: this.#log ?? false, tasks: this.a2a, inference: this.#inferenceApi() })
      this.#apiAddress = api.address
      this.#closers.push(() => api.close())
    }
    this.#log?.info({ peerId: this.identity.id, addresses: this.addresses(), api: this.#apiAddress, federationId: this.genesis.federationId }, 'node started')
  }

  get apiAddress (): string | null {
    return this.#apiAddress
  }

  /** GGUF files in `<home>/models` and the models loaded now */
  async models (): Promise<{ store: unknown[], loaded: ModelEntry[] }> {
    return { store: this.paths === null ? [] : listModelFiles(this.paths.models), loaded: await this.inference.loaded().catch(() => []) }
  }

  /** Loads a model by name (a file in `<home>/models`) or path; FileError names a missing or corrupt file. */
  async loadModel (nameOrPath: string, onProgress?: (fraction: number) => void): Promise<ModelEntry> {
    return this.inference.load(checkedModelFile(this.paths?.models ?? process.cwd(), nameOrPath), onProgress)
  }

  #inferenceApi (): InferenceApi {
    return {
      chat: async (req, options) => this.inference.chat(req, options),
      loaded: async () => this.inference.loaded(),
      models: async () => (await this.models()).store,
      remoteProviders: () => this.a2a.directory.providers(INFER_SKILL.id),
      tier: ({ messages, maxTokens }) => {
        const estimate = estimateComplexity({ prompt: messages.map(m => m.content).join('\n'), maxTokens })
        return { ...estimate, budget: splitBudget(maxTokens) }
      }
    }
  }

  /** register skills here: `node.skills.register(spec, handler)` */
  get skills (): SkillRegistry {
    return this.a2a.skills
  }

  /** send, follow and cancel A2A tasks */
  get tasks (): TaskControl {
    return this.a2a
  }

  get peerId (): string {
    return this.identity.id
  }

  addresses (): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString())
  }

  status (): NodeStatus {
    const now = Date.now()
    const views = this.#membership.views(now)
    return {
      peerId: this.identity.id,
      addresses: this.addresses(),
      api: this.#apiAddress,
      state: this.#membership.selfState(now),
      peers: views.filter(v => v.state !== 'DEAD').length,
      connections: this.libp2p.getConnections().length,
      federationId: this.genesis.federationId,
      uptimeS: Math.round((now - this.#startedAt) / 1000),
      version: VERSION
    }
  }

  peers (): PeerView[] {
    const now = Date.now()
    const connected = new Set(this.libp2p.getConnections().map(c => c.remotePeer.toString()))
    return this.#membership.views(now).map(v => ({
      ...v,
      addresses: v.addresses.length > 0 ? v.addresses : this.#connectionAddresses(v.peerId),
      connected: connected.has(v.peerId)
    }))
  }

  /** Peers ranked best-first for routing: healthy and trusted before suspect or low-belief. */
  rankPeers (peerIds: string[]): string[] {
    return this.#membership.rankPeers(peerIds)
  }

  async dial (address: string, signal?: AbortSignal): Promise<{ peerId: string }> {
    const ma = multiaddr(address)
    const conn: Connection = await this.libp2p.dial(ma, { signal: signal ?? AbortSignal.timeout(15_000) })
    return { peerId: conn.remotePeer.toString() }
  }

  /** Proposes a pattern to the federation (see PatternService.propose). */
  async propose (input: Parameters<PatternService['propose']>[0], options: Parameters<PatternService['propose']>[1] = {}): ReturnType<PatternService['propose']> {
    const result = await this.patterns.propose(input, options)
    this.#metrics.proposals.inc()
    return result
  }

  async patternList (): Promise<unknown[]> {
    return this.patterns.list()
  }

  async patternShow (id: string): Promise<unknown> {
    return this.patterns.show(id)
  }

  async publish<P> (topic: Topic, type: string, payload: P): Promise<number> {
    return (await this.gossip.publish(topic, type, payload)).recipients
  }

  async metrics (): Promise<string> {
    const now = Date.now()
    this.#metrics.peers.reset()
    for (const v of this.#membership.views(now)) this.#metrics.peers.inc({ state: v.state })
    return this.#registry.metrics()
  }

  onEvent (listener: (event: NodeEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Stops everything that was started, in reverse order, then closes level. Idempotent. */
  async stop (): Promise<void> {
    this.#stopping ??= (async () => {
      for (const t of this.#timers) clearInterval(t)
      if (this.#heartbeatSoon !== undefined) clearTimeout(this.#heartbeatSoon)
      for (const close of this.#closers.reverse()) {
        try {
          await close()
        } catch (err) {
          this.#log?.warn({ err }, 'error while stopping')
        }
      }
      await this.db.close()
      this.#log?.info('node stopped')
    })()
    return this.#stopping
  }

  #every (ms: number, fn: () => void): void {
    const t = setInterval(fn, ms)
    t.unref()
    this.#timers.push(t)
  }

  #emit (event: NodeEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event)
      } catch (err) {
        this.#log?.warn({ err }, 'event listener failed')
      }
    }
  }

  #emitAll (events: NodeEvent[]): void {
    for (const e of events) {
      if (e.type === 'peer:dead' || e.type === 'peer:left') this.a2a.forgetPeer(e.peerId)
      if ('peerId' in e) this.#log?.info({ peer: e.peerId }, e.type)
      this.#emit(e)
    }
  }

  #connectionAddresses (peerId: string): string[] {
    return this.libp2p.getConnections().filter(c => c.remotePeer.toString() === peerId).map(c => c.remoteAddr.toString())
  }

  async #heartbeat (): Promise<void> {
    if (this.#stopping !== undefined) return
    const now = Date.now()
    const views = this.#membership.views(now)
    const info: NodeInfo = {
      state: this.#membership.selfState(now),
      addresses: this.addresses(),
      load: this.a2a.executor.active,
      belief: views.length === 0 ? 1 : views.reduce((s, v) => s + v.belief, 0) / views.length,
      agentCard: this.a2a.cardDigest()
    }
    try {
      await this.gossip.publish(TOPICS.nodeInfo, 'node-info', info, { ttl: Math.max(1, Math.ceil((this.config.heartbeatMs * 3) / 1000)), ihsan: 1, snr: 1 })
    } catch (err) {
      if (this.#stopping === undefined) this.#log?.debug({ err }, 'heartbeat publish failed')
    }
  }

  /**
   * A new peer on the node-info topic should not wait a full interval to hear from us; but in a
   * federation of hundreds peers join all the time, so early heartbeats are at most one per
   * quarter interval (else every join would cost a heartbeat from every node).
   */
  readonly #onSubscriptionChange = (): void => {
    if (this.#heartbeatSoon !== undefined || this.#stopping !== undefined) return
    const wait = Math.max(20, this.#lastEarlyHeartbeat + this.config.heartbeatMs / 4 - Date.now())
    this.#heartbeatSoon = setTimeout(() => {
      this.#lastEarlyHeartbeat = Date.now()
      this.#heartbeatSoon = undefined
      void this.#heartbeat()
    }, wait)
    this.#heartbeatSoon.unref()
  }

  /** `task.send` over IPC: `{ skill, text | data, to?, deadline? (s), wait? }` */
  async #ipcSendTask (params: unknown, signal: AbortSignal): Promise<unknown> {
    const p = (params ?? {}) as { skill?: unknown, text?: unknown, data?: unknown, to?: unknown, deadline?: unknown, wait?: unknown }
    if (p.text !== undefined && p.data !== undefined) throw new TaskInputError('give text or data, not both')
    let parts: TaskPart[]
    if (typeof p.text === 'string') parts = [{ text: p.text }]
    else if (p.data !== undefined) parts = [{ data: p.data }]
    else throw new TaskInputError('task.send needs text or data')
    const record = await this.a2a.sendTask({
      skill: typeof p.skill === 'string' ? p.skill : this.a2a.defaultSkill,
      message: { parts },
      to: p.to === undefined ? undefined : p.to as string,
      deadlineS: p.deadline === undefined ? undefined : p.deadline as number
    })
    if (p.wait !== true) return record
    try {
      return await this.a2a.waitTask(record.id, signal)
    } catch (err) {
      // the CLI went away: the task is its to cancel
      if (signal.aborted) await this.a2a.cancelTask(record.id).catch(() => {})
      throw err
    }
  }

  #onOutcome (o: Outcome): void {
    const ts = Date.now()
    switch (o.kind) {
      case 'proposed':
        this.#emit({ type: 'pattern:proposed', id: o.proposal.id, digest: o.digest, proposer: o.proposal.proposer, ts })
        break
      case 'committed':
        this.#metrics.commits.inc({ decision: o.certificate.decision })
        this.#metrics.commitLatency.observe(o.latencyMs / 1000)
        this.#emit({ type: 'pattern:committed', id: o.certificate.proposal.id, digest: o.digest, decision: o.certificate.decision, latencyMs: o.latencyMs, ts })
        break
      case 'expired':
        this.#metrics.expiries.inc()
        this.#emit({ type: 'pattern:expired', id: o.proposal.id, digest: o.digest, ts })
        break
      case 'equivocation':
        this.#metrics.equivocations.inc()
        this.#emit({ type: 'pattern:equivocation', voter: o.evidence.voter, digest: o.evidence.proposal, ts })
        break
      default:
        break
    }
  }

  /** Fetches committed patterns from a newly connected peer once, verifying each certificate. */
  async #syncFrom (peerId: PeerId): Promise<void> {
    const id = peerId.toString()
    if (this.#synced.has(id) || this.#stopping !== undefined) return
    this.#synced.add(id)
    try {
      const certs = await fetchCertificates(this.libp2p, peerId)
      if (certs.length === 0) return
      const { stored, refused } = await this.patterns.importCertificates(certs)
      this.#log?.info({ peer: id, stored, refused }, 'synced committed patterns')
    } catch (err) {
      this.#synced.delete(id)
      this.#log?.debug({ err, peer: id }, 'pattern sync failed')
    }
  }

  readonly #onGossip = (m: VerifiedMessage): void => {
    const now = Date.now()
    this.#metrics.messages.inc({ topic: m.topic })
    if (m.envelope.type === ENVELOPE_TYPES.vote) {
      const v = m.envelope.payload as Partial<Vote>
      if (typeof v?.proposalId === 'string' && typeof v.proposal === 'string' && typeof v.decision === 'string') {
        this.#emit({ type: 'pattern:vote', id: v.proposalId, digest: v.proposal, voter: m.envelope.sender, decision: v.decision, ts: now })
      }
    }
    this.#emitAll(this.#membership.messageValidated(m.from, true, now))
    if (m.topic === TOPICS.nodeInfo && m.envelope.type === 'node-info') {
      const info = m.envelope.payload as Partial<NodeInfo>
      const addresses = Array.isArray(info.addresses) ? info.addresses.filter((a): a is string => typeof a === 'string').slice(0, 16) : []
      const load = typeof info.load === 'number' ? info.load : undefined
      this.#emitAll(this.#membership.heartbeat(m.envelope.sender, now, { addresses, load }))
      if (load !== undefined) this.a2a.reportLoad(m.envelope.sender, load)
      if (typeof info.agentCard === 'string') this.a2a.noteCardDigest(m.envelope.sender, info.agentCard, m.from)
      this.#storeAddresses(m.envelope.sender, addresses)
      void this.#peerBook.remember(m.envelope.sender, { addresses, lastSeen: now }).catch(() => {})
      return
    }
    this.#emit({ type: 'message', topic: m.topic, sender: m.envelope.sender, envelopeType: m.envelope.type, ts: now })
  }

  readonly #onConnect = (e: CustomEvent<PeerId>): void => {
    this.#emitAll(this.#membership.connected(e.detail.toString(), Date.now()))
    void this.#syncFrom(e.detail)
  }

  readonly #onDisconnect = (e: CustomEvent<PeerId>): void => {
    this.#emitAll(this.#membership.disconnected(e.detail.toString(), Date.now()))
  }

  /**
   * A member's own addresses, from its signed heartbeat, go into libp2p's peer store (when they
   * change), so that a task reaches any member by its PeerId without a DHT lookup, or where there
   * is no DHT.
   */
  #storeAddresses (peerId: string, addresses: string[]): void {
    if (addresses.length === 0 || peerId === this.identity.id) return
    const key = addresses.join(' ')
    if (this.#storedAddresses.get(peerId) === key) return
    let multiaddrs
    try {
      multiaddrs = addresses.map(a => multiaddr(a))
    } catch {
      return // not multiaddrs: nothing to store
    }
    if (this.#storedAddresses.size >= 10_000) this.#storedAddresses.clear()
    this.#storedAddresses.set(peerId, key)
    void this.libp2p.peerStore.merge(peerIdFromString(peerId), { multiaddrs }).catch(err => this.#log?.debug({ err, peer: peerId }, 'peer store merge failed'))
  }

  /** A node that lost every connection (or never got one) keeps trying its bootstrap peers. */
  async #dialBootstrap (): Promise<void> {
    for (const a of this.config.bootstrap) {
      if (this.#stopping !== undefined) return
      try {
        await this.libp2p.dial(multiaddr(a), { signal: AbortSignal.timeout(5_000) })
        return
      } catch {
        // next one; the timer tries again
      }
    }
  }

  async #redialKnownPeers (): Promise<void> {
    try {
      for (const p of await this.#peerBook.recent(32)) {
        if (this.#stopping !== undefined) return
        for (const a of p.addresses) {
          const full = a.includes('/p2p/') ? a : `${a}/p2p/${p.peerId}`
          try {
            await this.libp2p.dial(multiaddr(full), { signal: AbortSignal.timeout(5_000) })
            break
          } catch {
            // try the next address; a stale hint is normal
          }
        }
      }
    } catch (err) {
      this.#log?.debug({ err }, 'redial of known peers failed')
    }
  }
}

/** The GGUF file a model name stands for, its header read: FileError names a missing or corrupt one. */
function checkedModelFile (dir: string, nameOrPath: string): string {
  const file = resolveModelFile(dir, nameOrPath)
  const d = describeModel(file)
  if (!d.ok) throw new FileError(file, d.error.startsWith(file) ? d.error.slice(file.length).replace(/^:\s*/, '') : d.error)
  return file
}

export async function startNode (options: StartNodeOptions): Promise<BizraNode> {
  return BizraNode.start(options)
}
