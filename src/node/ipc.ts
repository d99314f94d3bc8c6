import { createServer, createConnection, type Server, type Socket } from 'node:net'
import { chmodSync, existsSync, unlinkSync } from 'node:fs'
import { dirname } from 'node:path'
import { encodeFrame, FrameDecoder, FrameError } from './ipc-codec.ts'

/**
 * The node's control socket (`<home>/node.sock`, mode 0600): requests `{ id, method, params }`,
 * answers `{ id, result }` or `{ id, error: { code, message } }`, pipelined per connection.
 */

export type IpcHandler = (params: unknown, signal: AbortSignal) => unknown

export type IpcErrorCode = 'UNKNOWN_METHOD' | 'BAD_REQUEST' | 'FAILED'

/** The CLI could not reach a node: one line that says how to start one. */
export class NodeNotRunningError extends Error {
  static override readonly name: string = 'NodeNotRunningError'
  override readonly name: string = 'NodeNotRunningError'
}

/** The node answered with an error. */
export class IpcRemoteError extends Error {
  static override readonly name: string = 'IpcRemoteError'
  override readonly name: string = 'IpcRemoteError'
  readonly code: string

  constructor (code: string, message: string) {
    super(message)
    this.code = code
  }
}

export interface IpcServer {
  close: () => Promise<void>
}

async function isListening (path: string): Promise<boolean> {
  return new Promise(resolve => {
    const s = createConnection(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

export async function startIpcServer (socketPath: string, handlers: Record<string, IpcHandler>): Promise<IpcServer> {
  if (existsSync(socketPath)) {
    if (await isListening(socketPath)) throw new Error(`another node is running on ${socketPath}`)
    unlinkSync(socketPath) // left by a node that crashed
  }
  const controller = new AbortController()
  const sockets = new Set<Socket>()
  const server: Server = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const decoder = new FrameDecoder()
    socket.on('data', chunk => {
      let requests: unknown[]
      try {
        requests = decoder.push(chunk)
      } catch (err) {
        socket.end(encodeFrame({ id: null, error: { code: 'BAD_REQUEST', message: err instanceof FrameError ? err.message : 'unreadable frame' } }))
        return
      }
      for (const r of requests) void answer(r, socket)
    })
  })

  const answer = async (request: unknown, socket: Socket): Promise<void> => {
    const req = request as { id?: unknown, method?: unknown, params?: unknown } | null
    const id = req !== null && typeof req === 'object' && (typeof req.id === 'number' || typeof req.id === 'string') ? req.id : null
    let reply: unknown
    if (req === null || typeof req !== 'object' || typeof req.method !== 'string') {
      reply = { id, error: { code: 'BAD_REQUEST', message: 'a request is { id, method, params }' } }
    } else if (!Object.hasOwn(handlers, req.method)) {
      reply = { id, error: { code: 'UNKNOWN_METHOD', message: `unknown method ${JSON.stringify(req.method).slice(0, 80)}` } }
    } else {
      try {
        reply = { id, result: (await handlers[req.method]!(req.params, controller.signal)) ?? null }
      } catch (err) {
        reply = { id, error: { code: 'FAILED', message: (err as Error)?.message ?? String(err) } }
      }
    }
    if (!socket.destroyed) socket.write(encodeFrame(reply))
  }

  // The home is 0700, and the socket is made 0600 before anyone is told it exists.
  const oldMask = process.umask(0o177)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(socketPath, () => { server.off('error', reject); resolve() })
    })
  } finally {
    process.umask(oldMask)
  }
  chmodSync(socketPath, 0o600)

  return {
    close: async () => {
      controller.abort()
      await new Promise<void>(resolve => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      })
      if (existsSync(socketPath)) {
        try { unlinkSync(socketPath) } catch {}
      }
    }
  }
}

export interface IpcRequestOptions {
  timeoutMs?: number
}

function notRunning (socketPath: string): NodeNotRunningError {
  return new NodeNotRunningError(`no node is running at ${socketPath} (start one with: bizra start --home ${dirname(socketPath)})`)
}

/** A persistent connection with pipelined requests. */
export class IpcClient {
  readonly #socketPath: string
  #socket: Socket | undefined
  #connecting: Promise<Socket> | undefined
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer?: NodeJS.Timeout }>()

  constructor (socketPath: string) {
    this.#socketPath = socketPath
  }

  async request (method: string, params?: unknown, options: IpcRequestOptions = {}): Promise<unknown> {
    const socket = await this.#connect()
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const entry: { resolve: (v: unknown) => void, reject: (e: Error) => void, timer?: NodeJS.Timeout } = { resolve, reject }
      if (options.timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.#pending.delete(id)
          reject(new Error(`the node did not answer ${method} within ${options.timeoutMs} ms`))
        }, options.timeoutMs)
      }
      this.#pending.set(id, entry)
      socket.write(encodeFrame({ id, method, params }))
    })
  }

  close (): void {
    this.#socket?.destroy()
    this.#fail(new Error('client closed'))
  }

  #connect (): Promise<Socket> {
    if (this.#socket !== undefined && !this.#socket.destroyed) return Promise.resolve(this.#socket)
    this.#connecting ??= new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.#socketPath)
      const decoder = new FrameDecoder()
      socket.once('connect', () => {
        this.#socket = socket
        this.#connecting = undefined
        resolve(socket)
      })
      socket.on('data', chunk => {
        let replies: unknown[]
        try {
          replies = decoder.push(chunk)
        } catch (err) {
          socket.destroy()
          this.#fail(err as Error)
          return
        }
        for (const r of replies) this.#settle(r)
      })
      socket.on('error', (err: NodeJS.ErrnoException) => {
        this.#connecting = undefined
        const e = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? notRunning(this.#socketPath) : err
        reject(e)
        this.#fail(e)
      })
      socket.on('close', () => this.#fail(new Error('the node closed the connection')))
    })
    return this.#connecting
  }

  #settle (reply: unknown): void {
    const r = reply as { id?: unknown, result?: unknown, error?: { code?: string, message?: string } }
    const entry = typeof r?.id === 'number' ? this.#pending.get(r.id) : undefined
    if (entry === undefined) {
      if (r?.error !== undefined && r.id === null) this.#fail(new IpcRemoteError(r.error.code ?? 'FAILED', r.error.message ?? 'request refused'))
      return
    }
    this.#pending.delete(r.id as number)
    if (entry.timer !== undefined) clearTimeout(entry.timer)
    if (r.error !== undefined) entry.reject(new IpcRemoteError(r.error.code ?? 'FAILED', r.error.message ?? 'request failed'))
    else entry.resolve(r.result)
  }

  #fail (err: Error): void {
    for (const [id, entry] of this.#pending) {
      if (entry.timer !== undefined) clearTimeout(entry.timer)
      entry.reject(err)
      this.#pending.delete(id)
    }
  }
}

/** One request on a fresh connection (what the CLI does). */
export async function ipcRequest (socketPath: string, method: string, params?: unknown, options: IpcRequestOptions = {}): Promise<unknown> {
  const client = new IpcClient(socketPath)
  try {
    return await client.request(method, params, options)
  } finally {
    client.close()
  }
}
