import Fastify, { type FastifyError, type FastifyRequest } from 'fastify'
import websocket from '@fastify/websocket'
import rateLimit from '@fastify/rate-limit'
import { createHash, timingSafeEqual } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { NodeControl, NodeEvent } from '../node/types.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import type { Constitution } from '../governance/constitution.ts'
import { checkGates } from '../governance/gates.ts'
import { createEnvelope, verifyEnvelope, EnvelopeError, AGENTS } from '../pci/envelope.ts'
import { ReplayCache } from '../pci/replay.ts'
import { peerKeys, PeerKeyError } from '../identity/peer-key.ts'
import { verifyBytes } from '../identity/ed25519.ts'
import { ProposalRefusedError } from '../consensus/service.ts'
import { createLogger, type Logger } from '../node/logger.ts'
import type { TaskControl } from '../a2a/types.ts'
import { registerA2aRoutes } from '../a2a/http.ts'
import { registerInferenceRoutes, type InferenceApi } from './inference.ts'

/**
 * REST + WebSocket API (Fastify) under /api/v1.
 *
 * - Every POST needs `Authorization: Bearer <home>/api.token` (compared in constant time);
 *   without it, or with a wrong one, 401 `{ error, message }`. The check runs in onRequest, so
 *   an unauthenticated body is never read; token guesses count against the rate limit. GETs (and the event WebSocket) are open.
 * - Bodies are JSON-schema validated. Every error is JSON `{ error, message }`: bad input 400,
 *   body over the limit (1 MiB) 413, other content types 415, rate limit 429, and anything
 *   unexpected a generic 500 whose cause is logged, never sent.
 * - Requests are rate-limited per client address (default 600 a minute).
 * - `/api/v1/ws` streams NodeEvents as JSON text frames; a client that does not read is
 *   closed (1013) once its send buffer passes a limit instead of being buffered without bound.
 */

export interface ApiServerOptions {
  control: NodeControl
  identity: NodeIdentity
  constitution: Constitution
  /** bearer token for mutating routes; must not be empty */
  token: string
  host: string
  /** 0 picks a free port; the bound one is in the returned `address` */
  port: number
  /** per client address (default 600 requests per 60 000 ms) */
  rateLimit?: { max: number, timeWindowMs: number }
  /** largest accepted request body, bytes (default 1 MiB) */
  bodyLimit?: number
  /** where 500s are logged (at warn and above): a pino logger, or false for none (default: pino to stderr) */
  logger?: Logger | false
  /** most WebSocket clients at once; later ones are closed with 1013 (default 256) */
  maxWsClients?: number
  /** a WebSocket client with more than this many bytes unsent is closed with 1013 (default 1 MiB) */
  wsMaxBufferedBytes?: number
  /** when given, A2A is served too: GET /.well-known/agent-card.json (open), POST /a2a/jsonrpc (bearer token); see src/a2a/http.ts */
  tasks?: TaskControl
  /** base URL the A2A agent card points clients at (default: the Host each card request was sent to) */
  a2aPublicUrl?: string
  /** when given, inference is served: OpenAI-compatible /v1/chat/completions and /v1/models, /api/v1/inference/*; see src/api/inference.ts */
  inference?: InferenceApi
}

export interface ApiServer {
  /** `host:port` actually bound (IPv6 hosts in brackets) */
  address: string
  close: () => Promise<void>
}

export class ApiServerError extends Error {
  static override readonly name: string = 'ApiServerError'
  override readonly name: string = 'ApiServerError'
}

export const API_PREFIX = '/api/v1'
export const DEFAULT_RATE_LIMIT = { max: 600, timeWindowMs: 60_000 } as const
export const DEFAULT_BODY_LIMIT = 1024 * 1024
/** WebSocket close code sent to a client that is too slow or one too many (RFC 6455 "Try Again Later") */
export const WS_CLOSE_TRY_AGAIN = 1013

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
    additionalProperties: false,
    minProperties: 3,
    maxProperties: 3
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

/** A request the handler refuses: sent as `{ error, message }` with this status. */
class HttpError extends Error {
  static override readonly name: string = 'HttpError'
  override readonly name: string = 'HttpError'
  readonly status: number
  constructor (status: number, message: string) {
    super(message)
    this.status = status
  }
}

/** What the event stream uses of a `ws` WebSocket (the package ships no types of its own). */
interface EventSocket {
  readonly readyState: number
  readonly OPEN: number
  readonly bufferedAmount: number
  send (data: string): void
  close (code?: number, reason?: string): void
  terminate (): void
  on (event: 'close' | 'error', listener: () => void): unknown
}

const errorBody = (status: number, message: string): { error: string, message: string } =>
  ({ error: STATUS_CODES[status] ?? 'Error', message })

/** The bytes a sign/verify request is about: `message` as UTF-8 or `data` as base64/base64url. */
function bytesOf (body: { message?: string, data?: string }): Uint8Array {
  if (body.message !== undefined && body.data !== undefined) throw new HttpError(400, 'give message or data, not both')
  if (body.message !== undefined) return Buffer.from(body.message, 'utf8')
  // Node's base64 decoder reads both the standard and the URL-safe alphabet
  if (body.data !== undefined) return Buffer.from(body.data, 'base64')
  throw new HttpError(400, 'give message (UTF-8 text) or data (base64)')
}

const sha256 = (b: Uint8Array | string): Buffer => createHash('sha256').update(b).digest()

export async function startApiServer (opts: ApiServerOptions): Promise<ApiServer> {
  if (typeof opts.token !== 'string' || opts.token.length === 0) throw new ApiServerError('the API token must not be empty')
  const { control, identity, constitution } = opts
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT
  const maxWsClients = opts.maxWsClients ?? 256
  const wsMaxBuffered = opts.wsMaxBufferedBytes ?? 1024 * 1024
  const replay = new ReplayCache()
  // both sides hashed first: the comparison takes the same time whatever the length of the guess
  const tokenDigest = sha256(opts.token)

  let log: Logger | undefined
  const logger = (): Logger | undefined => {
    if (opts.logger === false) return undefined
    if (log === undefined) {
      log = opts.logger === undefined ? createLogger('warn', 'bizra:api') : opts.logger.child({ component: 'bizra:api' })
      if (log.levelVal < 40) log.level = 'warn'
    }
    return log
  }

  const app = Fastify({
    logger: false,
    bodyLimit,
    // a client that trickles its request is cut off rather than holding a socket for minutes
    requestTimeout: 30_000,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } }
  })

  await app.register(rateLimit, {
    max: opts.rateLimit?.max ?? DEFAULT_RATE_LIMIT.max,
    timeWindow: opts.rateLimit?.timeWindowMs ?? DEFAULT_RATE_LIMIT.timeWindowMs,
    // thrown by the plugin, so it reaches the error handler below with this status
    errorResponseBuilder: (_req, ctx) => ({ statusCode: ctx.statusCode, ...errorBody(ctx.statusCode, `rate limit: ${ctx.max} requests per ${Math.max(1, Math.round(ctx.ttl / 1000))} s; retry after ${ctx.after}`) })
  })
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } })

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof HttpError) {
      if (err.status === 401) void reply.header('www-authenticate', 'Bearer')
      return reply.status(err.status).send(errorBody(err.status, err.message))
    }
    if (err.validation !== undefined) return reply.status(400).send(errorBody(400, err.message))
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.status(413).send(errorBody(413, `request body is larger than ${bodyLimit} bytes`))
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return reply.status(400).send(errorBody(400, 'body is not valid JSON'))
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply.status(400).send(errorBody(400, 'body is empty; send a JSON object'))
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.status(415).send(errorBody(415, 'send the body as application/json'))
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500
    if (status >= 400 && status < 500) return reply.status(status).send(errorBody(status, err.message))
    logger()?.error({ err, method: req.method, url: req.url }, 'API request failed')
    return reply.status(500).send(errorBody(500, 'the node could not handle this request'))
  })
  app.setNotFoundHandler((_req, reply) => reply.status(404).send(errorBody(404, 'no such route')))

  // preParsing: after the rate limiter (onRequest), so guesses at the token count against the
  // client's budget, and before the body is read, so an unauthenticated body is never parsed
  const authorize = async (req: FastifyRequest): Promise<void> => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '')
    if (m === null || !timingSafeEqual(sha256(m[1]!), tokenDigest)) {
      throw new HttpError(401, 'this route needs Authorization: Bearer <api.token from the node home>')
    }
  }
  const post = { preParsing: authorize }
  const p = (path: string): string => API_PREFIX + path

  app.get(p('/health'), async () => ({ ok: true, peerId: control.peerId }))
  app.get(p('/status'), async () => control.status())
  app.get(p('/metrics'), async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(await control.metrics()))
  app.get(p('/identity'), async () => ({ peerId: identity.id, publicKey: Buffer.from(identity.publicKey).toString('base64url'), keyType: 'Ed25519' }))

  app.post(p('/identity/sign'), { ...post, schema: { body: SCHEMAS.sign } }, async req => ({
    peerId: identity.id,
    signature: Buffer.from(identity.sign(bytesOf(req.body as { message?: string, data?: string }))).toString('base64url')
  }))
  app.post(p('/identity/verify'), { ...post, schema: { body: SCHEMAS.verify } }, async req => {
    const b = req.body as { peerId: string, signature: string, message?: string, data?: string }
    const bytes = bytesOf(b)
    let key
    try {
      key = peerKeys.get(b.peerId)
    } catch (err) {
      if (err instanceof PeerKeyError) throw new HttpError(400, err.message)
      throw err
    }
    return { ok: verifyBytes(key, bytes, Buffer.from(b.signature, 'base64url')) }
  })

  app.post(p('/pci/envelope/create'), { ...post, schema: { body: SCHEMAS.envelopeCreate } }, async req => {
    const b = req.body as { payload: unknown, type?: string, agent?: typeof AGENTS[number], ttl?: number, ihsan?: number, snr?: number }
    try {
      return createEnvelope(identity, b)
    } catch (err) {
      if (err instanceof EnvelopeError) throw new HttpError(400, err.message)
      throw err
    }
  })
  // body `{ envelope }`; a rejected envelope is a 200 with ok:false (the request itself was fine)
  app.post(p('/pci/envelope/verify'), { ...post, schema: { body: SCHEMAS.envelopeVerify } }, async req => {
    const r = verifyEnvelope((req.body as { envelope: unknown }).envelope, { constitution, replay })
    return r.ok ? { ok: true } : { ok: false, code: r.code, reason: r.reason }
  })
  // declared scores left out default to the constitution's minimums (so only FATE decides)
  app.post(p('/pci/gates/check'), { ...post, schema: { body: SCHEMAS.gates } }, async req => {
    const b = req.body as { tool: string, input: unknown, ihsan?: number, snr?: number }
    return checkGates({ tool: b.tool, input: b.input, ihsan: b.ihsan ?? constitution.ihsan, snr: b.snr ?? constitution.snr }, constitution)
  })

  app.get(p('/constitution'), async () => constitution)
  app.post(p('/constitution/check'), { ...post, schema: { body: SCHEMAS.constitutionCheck } }, async req => {
    const b = req.body as { ihsan: number, snr: number, tool?: string, input?: unknown }
    return checkGates({ tool: b.tool ?? 'default', input: b.input ?? null, ihsan: b.ihsan, snr: b.snr }, constitution)
  })

  app.get(p('/federation/status'), async () => {
    const s = control.status()
    const counts: Record<string, number> = { JOINING: 0, ACTIVE: 0, SUSPECT: 0, DEAD: 0 }
    for (const peer of control.peers()) counts[peer.state] = (counts[peer.state] ?? 0) + 1
    return { federationId: s.federationId, peerId: s.peerId, state: s.state, peers: counts }
  })
  app.get(p('/federation/peers'), async () => control.peers())
  app.post(p('/federation/propose'), { ...post, schema: { body: SCHEMAS.propose } }, async (req, reply) => {
    const b = req.body as { id: string, content: unknown, snr: number, ihsan: number, wait?: boolean }
    try {
      const result = await control.propose({ id: b.id, content: b.content, snr: b.snr, ihsan: b.ihsan }, { wait: b.wait === true })
      return reply.status(b.wait === true ? 200 : 202).send(result)
    } catch (err) {
      if (err instanceof ProposalRefusedError) throw new HttpError(400, err.message)
      throw err
    }
  })
  app.get(p('/federation/patterns'), async () => control.patternList())
  app.get(p('/federation/patterns/:id'), async (req, reply) => {
    const pattern = await control.patternShow((req.params as { id: string }).id)
    return pattern === undefined ? reply.status(404).send(errorBody(404, 'no committed pattern with that id')) : pattern
  })

  const wsClients = new Set<EventSocket>()
  app.register(async scope => {
    scope.get(p('/ws'), { websocket: true }, (socket: EventSocket) => {
      if (wsClients.size >= maxWsClients) {
        socket.close(WS_CLOSE_TRY_AGAIN, 'too many clients')
        return
      }
      wsClients.add(socket)
      let off: (() => void) | undefined
      const drop = (): void => {
        wsClients.delete(socket)
        off?.()
        off = undefined
      }
      off = control.onEvent((event: NodeEvent) => {
        // runs inside the node's event dispatch: it must never throw into it
        try {
          if (socket.readyState !== socket.OPEN) return
          if (socket.bufferedAmount > wsMaxBuffered) {
            // a client that cannot keep up is dropped rather than buffered without bound
            drop()
            socket.close(WS_CLOSE_TRY_AGAIN, 'too slow')
            return
          }
          socket.send(JSON.stringify(event))
        } catch (err) {
          drop()
          socket.terminate()
          logger()?.warn({ err }, 'WebSocket send failed')
        }
      })
      socket.on('close', drop)
      socket.on('error', drop)
      // the stream is one-way: whatever a client sends is ignored (ws caps frames at maxPayload)
    })
  })

  if (opts.inference !== undefined) await registerInferenceRoutes(app, { inference: opts.inference, authorize })
  if (opts.tasks !== undefined) await registerA2aRoutes(app, { tasks: opts.tasks, publicUrl: opts.a2aPublicUrl, authorize, onError: (err, msg) => logger()?.error({ err }, msg) })

  await app.listen({ host: opts.host, port: opts.port })
  const addr = app.server.address()
  const address = typeof addr === 'object' && addr !== null
    ? `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
    : `${opts.host}:${opts.port}`
  let closing: Promise<void> | undefined
  return {
    address,
    close: async () => {
      closing ??= (async () => {
        await app.close()
        log?.flush()
      })()
      await closing
    }
  }
}
