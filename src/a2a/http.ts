import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  A2A_PROTOCOL_VERSION,
  AgentCard as A2aAgentCard,
  Extensions,
  SSE_HEADERS,
  formatSSEErrorEvent,
  formatSSEEvent,
  type AgentInterface,
  type Message,
  type SendMessageRequest,
  type StreamResponse,
  type Task
} from '@a2a-js/sdk'
import {
  DefaultRequestHandler,
  JsonRpcTransportHandler,
  UnauthenticatedUser,
  defaultServerCallContextBuilder,
  validateVersion,
  type ServerCallContext,
  type User
} from '@a2a-js/sdk/server'
import { duplicateInterfacesForLegacy } from '@a2a-js/sdk/compat/v0_3'
import { LegacyJsonRpcTransportHandler } from '@a2a-js/sdk/compat/v0_3/server'
import { ContentTypeNotSupportedError, RequestMalformedError, UnsupportedOperationError } from '@a2a-js/sdk/errors'
import { TaskControlExecutor } from './http-executor.ts'
import { BoundedTaskStore } from './http-store.ts'
import type { SkillSpec, TaskControl } from './types.ts'

/**
 * A2A over HTTP on the node's API address, as `@a2a-js/sdk` implements it: spec v1.0 with the
 * JSON-RPC binding, plus the SDK's v0.3 compatibility layer so older clients work too. The SDK's
 * transport-agnostic pieces (DefaultRequestHandler, JsonRpcTransportHandler,
 * LegacyJsonRpcTransportHandler) do the protocol; this file wires them into Fastify the way the
 * SDK's Express adapter does, SSE included.
 *
 *   GET  /.well-known/agent-card.json   the agent card: v1.0 for `A2A-Version: 1.0`, the v0.3
 *                                       card (with the v1.0 interfaces embedded) otherwise
 *   POST /a2a/jsonrpc                   JSON-RPC: SendMessage, SendStreamingMessage (SSE),
 *                                       GetTask, CancelTask, ListTasks, SubscribeToTask; v0.3
 *                                       names (message/send, message/stream, tasks/get, ...)
 *                                       when the request says `A2A-Version: 0.3` or nothing
 *
 * Auth: the card is public, like every GET of the API. The JSON-RPC endpoint is how outside
 * agents make the node do work, so it needs `Authorization: Bearer <api.token>` like every
 * mutating REST route (checked before the body is read; the card advertises the scheme). The
 * API's token check, body limit and rate limit hold here too, with their HTTP statuses
 * (401/413/429), but the body is a JSON-RPC error, which A2A clients read. Anything wrong
 * inside the JSON-RPC request is a JSON-RPC error with HTTP 200 (as the SDK answers), never a
 * 500.
 *
 * A message picks its skill with `metadata.skill` (default `tasks.defaultSkill`), and may name
 * a provider (`metadata.to`, a PeerId) and a deadline (`metadata.deadlineS`). Message-level
 * metadata wins over the request's.
 */

export const AGENT_CARD_ROUTE = '/.well-known/agent-card.json'
export const A2A_JSONRPC_PATH = '/a2a/jsonrpc'
/** agent-card extension whose params carry the node's PeerId and default skill */
export const BIZRA_NODE_EXTENSION = 'urn:bizra:a2a:node:1'

const TOKEN_SCHEME = 'bearer'
const TOKEN_DESCRIPTION = 'The node\'s API token (<home>/api.token) as Authorization: Bearer <token>'

export interface A2aRoutesOptions {
  tasks: TaskControl
  /**
   * the base URL outside agents reach this API at (e.g. `http://203.0.113.7:3001`); the card
   * points them at `<publicUrl>/a2a/jsonrpc`. Default: the scheme and Host of each card request
   */
  publicUrl?: string
  /** runs before a JSON-RPC body is read and throws to refuse it (the API's bearer-token check) */
  authorize?: (req: FastifyRequest) => Promise<void>
  /** where failures that reach no client are reported */
  onError?: (err: unknown, msg: string) => void
  /** A2A tasks remembered for GetTask (default 1000) */
  maxTasks?: number
  /** least time between two progress updates of one task, ms (default 100) */
  progressIntervalMs?: number
  /** an SSE client with more than this many bytes unsent is cut off (default 1 MiB) */
  sseMaxBufferedBytes?: number
  /** SSE comment sent while a task is quiet, ms (default 15 000) */
  sseKeepAliveMs?: number
}

// ---------------------------------------------------------------------------------------------
// agent cards

/** The node's own skills first, then those its peers advertise: a message may ask for any of them. */
function federationSkills (tasks: TaskControl): SkillSpec[] {
  const seen = new Map<string, SkillSpec>()
  for (const card of [tasks.agentCard(), ...tasks.agents()]) {
    for (const s of card.skills) if (!seen.has(s.id)) seen.set(s.id, s)
  }
  return [...seen.values()]
}

function interfaces (jsonRpcUrl: string): AgentInterface[] {
  // the v0.3 entry is what the SDK's compat layer checks a header-less (v0.3) request against
  return duplicateInterfacesForLegacy([{ url: jsonRpcUrl, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_PROTOCOL_VERSION }], ['JSONRPC'])
}

/** The node's card in the SDK's v1.0 shape, offering every skill of the federation. */
export function a2aAgentCard (tasks: TaskControl, jsonRpcUrl: string): A2aAgentCard {
  const own = tasks.agentCard()
  return {
    name: own.name,
    description: own.description,
    version: own.version,
    supportedInterfaces: interfaces(jsonRpcUrl),
    provider: undefined,
    capabilities: {
      streaming: true,
      pushNotifications: false,
      extendedAgentCard: false,
      extensions: [{ uri: BIZRA_NODE_EXTENSION, description: 'A BIZRA federation node: tasks are routed to a peer offering the skill named in message metadata.skill', required: false, params: { peerId: own.peerId, defaultSkill: tasks.defaultSkill } }]
    },
    securitySchemes: { [TOKEN_SCHEME]: { scheme: { $case: 'httpAuthSecurityScheme', value: { description: TOKEN_DESCRIPTION, scheme: 'Bearer', bearerFormat: '' } } } },
    securityRequirements: [{ schemes: { [TOKEN_SCHEME]: { list: [] } } }],
    defaultInputModes: own.defaultInputModes,
    defaultOutputModes: own.defaultOutputModes,
    skills: federationSkills(tasks).map(s => ({ id: s.id, name: s.name, description: s.description, tags: s.tags, examples: [], inputModes: s.inputModes, outputModes: s.outputModes, securityRequirements: [] })),
    signatures: []
  }
}

/** The same card as a v0.3 client reads it, with the v1.0 interfaces embedded (as the SDK's compat card is). */
export function legacyAgentCard (card: A2aAgentCard, jsonRpcUrl: string): Record<string, unknown> {
  return {
    protocolVersion: '0.3',
    name: card.name,
    description: card.description,
    version: card.version,
    url: jsonRpcUrl,
    preferredTransport: 'JSONRPC',
    capabilities: {
      streaming: card.capabilities?.streaming === true,
      pushNotifications: false,
      extensions: card.capabilities?.extensions.map(e => ({ uri: e.uri, description: e.description, required: e.required, params: e.params })) ?? []
    },
    defaultInputModes: card.defaultInputModes,
    defaultOutputModes: card.defaultOutputModes,
    skills: card.skills.map(s => ({ id: s.id, name: s.name, description: s.description, tags: s.tags, inputModes: s.inputModes, outputModes: s.outputModes })),
    securitySchemes: { [TOKEN_SCHEME]: { type: 'http', scheme: 'bearer', description: TOKEN_DESCRIPTION } },
    security: [{ [TOKEN_SCHEME]: [] }],
    supportedInterfaces: card.supportedInterfaces
  }
}

// ---------------------------------------------------------------------------------------------
// request handler

/** What this node can take in a message; throws the A2A error a client should see. */
function checkSend (params: SendMessageRequest): void {
  const m = params.message
  if (m === undefined) return // the SDK refuses it
  if (m.taskId) throw new UnsupportedOperationError('this node takes no follow-up messages on a task; send a new message without taskId')
  if (!Array.isArray(m.parts) || m.parts.length === 0) throw new RequestMalformedError('message.parts must not be empty')
  for (const p of m.parts) {
    const kind = p.content?.$case
    if (kind !== 'text' && kind !== 'data') throw new ContentTypeNotSupportedError(`this node takes text and data parts, not ${kind ?? 'empty'} parts`)
  }
  for (const key of ['skill', 'to'] as const) {
    const v = m.metadata?.[key] ?? params.metadata?.[key]
    if (v !== undefined && typeof v !== 'string') throw new RequestMalformedError(`metadata.${key} must be a string`)
  }
  const d = m.metadata?.deadlineS ?? params.metadata?.deadlineS
  if (d !== undefined && typeof d !== 'number') throw new RequestMalformedError('metadata.deadlineS must be a number of seconds')
}

/** The SDK's handler, refusing what the node cannot run before a task is made for it. */
class NodeRequestHandler extends DefaultRequestHandler {
  override async sendMessage (params: SendMessageRequest, context: ServerCallContext): Promise<Message | Task> {
    checkSend(params)
    return super.sendMessage(params, context)
  }

  override async * sendMessageStream (params: SendMessageRequest, context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    checkSend(params)
    yield * super.sendMessageStream(params, context)
  }
}

// ---------------------------------------------------------------------------------------------
// Fastify routes

type RpcError = { code: number, message: string, data?: unknown }
interface RpcResponse { jsonrpc: string, id: string | number | null, result?: unknown, error?: unknown }

const HOST_RE = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/
const JSON_TYPES = new Set(['application/json', 'application/a2a+json'])

const single = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)
const rpcError = (id: RpcResponse['id'], error: RpcError): RpcResponse => ({ jsonrpc: '2.0', id, error })
const isAsyncIterable = (v: unknown): v is AsyncGenerator<RpcResponse, void, undefined> =>
  v !== null && typeof v === 'object' && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'

/** Adds the A2A card and JSON-RPC routes to `app` (before it listens). */
export async function registerA2aRoutes (app: FastifyInstance, opts: A2aRoutesOptions): Promise<void> {
  const { tasks } = opts
  const onError = opts.onError ?? (() => {})
  const maxBuffered = opts.sseMaxBufferedBytes ?? 1024 * 1024
  const keepAliveMs = opts.sseKeepAliveMs ?? 15_000
  const publicUrl = opts.publicUrl?.replace(/\/+$/, '')
  const executor = new TaskControlExecutor(tasks, { progressIntervalMs: opts.progressIntervalMs, onError })
  // the handler's own card only serves version checks and capabilities, so it needs nothing
  // from the node (whose skills change); the served card is built per request
  const handler = new NodeRequestHandler({
    name: 'bizra',
    description: '',
    version: '',
    supportedInterfaces: interfaces(`${publicUrl ?? ''}${A2A_JSONRPC_PATH}`),
    provider: undefined,
    capabilities: { streaming: true, pushNotifications: false, extendedAgentCard: false, extensions: [] },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: [],
    defaultOutputModes: [],
    skills: [],
    signatures: []
  }, new BoundedTaskStore(opts.maxTasks ?? 1000), executor)
  const rpc = new JsonRpcTransportHandler(handler)
  const legacyRpc = new LegacyJsonRpcTransportHandler(handler)
  // who passed `authorize` is the one caller the node has: the holder of its API token
  const user: User = opts.authorize === undefined ? new UnauthenticatedUser() : { isAuthenticated: true, userName: 'api-token' }
  const streams = new Set<ServerResponse>()

  const baseUrl = (req: FastifyRequest): string => {
    if (publicUrl !== undefined) return publicUrl
    const host = req.headers.host
    if (host !== undefined && HOST_RE.test(host)) return `${req.protocol}://${host}`
    const a = app.server.address()
    return typeof a === 'object' && a !== null ? `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : 'http://localhost'
  }

  // writes JSON-RPC responses as SSE events; a client that goes away or stops reading stops
  // getting them, but the events are still drained so that the task store stays current
  const sse = async (reply: FastifyReply, stream: AsyncGenerator<RpcResponse, void, undefined>, id: RpcResponse['id'], mapError: (err: unknown) => RpcError, errorsAsEvents: boolean): Promise<void> => {
    let first: IteratorResult<RpcResponse, void> | undefined
    if (!errorsAsEvents) {
      try {
        first = await stream.next()
      } catch (err) {
        // failed before anything was streamed: a plain JSON-RPC error, as the SDK answers
        await reply.send(rpcError(id, mapError(err)))
        return
      }
    }
    reply.hijack()
    const raw = reply.raw
    let open = true
    const cut = (): void => { open = false }
    const write = (chunk: string): void => {
      if (!open || raw.writableEnded || raw.destroyed) return
      raw.write(chunk)
      if (raw.writableLength > maxBuffered) {
        open = false
        raw.destroy()
      }
    }
    raw.on('close', cut)
    raw.on('error', cut)
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, value)
    raw.writeHead(200, SSE_HEADERS)
    const keepAlive = setInterval(() => write(': keep-alive\n\n'), keepAliveMs)
    keepAlive.unref()
    streams.add(raw)
    try {
      if (first !== undefined && first.done !== true) write(formatSSEEvent(first.value))
      for (;;) {
        const next = await stream.next()
        if (next.done === true) break
        write(formatSSEEvent(next.value))
      }
    } catch (err) {
      write(formatSSEErrorEvent(rpcError(id, mapError(err))))
    } finally {
      clearInterval(keepAlive)
      streams.delete(raw)
      if (!raw.writableEnded && !raw.destroyed) raw.end()
    }
  }

  // the card is answered as the rest of the API answers (its errors are `{ error, message }`)
  app.get(AGENT_CARD_ROUTE, async (req, reply) => {
    const base = baseUrl(req)
    const url = `${base}${A2A_JSONRPC_PATH}`
    const version = single(req.headers['a2a-version'])
    const card = a2aAgentCard(tasks, url)
    // no A2A-Version means a v0.3 client (A2A spec 3.6.2)
    const legacy = version === undefined || version === '' || version.startsWith('0.')
    return reply
      .header('vary', 'A2A-Version')
      .header('cache-control', 'no-cache')
      .type('application/json')
      .send(JSON.stringify(legacy ? legacyAgentCard(card, url) : A2aAgentCard.toJSON(card)))
  })

  await app.register(async scope => {
    // JSON-RPC clients read JSON-RPC errors, so a refusal before the handler (401 from the token
    // check, 413, 429) keeps its HTTP status but carries a JSON-RPC error body: the SDK's client
    // then reports its message instead of "An unexpected error occurred"
    scope.setErrorHandler((err: FastifyError & { status?: unknown }, _req, reply) => {
      const status = typeof err.status === 'number' ? err.status : typeof err.statusCode === 'number' ? err.statusCode : 500
      if (status >= 400 && status < 500) {
        if (status === 401) void reply.header('www-authenticate', 'Bearer')
        const message = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `request body is larger than ${app.initialConfig.bodyLimit ?? 1024 * 1024} bytes` : err.message
        return reply.status(status).send(rpcError(null, { code: status === 413 ? -32600 : -32000, message: `${STATUS_CODES[status] ?? 'Error'}: ${message}` }))
      }
      onError(err, 'A2A request failed')
      return reply.status(500).send(rpcError(null, { code: -32603, message: 'Internal error: the node could not handle this request' }))
    })

    // the JSON-RPC body is parsed here, so that bad JSON is a JSON-RPC parse error rather than
    // the API's 400; Fastify still enforces the body limit while reading it
    const parseJson = scope.getDefaultJsonParser('remove', 'remove')
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
      parseJson(req, body as string, (err: Error | null, value?: unknown) => { done(null, err === null ? { value } : { error: err }) })
    })

    scope.post(A2A_JSONRPC_PATH, opts.authorize === undefined ? {} : { preParsing: opts.authorize }, async (req, reply) => {
      const version = single(req.headers['a2a-version']) || undefined
      // the SDK's rule: 0.3, or no version at all, is a v0.3 request
      const legacy = (version ?? '0.3') === '0.3'
      const mapError = legacy ? LegacyJsonRpcTransportHandler.mapToLegacyJSONRPCError : JsonRpcTransportHandler.mapToJSONRPCError
      const type = single(req.headers['content-type'])?.split(';', 1)[0]?.trim().toLowerCase()
      if (type !== undefined && !JSON_TYPES.has(type)) {
        return reply.send(rpcError(null, mapError(new ContentTypeNotSupportedError(`send the request as application/json, not ${type}`))))
      }
      const parsed = req.body as { value?: unknown, error?: Error } | undefined
      if (parsed === undefined || parsed.error !== undefined) {
        return reply.send(rpcError(null, { code: -32700, message: 'Parse error: the body is not JSON' }))
      }
      const body = parsed.value
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        return reply.send(rpcError(null, { code: -32600, message: 'Invalid Request: send one JSON-RPC request object (batches are not supported)' }))
      }
      const rawId = (body as { id?: unknown }).id
      const id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null
      const extensions = legacy ? single(req.headers['x-a2a-extensions']) ?? single(req.headers['a2a-extensions']) : single(req.headers['a2a-extensions'])
      const context = defaultServerCallContextBuilder({ extensions: Extensions.parseServiceParameter(extensions), user, headers: req.headers, requestedVersion: version })
      let result: RpcResponse | AsyncGenerator<RpcResponse, void, undefined>
      try {
        validateVersion(context.requestedVersion, await handler.getAgentCard(), 'JSONRPC')
        result = await (legacy ? legacyRpc : rpc).handle(body as Record<string, unknown>, context)
      } catch (err) {
        return reply.send(rpcError(id, mapError(err)))
      }
      if (isAsyncIterable(result)) {
        // a v0.3 resubscribe is SSE even when it fails at once (as the SDK's Express adapter does)
        await sse(reply, result, id, mapError, legacy && (body as { method?: unknown }).method === 'tasks/resubscribe')
        return reply
      }
      return reply.send(result)
    })

    // closing: stop waiting on tasks (they go on in the node) and end open streams, so that
    // the server is not held open until every task ends
    scope.addHook('preClose', async () => {
      executor.stop()
      for (const raw of streams) if (!raw.writableEnded && !raw.destroyed) raw.end()
    })
  })
}
