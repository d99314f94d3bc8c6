import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify'
import websocket from '@fastify/websocket'
import rateLimit from '@fastify/rate-limit'
import { timingSafeEqual } from 'node:crypto'
import type { NodeControl, NodeEvent } from '../node/types.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import type { Constitution } from '../governance/constitution.ts'
import { checkGates } from '../governance/gates.ts'
import { createEnvelope, verifyEnvelope, EnvelopeError, AGENTS } from '../pci/envelope.ts'
import { ReplayCache } from '../pci/replay.ts'
import { peerKeys, PeerKeyError } from '../identity/peer-key.ts'
import { verifyBytes } from '../identity/ed25519.ts'
import { ProposalRefusedError } from '../consensus/service.ts'

/**
 * REST + WebSocket API (Fastify) under /api/v1. Every POST needs `Authorization: Bearer
 * <home>/api.token`. Bodies are JSON-schema validated: bad input is a 400 with a JSON error,
 * an oversized body a 413, never a 500. Requests are rate-limited per client address.
 */

export interface ApiServerOptions {
  control: NodeControl
  identity: NodeIdentity
  constitution: Constitution
  token: string
  host: string
  port: number
  rateLimit?: { max: number, timeWindowMs: number }
  /** largest accepted request body, bytes (default 1 MiB) */
  bodyLimit?: number
}

export interface ApiServer {
  /** `host:port` actually bound */
  address: string
  close: () => Promise<void>
}

const unit = { type: 'number', minimum: 0, maximum: 1 } as const
const messageOrData = {
  message: { type: 'string', maxLength: 1_000_000 },
  data: { type: 'string', pattern: '^[A-Za-z0-9+/=_-]*$', maxLength: 1_400_000 }
} as const

const SCHEMAS = {
  sign: { type: 'object', properties: messageOrData, additionalProperties: false, minProperties: 1, maxProperties: 1 },
  verify: {
    type: 'object',
    required: ['peerId', 'signature'],
    properties: { peerId: { type: 'string', maxLength: 128 }, signature: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 128 }, ...messageOrData },
    additionalProperties: false
  },
  envelopeCreate: {
    type: 'object',
    required: ['payload'],
    properties: { payload: {}, type: { type: 'string', maxLength: 64 }, agent: { enum: [...AGENTS] }, ttl: { type: 'integer', minimum: 1, maximum: 3600 }, ihsan: unit, snr: unit },
    additionalProperties: false
  },
  envelopeVerify: { type: 'object', required: ['envelope'], properties: { envelope: {} }, additionalProperties: false },
  gates: {
    type: 'object',
    required: ['tool', 'input'],
    properties: { tool: { type: 'string', minLength: 1, maxLength: 64 }, input: {}, ihsan: unit, snr: unit },
    additionalProperties: false
  },
  constitutionCheck: {
    type: 'object',
    required: ['ihsan', 'snr'],
    properties: { ihsan: unit, snr: unit, tool: { type: 'string', minLength: 1, maxLength: 64 }, input: {} },
    additionalProperties: false
  },
  propose: {
    type: 'object',
    required: ['id', 'content', 'snr', 'ihsan'],
    properties: { id: { type: 'string', minLength: 1, maxLength: 128 }, content: {}, snr: unit, ihsan: unit, wait: { type: 'boolean' } },
    additionalProperties: false
  }
} as const

class HttpError extends Error {
  static override readonly name: string = 'HttpError'
  override readonly name: string = 'HttpError'
  readonly status: number
  constructor (status: number, message: string) {
    super(message)
    this.status = status
  }
}

function bytesOf (body: { message?: string, data?: string }): Uint8Array {
  if (body.message !== undefined) return Buffer.from(body.message, 'utf8')
  if (body.data !== undefined) return Buffer.from(body.data, body.data.includes('-') || body.data.includes('_') ? 'base64url' : 'base64')
  throw new HttpError(400, 'give message (UTF-8 text) or data (base64)')
}

export async function startApiServer (opts: ApiServerOptions): Promise<ApiServer> {
  const app = Fastify({ logger: false, bodyLimit: opts.bodyLimit ?? 1024 * 1024, ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } } })
  const replay = new ReplayCache()
  const token = Buffer.from(opts.token)
  const { control, identity, constitution } = opts

  await app.register(rateLimit, {
    max: opts.rateLimit?.max ?? 600,
    timeWindow: opts.rateLimit?.timeWindowMs ?? 60_000,
    errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, error: 'Too Many Requests', message: `rate limit: ${ctx.max} requests per ${Math.round(ctx.ttl / 1000)} s` })
  })
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } })

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err instanceof HttpError) return reply.status(err.status).send({ error: 'Bad Request', message: err.message })
    if (err.validation !== undefined) return reply.status(400).send({ error: 'Bad Request', message: `body ${err.message}` })
    const status = err.statusCode ?? 500
    if (status === 413) return reply.status(413).send({ error: 'Payload Too Large', message: 'request body is larger than the limit' })
    if (status >= 400 && status < 500) return reply.status(status).send({ error: 'Bad Request', message: err.message })
    return reply.status(500).send({ error: 'Internal Server Error', message: 'the node could not handle this request' })
  })
  app.setNotFoundHandler((_req, reply) => reply.status(404).send({ error: 'Not Found', message: 'no such route' }))

  const authorize = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = req.headers.authorization ?? ''
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7).trim() : '')
    if (given.length !== token.length || !timingSafeEqual(given, token)) {
      await reply.status(401).send({ error: 'Unauthorized', message: 'this route needs Authorization: Bearer <api.token from the node home>' })
    }
  }
  // onRequest: an unauthenticated body is never read, let alone parsed
  const post = { onRequest: authorize }

  app.get('/api/v1/health', async () => ({ ok: true, peerId: control.peerId }))
  app.get('/api/v1/status', async () => control.status())
  app.get('/api/v1/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(await control.metrics()))
  app.get('/api/v1/identity', async () => ({ peerId: identity.id, publicKey: Buffer.from(identity.publicKey).toString('base64url'), keyType: 'Ed25519' }))
  app.post('/api/v1/identity/sign', { ...post, schema: { body: SCHEMAS.sign } }, async req => ({
    peerId: identity.id,
    signature: Buffer.from(identity.sign(bytesOf(req.body as { message?: string, data?: string }))).toString('base64url')
  }))
  app.post('/api/v1/identity/verify', { ...post, schema: { body: SCHEMAS.verify } }, async req => {
    const b = req.body as { peerId: string, signature: string, message?: string, data?: string }
    let key
    try {
      key = peerKeys.get(b.peerId)
    } catch (err) {
      if (err instanceof PeerKeyError) throw new HttpError(400, err.message)
      throw err
    }
    return { ok: verifyBytes(key, bytesOf(b), Buffer.from(b.signature, 'base64url')) }
  })
  app.post('/api/v1/pci/envelope/create', { ...post, schema: { body: SCHEMAS.envelopeCreate } }, async req => {
    const b = req.body as { payload: unknown, type?: string, agent?: typeof AGENTS[number], ttl?: number, ihsan?: number, snr?: number }
    try {
      return createEnvelope(identity, b)
    } catch (err) {
      if (err instanceof EnvelopeError) throw new HttpError(400, err.message)
      throw err
    }
  })
  app.post('/api/v1/pci/envelope/verify', { ...post, schema: { body: SCHEMAS.envelopeVerify } }, async req => {
    const r = verifyEnvelope((req.body as { envelope: unknown }).envelope, { constitution, replay })
    return r.ok ? { ok: true } : { ok: false, code: r.code, reason: r.reason }
  })
  app.post('/api/v1/pci/gates/check', { ...post, schema: { body: SCHEMAS.gates } }, async req => {
    const b = req.body as { tool: string, input: unknown, ihsan?: number, snr?: number }
    return checkGates({ tool: b.tool, input: b.input, ihsan: b.ihsan ?? constitution.ihsan, snr: b.snr ?? constitution.snr }, constitution)
  })
  app.get('/api/v1/constitution', async () => constitution)
  app.post('/api/v1/constitution/check', { ...post, schema: { body: SCHEMAS.constitutionCheck } }, async req => {
    const b = req.body as { ihsan: number, snr: number, tool?: string, input?: unknown }
    return checkGates({ tool: b.tool ?? 'default', input: b.input ?? null, ihsan: b.ihsan, snr: b.snr }, constitution)
  })
  app.get('/api/v1/federation/status', async () => {
    const s = control.status()
    const counts: Record<string, number> = { JOINING: 0, ACTIVE: 0, SUSPECT: 0, DEAD: 0 }
    for (const p of control.peers()) counts[p.state] = (counts[p.state] ?? 0) + 1
    return { federationId: s.federationId, peerId: s.peerId, state: s.state, peers: counts }
  })
  app.get('/api/v1/federation/peers', async () => control.peers())
  app.post('/api/v1/federation/propose', { ...post, schema: { body: SCHEMAS.propose } }, async (req, reply) => {
    const b = req.body as { id: string, content: unknown, snr: number, ihsan: number, wait?: boolean }
    try {
      const result = await control.propose({ id: b.id, content: b.content, snr: b.snr, ihsan: b.ihsan }, { wait: b.wait === true })
      return reply.status(b.wait === true ? 200 : 202).send(result)
    } catch (err) {
      if (err instanceof ProposalRefusedError) throw new HttpError(400, err.message)
      throw err
    }
  })
  app.get('/api/v1/federation/patterns', async () => control.patternList())
  app.get('/api/v1/federation/patterns/:id', async (req, reply) => {
    const p = await control.patternShow((req.params as { id: string }).id)
    return p === undefined ? reply.status(404).send({ error: 'Not Found', message: 'no committed pattern with that id' }) : p
  })

  app.register(async scope => {
    scope.get('/api/v1/ws', { websocket: true }, socket => {
      const off = control.onEvent((event: NodeEvent) => {
        // a client that cannot keep up is dropped rather than buffered without bound
        if (socket.bufferedAmount > 1024 * 1024) {
          socket.close(1013, 'too slow')
          return
        }
        socket.send(JSON.stringify(event))
      })
      socket.on('close', off)
      socket.on('error', off)
    })
  })

  await app.listen({ host: opts.host, port: opts.port })
  const addr = app.server.address()
  const address = typeof addr === 'object' && addr !== null ? `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : `${opts.host}:${opts.port}`
  return { address, close: async () => { await app.close() } }
}
