import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Role, TaskState, type Message, type Part, type SendMessageRequest, type StreamResponse, type Task } from '@a2a-js/sdk'
import {
  Client,
  ClientFactory,
  ClientFactoryOptions,
  JsonRpcTransportFactory,
  createAuthenticatingFetchWithRetry,
  type ClientConfig
} from '@a2a-js/sdk/client'
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/api/server.ts'
import { A2A_JSONRPC_PATH, BIZRA_NODE_EXTENSION } from '../../src/a2a/http.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { DEFAULT_CONSTITUTION } from '../../src/governance/constitution.ts'
import { canonicalize } from '../../src/pci/canonical.ts'
import { blake3Text } from '../../src/pci/digest.ts'
import { startTestNode, swarmKeyFile, until } from '../helpers/nodes.ts'
import { verifyProof } from '../../src/state/proof.ts'
import { TERMINAL_STATES, type AgentCard, type SendTaskOptions, type SkillSpec, type TaskControl, type TaskPart, type TaskRecord } from '../../src/a2a/types.ts'
import type { NodeControl } from '../../src/node/types.ts'

/**
 * A2A over HTTP, driven by the stock `@a2a-js/sdk` client (v1.0 JSON-RPC, and its v0.3
 * compat transport) and by raw requests. The tasks behind the endpoint come from
 * createTaskControl(), the one place to swap the test double for real nodes.
 */

// ---------------------------------------------------------------------------------------------
// TEST DOUBLE: an in-process TaskControl, only for the test that counts the endpoint's listeners.
// It keeps the interface's semantics: sendTask throws TaskInputError for a caller's mistake and
// otherwise resolves with the record in `submitted`; the skill runs afterwards; every change
// reaches onTask listeners; waitTask/cancelTask resolve once terminal; an unknown skill ends
// `rejected` (UNKNOWN_SKILL) as the router's does when no peer offers it.

class TaskInputError extends Error {
  override readonly name = 'TaskInputError'
}

type FakeSkill = (parts: TaskPart[], ctx: { signal: AbortSignal, progress: (parts: TaskPart[]) => void }) => Promise<TaskPart[]>

const spec = (id: string, description: string): SkillSpec =>
  ({ id, name: id, description, tags: ['test'], inputModes: ['text/plain', 'application/json'], outputModes: ['text/plain', 'application/json'] })

const sleep = async (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  if (signal.aborted) return reject(signal.reason)
  const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
  const onAbort = (): void => { clearTimeout(t); reject(signal.reason) }
  signal.addEventListener('abort', onAbort, { once: true })
})

/** what the node's `hash` skill returns: BLAKE3 hex of the joined text parts (or of one data part's canonical JSON) */
const hashOf = (parts: TaskPart[]): string => {
  const only = parts.length === 1 ? parts[0] : undefined
  const input = only !== undefined && 'data' in only ? canonicalize(only.data) : parts.map(p => 'text' in p ? p.text : '').join('')
  return Buffer.from(blake3Text(input)).toString('hex')
}

const SKILLS: Record<string, { spec: SkillSpec, run: FakeSkill }> = {
  echo: { spec: spec('echo', 'Returns the message it was given'), run: async parts => parts },
  hash: { spec: spec('hash', 'BLAKE3 hex of the message'), run: async parts => [{ text: hashOf(parts) }] },
  // sleeps the number of ms its text says (default 10 s), reporting progress every 20 ms
  slow: {
    spec: spec('slow', 'Sleeps, reporting progress'),
    run: async (parts, { signal, progress }) => {
      const first = parts[0]
      const ms = first !== undefined && 'text' in first && /^\d+$/.test(first.text) ? Number(first.text) : 10_000
      for (let n = 1, end = Date.now() + ms; Date.now() < end; n++) {
        progress([{ text: `tick ${n}` }])
        await sleep(Math.min(20, Math.max(0, end - Date.now())), signal)
      }
      return [{ text: `slept ${ms} ms` }]
    }
  },
  fail: { spec: spec('fail', 'Always fails'), run: async () => { throw new Error('the skill broke') } }
}

const SELF = '12D3KooWSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1f'
const PEER = '12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer'

class FakeTaskControl implements TaskControl {
  readonly defaultSkill = 'echo'
  readonly #tasks = new Map<string, { rec: TaskRecord, cancel: AbortController, parts: TaskPart[] }>()
  readonly #listeners = new Set<(t: TaskRecord) => void>()
  readonly #waiters = new Map<string, Set<(t: TaskRecord) => void>>()

  get listeners (): number {
    return this.#listeners.size
  }

  agentCard (): AgentCard {
    return {
      name: 'bizra-test', description: 'a test double', version: '0.1.0', url: `libp2p://${SELF}`,
      capabilities: { streaming: true, pushNotifications: false },
      defaultInputModes: ['text/plain', 'application/json'], defaultOutputModes: ['text/plain', 'application/json'],
      skills: Object.values(SKILLS).map(s => s.spec), peerId: SELF
    }
  }

  /** this node, and a peer that offers a skill this node does not (a card lists the federation's skills) */
  agents (): AgentCard[] {
    return [this.agentCard(), { ...this.agentCard(), name: 'peer', peerId: PEER, skills: [spec('infer', 'LLM inference'), SKILLS.echo!.spec] }]
  }

  async sendTask (o: SendTaskOptions): Promise<TaskRecord> {
    if (typeof o.skill !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(o.skill)) throw new TaskInputError('skill must be a skill id (1-64 characters [a-z0-9._-])')
    if (!Array.isArray(o.message?.parts) || o.message.parts.length === 0) throw new TaskInputError('message: parts must not be empty')
    const id = o.id ?? randomUUID()
    if (this.#tasks.has(id)) throw new TaskInputError(`task ${id} already exists`)
    const now = Date.now()
    const deadline = now + (o.deadlineS ?? 60) * 1000
    const live = {
      rec: { id, skill: o.skill, state: 'submitted' as const, provider: null, attempts: [], result: null, progress: null, error: null, proof: null, proofHead: null, createdAt: now, updatedAt: now, deadline },
      cancel: new AbortController(),
      parts: structuredClone(o.message.parts)
    }
    this.#tasks.set(id, live)
    this.#notify(id)
    setImmediate(() => { void this.#run(id) })
    return structuredClone(live.rec)
  }

  getTask (id: string): TaskRecord | undefined {
    const live = this.#tasks.get(id)
    return live === undefined ? undefined : structuredClone(live.rec)
  }

  async waitTask (id: string, signal?: AbortSignal): Promise<TaskRecord> {
    const live = this.#tasks.get(id)
    if (live === undefined) throw new TaskInputError(`no task ${id}`)
    if (TERMINAL_STATES.has(live.rec.state)) return structuredClone(live.rec)
    return new Promise((resolve, reject) => {
      let set = this.#waiters.get(id)
      if (set === undefined) this.#waiters.set(id, set = new Set())
      const done = (t: TaskRecord): void => { signal?.removeEventListener('abort', onAbort); resolve(t) }
      const onAbort = (): void => { set.delete(done); reject(signal?.reason) }
      if (signal?.aborted === true) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      set.add(done)
    })
  }

  async cancelTask (id: string): Promise<TaskRecord> {
    const live = this.#tasks.get(id)
    if (live === undefined) throw new TaskInputError(`no task ${id}`)
    live.cancel.abort(new Error('canceled'))
    return this.waitTask(id)
  }

  onTask (listener: (t: TaskRecord) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** fails what is still running, as a stopping node does */
  stop (): void {
    for (const [id, live] of this.#tasks) {
      live.cancel.abort(new Error('stopping'))
      this.#end(id, { state: 'failed', error: { code: 'STOPPED', message: 'the node stopped before the task finished' } })
    }
  }

  async #run (id: string): Promise<void> {
    const live = this.#tasks.get(id)!
    const skill = SKILLS[live.rec.skill]
    if (skill === undefined) return this.#end(id, { state: 'rejected', error: { code: 'UNKNOWN_SKILL', message: `no node in the federation offers skill "${live.rec.skill}"` } })
    if (live.cancel.signal.aborted) return this.#end(id, { state: 'canceled', error: { code: 'CANCELED', message: 'canceled by the requester' } })
    const deadline = AbortSignal.timeout(Math.max(0, live.rec.deadline - Date.now()))
    const signal = AbortSignal.any([live.cancel.signal, deadline])
    Object.assign(live.rec, { state: 'working', provider: SELF })
    this.#notify(id)
    try {
      const parts = await skill.run(structuredClone(live.parts), {
        signal,
        progress: p => {
          if (TERMINAL_STATES.has(live.rec.state)) return
          live.rec.progress = structuredClone(p)
          this.#notify(id)
        }
      })
      this.#end(id, { state: 'completed', result: parts, proof: { head: 'ab'.repeat(32), path: [] }, proofHead: 'ab'.repeat(32) })
    } catch (err) {
      if (live.cancel.signal.aborted) this.#end(id, { state: 'canceled', error: { code: 'CANCELED', message: 'canceled by the requester' } })
      else if (deadline.aborted) this.#end(id, { state: 'failed', error: { code: 'DEADLINE', message: 'deadline exceeded' } })
      else this.#end(id, { state: 'failed', error: { code: 'SKILL_ERROR', message: (err as Error).message } })
    }
  }

  #end (id: string, outcome: Partial<TaskRecord>): void {
    const live = this.#tasks.get(id)!
    if (TERMINAL_STATES.has(live.rec.state)) return
    Object.assign(live.rec, outcome)
    this.#notify(id)
    const waiters = this.#waiters.get(id)
    this.#waiters.delete(id)
    for (const w of waiters ?? []) w(structuredClone(live.rec))
  }

  #notify (id: string): void {
    const rec = this.#tasks.get(id)!.rec
    rec.updatedAt = Date.now()
    for (const l of this.#listeners) l(structuredClone(rec))
  }
}

/**
 * The TaskControl behind the endpoint: two real nodes over libp2p. Node A (the one serving
 * HTTP) has the built-in echo and hash; node B also offers slow and fail, so a task for those
 * is routed from A to B, proven and verified. The test double serves only the test that counts
 * the endpoint's listeners, which a real node does not expose.
 */
async function createTaskControl (fake = false): Promise<{ tasks: TaskControl, close: () => Promise<void> }> {
  if (fake) {
    const tasks = new FakeTaskControl()
    return { tasks, close: async () => { tasks.stop() } }
  }
  const key = swarmKeyFile()
  const a = await startTestNode({ swarmKey: key, config: { name: 'bizra-test' } })
  const b = await startTestNode({ swarmKey: key, bootstrap: [a.addresses().find(x => x.includes('127.0.0.1'))!] })
  for (const id of ['slow', 'fail']) {
    const skill = SKILLS[id]!
    b.skills.register(skill.spec, async (m, ctx) => ({ parts: await skill.run(m.parts, ctx) }))
  }
  await until([a, b], () => a.a2a.directory.providers('slow').includes(b.peerId), 'node A knows node B\'s skills')
  return { tasks: a.tasks, close: async () => { await Promise.all([a.stop(), b.stop()]) } }
}

// ---------------------------------------------------------------------------------------------
// harness

const TOKEN = 'a2a-test-token-0123456789abcdef'

/** the REST side is not under test here: a NodeControl that does nothing */
const nodeControl = (peerId: string): NodeControl => ({
  peerId,
  status: () => ({ peerId, addresses: [], api: null, state: 'ACTIVE', peers: 0, connections: 0, federationId: 'test', uptimeS: 0, version: '0.1.0' }),
  peers: () => [],
  dial: async () => { throw new Error('no dialing here') },
  metrics: async () => '',
  onEvent: () => () => {},
  propose: async () => ({}),
  patternList: async () => [],
  patternShow: async () => undefined
})

interface Harness { api: ApiServer, tasks: TaskControl, base: string, rpcUrl: string, close: () => Promise<void> }

async function startHarness (extra: Partial<ApiServerOptions> = {}, fake = false): Promise<Harness> {
  const identity = await NodeIdentity.generate()
  const { tasks, close } = await createTaskControl(fake)
  const api = await startApiServer({
    control: nodeControl(identity.id),
    identity,
    constitution: { ...DEFAULT_CONSTITUTION },
    token: TOKEN,
    host: '127.0.0.1',
    port: 0,
    rateLimit: { max: 100_000, timeWindowMs: 60_000 },
    logger: false,
    tasks,
    ...extra
  })
  const base = `http://${api.address}`
  return { api, tasks, base, rpcUrl: `${base}${A2A_JSONRPC_PATH}`, close: async () => { await api.close(); await close() } }
}

/** the SDK's way to send a token: a fetch that adds it (createAuthenticatingFetchWithRetry) */
const authFetch = (token = TOKEN): typeof fetch => createAuthenticatingFetchWithRetry(fetch, {
  headers: async () => ({ authorization: `Bearer ${token}` }),
  shouldRetryWithHeaders: async () => undefined
})

/** a stock client: `new ClientFactory(...).createFromUrl(base)` with the token on the JSON-RPC transport */
async function stockClient (base: string, opts: { token?: string | null, legacy?: boolean, config?: ClientConfig } = {}): Promise<Client> {
  const fetchImpl = opts.token === null ? fetch : authFetch(opts.token)
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: opts.legacy === true } })],
    clientConfig: opts.config
  }))
  return factory.createFromUrl(base)
}

const textPart = (text: string): Part => ({ content: { $case: 'text', value: text }, mediaType: 'text/plain', filename: '', metadata: undefined })

function userMessage (parts: Part[] | string, metadata?: Record<string, unknown>): Message {
  return {
    messageId: randomUUID(),
    contextId: '',
    taskId: '',
    role: Role.ROLE_USER,
    parts: typeof parts === 'string' ? [textPart(parts)] : parts,
    metadata,
    extensions: [],
    referenceTaskIds: []
  }
}

const request = (message: Message, returnImmediately = false): SendMessageRequest =>
  ({ tenant: '', message, configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately }, metadata: undefined })

const textOf = (parts: Part[] | undefined): string => (parts ?? []).map(p => p.content?.$case === 'text' ? p.content.value : '').join('')

function asTask (r: Message | Task): Task {
  assert.ok('status' in r && 'id' in r, `expected a task, got ${JSON.stringify(r)}`)
  return r
}

const rpcPost = async (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> => fetch(url, {
  method: 'POST',
  headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body)
})

/** reads an SSE response to its end: the JSON of each data event */
async function sseEvents (r: Response): Promise<any[]> {
  const text = await r.text()
  return text.split('\n\n').map(block => block.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5).trim()).join('')).filter(d => d !== '').map(d => JSON.parse(d))
}

async function waitFor (cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

// ---------------------------------------------------------------------------------------------

describe('A2A over HTTP (stock @a2a-js/sdk client)', () => {
  let h: Harness
  let client: Client

  before(async () => {
    h = await startHarness()
    client = await stockClient(h.base)
  })
  after(async () => { await h.close() })

  test('the agent card: public, v1.0 for A2A-Version 1.0, v0.3 without it', async () => {
    const card = await client.getAgentCard()
    assert.equal(card.name, 'bizra-test')
    assert.equal(client.protocolVersion, '1.0')
    assert.deepEqual(card.supportedInterfaces.map(i => [i.url, i.protocolBinding, i.protocolVersion]), [[h.rpcUrl, 'JSONRPC', '1.0'], [h.rpcUrl, 'JSONRPC', '0.3']])
    assert.deepEqual(card.skills.map(s => s.id), ['echo', 'hash', 'slow', 'fail'], 'own skills first, then the peers\'')
    assert.equal(card.capabilities?.streaming, true)
    assert.equal(card.capabilities?.pushNotifications, false)
    const ext = card.capabilities?.extensions.find(e => e.uri === BIZRA_NODE_EXTENSION)
    assert.deepEqual(ext?.params, { peerId: h.tasks.agentCard().peerId, defaultSkill: 'echo' })
    assert.deepEqual(card.securitySchemes.bearer?.scheme, { $case: 'httpAuthSecurityScheme', value: { description: card.securitySchemes.bearer?.scheme?.value.description, scheme: 'Bearer', bearerFormat: '' } })
    assert.deepEqual(card.securityRequirements, [{ schemes: { bearer: { list: [] } } }])

    // no token needed, no A2A-Version = a v0.3 client
    const r = await fetch(`${h.base}/.well-known/agent-card.json`)
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/)
    assert.match(r.headers.get('vary') ?? '', /A2A-Version/i)
    const legacy = await r.json() as any
    assert.equal(legacy.protocolVersion, '0.3')
    assert.equal(legacy.url, h.rpcUrl)
    assert.equal(legacy.preferredTransport, 'JSONRPC')
    assert.deepEqual(legacy.securitySchemes.bearer, { type: 'http', scheme: 'bearer', description: legacy.securitySchemes.bearer.description })
    assert.deepEqual(legacy.security, [{ bearer: [] }])
    assert.deepEqual(legacy.skills.map((s: any) => s.id), ['echo', 'hash', 'slow', 'fail'])

    const v1 = await (await fetch(`${h.base}/.well-known/agent-card.json`, { headers: { 'a2a-version': '1.0' } })).json() as any
    assert.equal(v1.url, undefined)
    assert.deepEqual(v1.securitySchemes, { bearer: { httpAuthSecurityScheme: { description: v1.securitySchemes.bearer.httpAuthSecurityScheme.description, scheme: 'Bearer' } } })
  })

  test('send message: the default skill (echo) replies with the input text', async () => {
    const task = asTask(await client.sendMessage(request(userMessage('salaam, federation'))))
    assert.equal(task.status?.state, TaskState.TASK_STATE_COMPLETED)
    assert.equal(textOf(task.status?.message?.parts), 'salaam, federation')
    assert.equal(task.status?.message?.role, Role.ROLE_AGENT)
    assert.equal(task.artifacts.length, 1)
    assert.equal(textOf(task.artifacts[0]!.parts), 'salaam, federation')
    assert.equal(task.artifacts[0]!.metadata?.provider, h.tasks.agentCard().peerId, 'echo ran on the node itself')
    const proof = verifyProof(task.artifacts[0]!.metadata?.proof)
    assert.ok(proof.ok, 'the Merkle proof rides along and verifies offline')
    assert.equal(task.artifacts[0]!.metadata?.proofHead, proof.head)
    assert.equal(task.metadata?.skill, 'echo')
    // the A2A task id is the node's task id
    assert.equal(h.tasks.getTask(task.id)?.state, 'completed')
  })

  test('metadata.skill picks the skill: hash', async () => {
    const task = asTask(await client.sendMessage(request(userMessage('hash me', { skill: 'hash' }))))
    assert.equal(task.status?.state, TaskState.TASK_STATE_COMPLETED)
    assert.equal(textOf(task.status?.message?.parts), Buffer.from(blake3Text('hash me')).toString('hex'))
    assert.equal(task.metadata?.skill, 'hash')
  })

  test('data parts go both ways', async () => {
    const data: Part = { content: { $case: 'data', value: { n: 1, list: ['a', true, null] } }, mediaType: 'application/json', filename: '', metadata: undefined }
    const echoed = asTask(await client.sendMessage(request(userMessage([data]))))
    assert.equal(echoed.status?.state, TaskState.TASK_STATE_COMPLETED)
    assert.deepEqual(echoed.artifacts[0]!.parts[0]!.content, { $case: 'data', value: { n: 1, list: ['a', true, null] } })
    const hashed = asTask(await client.sendMessage(request(userMessage([data], { skill: 'hash' }))))
    assert.equal(textOf(hashed.artifacts[0]!.parts), hashOf([{ data: { n: 1, list: ['a', true, null] } }]))
  })

  test('streaming send: the task, working updates with progress, the artifact, then completed', async () => {
    const events: StreamResponse[] = []
    for await (const e of client.sendMessageStream(request(userMessage('150', { skill: 'slow' })))) events.push(e)
    const kinds = events.map(e => e.payload?.$case)
    assert.equal(kinds[0], 'task')
    const first = events[0]!.payload!.value as Task
    assert.equal(first.status?.state, TaskState.TASK_STATE_SUBMITTED)
    const updates = events.filter(e => e.payload?.$case === 'statusUpdate').map(e => e.payload!.value as { status: Task['status'] })
    const working = updates.filter(u => u.status?.state === TaskState.TASK_STATE_WORKING)
    assert.ok(working.length >= 2, `working updates: ${working.length}`)
    assert.match(textOf(working[working.length - 1]!.status?.message?.parts), /^tick \d+$/)
    assert.ok(working.length <= 4, 'progress is throttled (100 ms)')
    const artifact = events.find(e => e.payload?.$case === 'artifactUpdate')
    assert.equal(textOf((artifact?.payload?.value as { artifact: Task['artifacts'][number] }).artifact.parts), 'slept 150 ms')
    const last = updates[updates.length - 1]!
    assert.equal(last.status?.state, TaskState.TASK_STATE_COMPLETED)
    assert.equal(textOf(last.status?.message?.parts), 'slept 150 ms')
    assert.equal(kinds[kinds.length - 1], 'statusUpdate')

    // the task's history holds one progress message, not one per update
    const stored = await client.getTask({ tenant: '', id: first.id, historyLength: undefined })
    assert.equal(stored.history.filter(m => m.messageId === `${first.id}-progress`).length, 1)
  })

  test('a streaming client that goes away: the task still ends in the store; another client can resubscribe', async () => {
    const abort = new AbortController()
    let id: string | undefined
    await assert.rejects((async () => {
      for await (const e of client.sendMessageStream(request(userMessage('200', { skill: 'slow' })), { signal: abort.signal })) {
        if (e.payload?.$case === 'task') {
          id = e.payload.value.id
          abort.abort()
        }
      }
    })())
    assert.ok(id !== undefined)
    await waitFor(() => h.tasks.getTask(id!)?.state === 'completed')
    await waitFor(() => false, 50).catch(() => {}) // let the last events reach the store
    const got = await client.getTask({ tenant: '', id, historyLength: undefined })
    assert.equal(got.status?.state, TaskState.TASK_STATE_COMPLETED)
    assert.equal(textOf(got.artifacts[0]!.parts), 'slept 200 ms')

    const started = asTask(await client.sendMessage(request(userMessage('150', { skill: 'slow' }), true)))
    const states: TaskState[] = []
    for await (const e of client.resubscribeTask({ tenant: '', id: started.id })) {
      if (e.payload?.$case === 'statusUpdate') states.push(e.payload.value.status!.state)
    }
    assert.equal(states[states.length - 1], TaskState.TASK_STATE_COMPLETED)
  })

  test('get task', async () => {
    const sent = asTask(await client.sendMessage(request(userMessage('remember me'))))
    const got = await client.getTask({ tenant: '', id: sent.id, historyLength: undefined })
    assert.equal(got.id, sent.id)
    assert.equal(got.contextId, sent.contextId)
    assert.equal(got.status?.state, TaskState.TASK_STATE_COMPLETED)
    assert.equal(textOf(got.artifacts[0]!.parts), 'remember me')
    assert.equal(textOf(got.history[0]!.parts), 'remember me', 'the user message is in the history')
    await assert.rejects(client.getTask({ tenant: '', id: randomUUID(), historyLength: undefined }), /not found/i)
  })

  test('cancel task: a running slow task ends canceled, here and in the node', async () => {
    const started = asTask(await client.sendMessage(request(userMessage('10000', { skill: 'slow' }), true)))
    assert.ok([TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING].includes(started.status!.state))
    const canceled = await client.cancelTask({ tenant: '', id: started.id, metadata: undefined })
    assert.equal(canceled.status?.state, TaskState.TASK_STATE_CANCELED)
    assert.equal(textOf(canceled.status?.message?.parts), 'canceled by the requester')
    assert.equal((await client.getTask({ tenant: '', id: started.id, historyLength: undefined })).status?.state, TaskState.TASK_STATE_CANCELED)
    assert.equal(h.tasks.getTask(started.id)?.state, 'canceled')
    // canceling again is fine; a finished task is not cancelable
    assert.equal((await client.cancelTask({ tenant: '', id: started.id, metadata: undefined })).status?.state, TaskState.TASK_STATE_CANCELED)
    const done = asTask(await client.sendMessage(request(userMessage('x'))))
    await assert.rejects(client.cancelTask({ tenant: '', id: done.id, metadata: undefined }), /cancel/i)
  })

  test('cancel while another client streams the task: the stream ends canceled', async () => {
    const events: StreamResponse[] = []
    let id: string | undefined
    const reading = (async () => {
      for await (const e of client.sendMessageStream(request(userMessage('10000', { skill: 'slow' })))) {
        events.push(e)
        if (e.payload?.$case === 'task') id = e.payload.value.id
      }
    })()
    await waitFor(() => id !== undefined && events.length >= 2)
    const other = await stockClient(h.base)
    assert.equal((await other.cancelTask({ tenant: '', id: id!, metadata: undefined })).status?.state, TaskState.TASK_STATE_CANCELED)
    await reading
    const last = events[events.length - 1]!.payload!
    assert.equal(last.$case, 'statusUpdate')
    assert.equal((last.value as { status: Task['status'] }).status?.state, TaskState.TASK_STATE_CANCELED)
  })

  test('an unknown skill: the task ends rejected, with the reason', async () => {
    const task = asTask(await client.sendMessage(request(userMessage('hi', { skill: 'no-such-skill' }))))
    assert.equal(task.status?.state, TaskState.TASK_STATE_REJECTED)
    assert.match(textOf(task.status?.message?.parts), /no-such-skill/)
    assert.equal(task.status?.message?.metadata?.code, 'UNKNOWN_SKILL')
    // a skill id the node cannot even route (sendTask throws TaskInputError): rejected too
    const bad = asTask(await client.sendMessage(request(userMessage('hi', { skill: 'Not A Skill!' }))))
    assert.equal(bad.status?.state, TaskState.TASK_STATE_REJECTED)
    assert.match(textOf(bad.status?.message?.parts), /skill must be a skill id/)
    // a skill that breaks: failed, with its message
    const failed = asTask(await client.sendMessage(request(userMessage('hi', { skill: 'fail' }))))
    assert.equal(failed.status?.state, TaskState.TASK_STATE_FAILED)
    assert.match(textOf(failed.status?.message?.parts), /skill fail failed: the skill broke/)
  })

  test('what the node cannot take is refused with an A2A error, before any task is made', async () => {
    const file: Part = { content: { $case: 'url', value: 'https://example.com/x.png' }, mediaType: 'image/png', filename: 'x.png', metadata: undefined }
    await assert.rejects(client.sendMessage(request(userMessage([file]))), (err: Error) => err.name === 'ContentTypeNotSupportedError')
    await assert.rejects(client.sendMessage(request(userMessage('x', { skill: 42 }))), (err: Error) => err.name === 'RequestMalformedError')
    const done = asTask(await client.sendMessage(request(userMessage('first'))))
    const followUp = { ...userMessage('second'), taskId: done.id, contextId: done.contextId }
    await assert.rejects(client.sendMessage(request(followUp)), (err: Error) => err.name === 'UnsupportedOperationError' || /terminal/.test(err.message))
  })

  test('v0.3: the SDK\'s compat client (LegacyJsonRpcTransport) sends, streams, gets and cancels', async () => {
    const v1 = await client.getAgentCard()
    // a card that offers only the v0.3 interface makes the factory build the v0.3 transport
    const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch(), legacyCompat: { enabled: true } })]
    }))
    const legacy = await factory.createFromAgentCard({ ...v1, supportedInterfaces: v1.supportedInterfaces.filter(i => i.protocolVersion === '0.3') })
    assert.equal(legacy.protocolVersion, '0.3')
    assert.match(legacy.transport.constructor.name, /LegacyJsonRpcTransport$/)

    const sent = asTask(await legacy.sendMessage(request(userMessage('old client', { skill: 'hash' }))))
    assert.equal(sent.status?.state, TaskState.TASK_STATE_COMPLETED)
    assert.equal(textOf(sent.artifacts[0]!.parts), Buffer.from(blake3Text('old client')).toString('hex'))
    assert.equal(textOf(sent.status?.message?.parts), textOf(sent.artifacts[0]!.parts))
    assert.equal((await legacy.getTask({ tenant: '', id: sent.id, historyLength: undefined })).status?.state, TaskState.TASK_STATE_COMPLETED)

    const states: TaskState[] = []
    for await (const e of legacy.sendMessageStream(request(userMessage('60', { skill: 'slow' })))) {
      if (e.payload?.$case === 'statusUpdate') states.push(e.payload.value.status!.state)
    }
    assert.equal(states[states.length - 1], TaskState.TASK_STATE_COMPLETED)
    assert.ok(states.includes(TaskState.TASK_STATE_WORKING))

    const slow = asTask(await legacy.sendMessage(request(userMessage('10000', { skill: 'slow' }), true)))
    assert.equal((await legacy.cancelTask({ tenant: '', id: slow.id, metadata: undefined })).status?.state, TaskState.TASK_STATE_CANCELED)
  })

  test('v0.3: raw JSON-RPC as an old client sends it (no A2A-Version, v0.3 method names and shapes)', async () => {
    const send = await rpcPost(h.rpcUrl, {
      jsonrpc: '2.0',
      id: 'r1',
      method: 'message/send',
      params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'text', text: 'from v0.3' }], metadata: { skill: 'echo' } }, configuration: { blocking: true } }
    })
    assert.equal(send.status, 200)
    const r = await send.json() as any
    assert.equal(r.id, 'r1')
    assert.equal(r.result.kind, 'task')
    assert.equal(r.result.status.state, 'completed')
    assert.deepEqual(r.result.artifacts[0].parts, [{ kind: 'text', text: 'from v0.3' }])
    assert.equal(r.result.status.message.parts[0].text, 'from v0.3')

    const got = await (await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 2, method: 'tasks/get', params: { id: r.result.id } })).json() as any
    assert.equal(got.result.status.state, 'completed')

    const stream = await rpcPost(h.rpcUrl, {
      jsonrpc: '2.0',
      id: 3,
      method: 'message/stream',
      params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'text', text: '50' }], metadata: { skill: 'slow' } } }
    }, { accept: 'text/event-stream' })
    assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/)
    const events = await sseEvents(stream)
    assert.equal(events[0].result.kind, 'task')
    const final = events[events.length - 1].result
    assert.equal(final.kind, 'status-update')
    assert.equal(final.status.state, 'completed')
    assert.equal(final.final, true)
  })

  test('garbage is a JSON-RPC error (or a 4xx), never a 500', async () => {
    const v1 = { 'a2a-version': '1.0' }
    const parse = await rpcPost(h.rpcUrl, 'this is {not json', v1)
    assert.equal(parse.status, 200)
    assert.deepEqual(await parse.json(), { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the body is not JSON' } })
    assert.equal((await (await rpcPost(h.rpcUrl, '[]', v1)).json() as any).error.code, -32600)
    assert.equal((await (await rpcPost(h.rpcUrl, '', v1)).json() as any).error.code, -32700)
    const unknown = await (await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 7, method: 'Nope', params: {} }, v1)).json() as any
    assert.deepEqual([unknown.id, unknown.error.code], [7, -32601])
    const legacyUnknown = await (await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 8, method: 'nope/nope', params: {} })).json() as any
    assert.deepEqual([legacyUnknown.id, legacyUnknown.error.code], [8, -32601])
    const version = await (await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 9, method: 'GetTask', params: { id: 'x' } }, { 'a2a-version': '9.9' })).json() as any
    assert.equal(version.error.code, -32009, 'version not supported')
    const type = await rpcPost(h.rpcUrl, '{}', { ...v1, 'content-type': 'text/plain' })
    assert.equal(type.status, 200)
    assert.equal((await type.json() as any).error.code, -32005)
    const poisoned = await rpcPost(h.rpcUrl, '{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x","__proto__":{"polluted":1}}}', v1)
    assert.equal(poisoned.status, 200)
    assert.equal(({} as any).polluted, undefined)

    const bodies: unknown[] = [
      '{"jsonrpc":"2.0"}', 'null', '42', '"SendMessage"', { jsonrpc: '1.0', id: 1, method: 'SendMessage' }, { jsonrpc: '2.0', id: { x: 1 }, method: 'SendMessage', params: {} },
      { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: 'x' }, { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: 'x' } },
      { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: 'm', parts: 'x' } } },
      { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 5 }] } } },
      { jsonrpc: '2.0', id: 1, method: 'SendStreamingMessage', params: { message: { parts: [] } } },
      { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: ['x'] } }, { jsonrpc: '2.0', id: 1, method: 'CancelTask', params: {} },
      { jsonrpc: '2.0', id: 1, method: 'ListTasks', params: { pageSize: -1 } }, { jsonrpc: '2.0', id: 1, method: 'ListTasks', params: { pageToken: '%%%' } },
      { jsonrpc: '2.0', id: 1, method: 'SubscribeToTask', params: { id: 'nope' } }
    ]
    for (const headers of [v1, {}]) {
      for (const body of [...bodies, { jsonrpc: '2.0', id: 1, method: 'message/send', params: { message: { kind: 'message', parts: [{ kind: 'file', file: { uri: 'x' } }] } } }]) {
        const r = await rpcPost(h.rpcUrl, body, headers)
        assert.ok(r.status < 500, `${r.status} for ${JSON.stringify(body)}`)
        const text = await r.text()
        assert.ok(r.headers.get('content-type')?.startsWith('application/json') === true || r.headers.get('content-type')?.startsWith('text/event-stream') === true, text)
      }
    }
    // ListTasks (v1.0 only) works with what the store holds
    const list = await (await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 1, method: 'ListTasks', params: { pageSize: 2 } }, v1)).json() as any
    assert.equal(list.result.tasks.length, 2)
    assert.ok(list.result.totalSize > 2)
    const next = await (await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 1, method: 'ListTasks', params: { pageSize: 2, pageToken: list.result.nextPageToken } }, v1)).json() as any
    assert.equal(next.result.tasks.length, 2)
    assert.notDeepEqual(next.result.tasks.map((t: any) => t.id), list.result.tasks.map((t: any) => t.id))
  })

  test('sending needs the API token (401, as on the REST API); the card does not', async () => {
    const noToken = await fetch(h.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } }) })
    assert.equal(noToken.status, 401)
    assert.equal(noToken.headers.get('www-authenticate'), 'Bearer')
    const body = await noToken.json() as any
    assert.equal(body.jsonrpc, '2.0')
    assert.equal(body.error.code, -32000)
    assert.match(body.error.message, /^Unauthorized: .*Authorization: Bearer/)
    const wrong = await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } }, { authorization: 'Bearer nope' })
    assert.equal(wrong.status, 401)
    let touched = 0
    const off = h.tasks.onTask(() => { touched++ })

    // the stock client without a token: the card loads, sending fails with the reason
    const anonymous = await stockClient(h.base, { token: null })
    await assert.rejects(anonymous.sendMessage(request(userMessage('let me in'))), /Unauthorized: .*Bearer/)
    await assert.rejects(anonymous.sendMessageStream(request(userMessage('let me in'))).next(), /Unauthorized: .*Bearer/)
    await assert.rejects(anonymous.getTask({ tenant: '', id: 'x', historyLength: undefined }), /Unauthorized/)
    const wrongToken = await stockClient(h.base, { token: 'not-the-token' })
    await assert.rejects(wrongToken.sendMessage(request(userMessage('let me in'))), /Unauthorized/)
    off()
    assert.equal(touched, 0, 'no task was started without the token')
  })

  test('the API\'s body limit holds for JSON-RPC (413 before the body is parsed)', async () => {
    const big = { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 'x'.repeat(1024 * 1024) }] } } }
    const r = await rpcPost(h.rpcUrl, big, { 'a2a-version': '1.0' })
    assert.equal(r.status, 413)
    const body = await r.json() as any
    assert.equal(body.error.code, -32600)
    assert.match(body.error.message, /^Payload Too Large: request body is larger than 1048576 bytes$/)
    await assert.rejects(client.sendMessage(request(userMessage('x'.repeat(1024 * 1024)))), /Payload Too Large/)
  })
})

describe('A2A over HTTP: limits and shutdown', () => {
  test('the API rate limit counts A2A requests (429)', async () => {
    const h = await startHarness({ rateLimit: { max: 3, timeWindowMs: 60_000 } })
    try {
      const statuses: number[] = []
      for (let i = 0; i < 4; i++) statuses.push((await fetch(`${h.base}/.well-known/agent-card.json`)).status)
      assert.deepEqual(statuses, [200, 200, 200, 429])
      const card = await fetch(`${h.base}/.well-known/agent-card.json`)
      assert.equal((await card.json() as any).error, 'Too Many Requests', 'the card answers as the REST API does')
      const r = await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } })
      assert.equal(r.status, 429)
      assert.match((await r.json() as any).error.message, /^Too Many Requests: rate limit/)
    } finally {
      await h.close()
    }
  })

  test('publicUrl sets where the card points; closing with a task streaming ends the stream and drops the listener', async () => {
    const h = await startHarness({ a2aPublicUrl: 'https://node.example:8443/' }, true)
    const fake = h.tasks as FakeTaskControl
    try {
      const card = await (await fetch(`${h.base}/.well-known/agent-card.json`, { headers: { 'a2a-version': '1.0' } })).json() as any
      assert.deepEqual(card.supportedInterfaces.map((i: any) => i.url), ['https://node.example:8443/a2a/jsonrpc', 'https://node.example:8443/a2a/jsonrpc'])
      assert.equal(fake.listeners, 1)

      const r = await rpcPost(h.rpcUrl, { jsonrpc: '2.0', id: 1, method: 'SendStreamingMessage', params: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: '30000' }], metadata: { skill: 'slow' } } } }, { 'a2a-version': '1.0' })
      assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/)
      const reader = r.body!.getReader()
      await reader.read() // the stream is open: the task event
      const started = Date.now()
      await h.api.close()
      assert.ok(Date.now() - started < 5000, `close took ${Date.now() - started} ms`)
      while (!(await reader.read()).done);
      assert.equal(fake.listeners, 0)
    } finally {
      await h.close()
    }
  })
})
