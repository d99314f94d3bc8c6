import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs'
import { dirname } from 'node:path'
import { FileError } from '../util/fs.ts'
import { DEFAULT_MAX_FRAME, encodeFrame, FrameDecoder, FrameError } from './ipc-codec.ts'

/**
 * The node's control socket (DESIGN.md "Defaults": `<home>/node.sock`, mode 0600, frames of a
 * 4-byte little-endian length + JSON). A request is `{ id, method, params }`; the answer is
 * `{ id, result }` or `{ id, error: { code, message } }`. Requests on one connection may be
 * pipelined: answers come back as handlers finish, matched by id.
 */

/**
 * Answers one request. `progress` sends `{ id, progress: value }` frames ahead of the answer
 * (model load progress, streamed tokens); the client passes them to its `onProgress`.
 */
export type IpcHandler = (params: unknown, signal: AbortSignal, progress: (value: unknown) => void) => Promise<unknown> | unknown
export type IpcHandlers = Record<string, IpcHandler>

export type IpcErrorCode = 'UNKNOWN_METHOD' | 'BAD_REQUEST' | 'FAILED'

export type IpcId = number | string

export interface IpcRequestFrame {
  id: IpcId
  method: string
  params?: unknown
}

/** `id` is null only when the request's id could not be read (a malformed frame). */
export type IpcResponseFrame =
  | { id: IpcId | null, result: unknown }
  | { id: IpcId, progress: unknown }
  | { id: IpcId | null, error: { code: IpcErrorCode, message: string } }

/** Linux allows 107 bytes of path in a Unix socket address (sun_path is 108 with the NUL). */
export const MAX_SOCKET_PATH_BYTES = 107

/** Past this many unanswered requests on one connection the server stops reading from it. */
const MAX_IN_FLIGHT = 1024
/** How long a connection closed for a malformed frame may stay half-open. */
const LINGER_MS = 1000

/** The CLI could not reach a node: one line that says how to start one. */
export class NodeNotRunningError extends Error {
  static override readonly name: string = 'NodeNotRunningError'
  override readonly name: string = 'NodeNotRunningError'
  readonly socketPath: string
  readonly home: string

  constructor (socketPath: string, home = dirname(socketPath), options?: { cause?: unknown }) {
    super(`no node is running at ${socketPath} (start one with: bizra start --home ${shellWord(home)})`, options)
    this.socketPath = socketPath
    this.home = home
  }
}

/**
 * A live node already listens on the socket path. A FileError (a user-facing error about one
 * file) so the CLI prints it as one line; the message is `another node is running on <path>`.
 */
export class NodeAlreadyRunningError extends FileError {
  static override readonly name: string = 'NodeAlreadyRunningError'
  override readonly name: string = 'NodeAlreadyRunningError'

  constructor (socketPath: string) {
    super(socketPath, 'another node is running on it')
    this.message = `another node is running on ${socketPath}`
  }
}

/** The node answered with an error frame; `code` is one of IpcErrorCode. */
export class IpcRemoteError extends Error {
  static override readonly name: string = 'IpcRemoteError'
  override readonly name: string = 'IpcRemoteError'
  readonly code: string

  constructor (code: string, message: string) {
    super(message)
    this.code = code
  }
}

/** No answer within the request's timeoutMs. */
export class IpcTimeoutError extends Error {
  static override readonly name: string = 'IpcTimeoutError'
  override readonly name: string = 'IpcTimeoutError'
}

/** The connection closed (by the node or by IpcClient.close()) before the answer came. */
export class IpcClosedError extends Error {
  static override readonly name: string = 'IpcClosedError'
  override readonly name: string = 'IpcClosedError'
}

export interface IpcServer {
  readonly socketPath: string
  /** stops accepting, ends connections, aborts in-flight handlers' signals, unlinks the socket */
  close: () => Promise<void>
}

export interface IpcServerOptions {
  /** bound on one request frame's body (default 4 MiB); answers over it become FAILED errors */
  maxFrame?: number
  /** errors of the listening socket after start (e.g. EMFILE on accept); ignored by default */
  onError?: (err: Error) => void
}

/**
 * Listens on `socketPath` (mode 0600). A socket file left by a node that crashed is replaced;
 * a live node on the path fails the start with NodeAlreadyRunningError.
 */
export async function startIpcServer (socketPath: string, handlers: IpcHandlers, options: IpcServerOptions = {}): Promise<IpcServer> {
  checkPathLength(socketPath)
  await removeStaleSocket(socketPath)
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME
  const closing = new AbortController()
  const connections = new Set<Socket>()
  const server: Server = createServer(socket => serve(socket))

  const serve = (socket: Socket): void => {
    connections.add(socket)
    const gone = new AbortController()
    const signal = AbortSignal.any([closing.signal, gone.signal])
    const decoder = new FrameDecoder(maxFrame)
    let inFlight = 0
    let broken = false

    const flow = (): void => {
      if (broken) return
      if (inFlight >= MAX_IN_FLIGHT || socket.writableNeedDrain) socket.pause()
      else if (socket.isPaused()) socket.resume()
    }
    const send = (reply: IpcResponseFrame): void => {
      if (!socket.writable) return
      let frame: Buffer
      try {
        frame = encodeFrame(reply, maxFrame)
      } catch (err) {
        frame = encodeFrame({ id: reply.id, error: { code: 'FAILED', message: `the answer cannot be sent: ${errorMessage(err)}` } })
      }
      socket.write(frame)
    }
    const finish = (id: IpcId, ok: boolean, value: unknown): void => {
      inFlight--
      send(ok ? { id, result: value ?? null } : { id, error: { code: 'FAILED', message: errorMessage(value) } })
      flow()
    }
    const dispatch = (request: unknown): void => {
      const req = isObject(request) ? request : undefined
      const id = req !== undefined && (typeof req.id === 'string' || (typeof req.id === 'number' && Number.isFinite(req.id))) ? req.id : null
      if (req === undefined || id === null || typeof req.method !== 'string') {
        send({ id, error: { code: 'BAD_REQUEST', message: 'a request is { id: number|string, method: string, params? }' } })
        return
      }
      const method = req.method
      if (!Object.hasOwn(handlers, method)) {
        send({ id, error: { code: 'UNKNOWN_METHOD', message: `unknown method ${JSON.stringify(method.length > 80 ? method.slice(0, 80) + '…' : method)}` } })
        return
      }
      inFlight++
      let out: unknown
      let answered = false
      const progress = (value: unknown): void => { if (!answered) send({ id, progress: value ?? null }) }
      const settle = (ok: boolean, value: unknown): void => {
        answered = true
        finish(id, ok, value)
      }
      try {
        out = handlers[method]!(req.params, signal, progress)
      } catch (err) {
        settle(false, err)
        return
      }
      if (isThenable(out)) out.then(v => settle(true, v), err => settle(false, err))
      else settle(true, out)
    }

    socket.on('data', (chunk: Buffer) => {
      if (broken) return
      let requests: unknown[]
      try {
        requests = decoder.push(chunk)
      } catch (err) {
        // no frame boundary can be trusted after this: say why, then close the connection
        broken = true
        gone.abort(new IpcClosedError('the connection sent a malformed frame'))
        const message = err instanceof FrameError ? err.message : 'unreadable frame'
        if (socket.writable) socket.end(encodeFrame({ id: null, error: { code: 'BAD_REQUEST', message } }))
        setTimeout(() => socket.destroy(), LINGER_MS).unref()
        return
      }
      for (const r of requests) dispatch(r)
      flow()
    })
    socket.on('drain', flow)
    socket.on('error', () => { /* 'close' follows */ })
    socket.on('close', () => {
      connections.delete(socket)
      gone.abort(new IpcClosedError('the client disconnected'))
    })
  }

  // bind() runs synchronously inside listen(): a restrictive umask over that call means the
  // socket file never exists with group/world access, and no other code of this process runs
  // (and creates files) while it is in force. chmod afterwards pins the documented 0600.
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(err.code === 'EADDRINUSE' ? new NodeAlreadyRunningError(socketPath) : err)
    }
    server.once('error', onError)
    const restore = setUmask(0o077)
    try {
      server.listen(socketPath, () => {
        server.off('error', onError)
        resolve()
      })
    } finally {
      restore()
    }
  })
  let ino: number
  try {
    chmodSync(socketPath, 0o600)
    ino = statSync(socketPath).ino
  } catch (err) {
    await new Promise(resolve => server.close(resolve))
    throw err
  }
  server.on('error', err => options.onError?.(err))

  let closed: Promise<void> | undefined
  return {
    socketPath,
    close: () => {
      closed ??= new Promise<void>(resolve => {
        closing.abort(new IpcClosedError('the node is stopping'))
        server.close(() => {
          // libuv unlinks the path on close; make sure, but never remove another node's socket
          try {
            if (statSync(socketPath).ino === ino) unlinkSync(socketPath)
          } catch {}
          resolve()
        })
        for (const s of connections) s.destroy()
      })
      return closed
    }
  }
}

/** Removes a socket file no process listens on; fails if a live node answers on it. */
async function removeStaleSocket (socketPath: string): Promise<void> {
  let isSocket: boolean
  try {
    isSocket = lstatSync(socketPath).isSocket()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (!isSocket) throw new FileError(socketPath, 'exists and is not a socket; refusing to replace it')
  const probe = await new Promise<NodeJS.ErrnoException | null>(resolve => {
    const s = createConnection(socketPath)
    s.once('connect', () => { s.destroy(); resolve(null) })
    s.once('error', err => resolve(err))
  })
  if (probe === null) throw new NodeAlreadyRunningError(socketPath)
  if (probe.code !== 'ECONNREFUSED' && probe.code !== 'ENOENT') {
    throw new FileError(socketPath, `cannot tell whether a node is running on it: ${probe.message}`)
  }
  try {
    unlinkSync(socketPath) // left by a node that crashed
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

/** Sets the process umask; returns a function that restores it (no-op where umask is unavailable, e.g. worker threads). */
function setUmask (mask: number): () => void {
  try {
    const old = process.umask(mask)
    return () => { process.umask(old) }
  } catch {
    return () => {}
  }
}

function checkPathLength (socketPath: string): void {
  const bytes = Buffer.byteLength(socketPath)
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new FileError(socketPath, `path is ${bytes} bytes, too long for a Unix socket (at most ${MAX_SOCKET_PATH_BYTES}); use a shorter --home`)
  }
}

export interface IpcClientOptions {
  /** the node's home, for the "start one with" hint (default: dirname(socketPath)) */
  home?: string
  /** bound on one answer frame's body (default 4 MiB) */
  maxFrame?: number
}

export interface IpcCallOptions {
  /** reject with IpcTimeoutError if no answer comes within this many ms (connecting included) */
  timeoutMs?: number
  /** abandons the request (the node is not told) */
  signal?: AbortSignal
  /** called with each `progress` frame the node sends before its answer */
  onProgress?: (value: unknown) => void
}

export interface IpcRequestOptions extends IpcClientOptions, IpcCallOptions {}

interface Pending {
  method: string
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout | undefined
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  onProgress: ((value: unknown) => void) | undefined
}

/**
 * A persistent connection to the node with pipelined requests matched by id. Connects on the
 * first request (and again after the node closed the connection); NodeNotRunningError when no
 * node listens on the path.
 */
export class IpcClient {
  readonly socketPath: string
  readonly home: string
  readonly #maxFrame: number
  #socket: Socket | undefined
  #connecting: Promise<Socket> | undefined
  #closed = false
  #nextId = 1
  readonly #pending = new Map<number, Pending>()

  constructor (socketPath: string, options: IpcClientOptions = {}) {
    this.socketPath = socketPath
    this.home = options.home ?? dirname(socketPath)
    this.#maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME
  }

  /** Connects now rather than on the first request. */
  async connect (): Promise<void> {
    await this.#connect()
  }

  /**
   * Sends `{ id, method, params }` and resolves with the answer's `result`. Rejects with
   * IpcRemoteError (the node's error code and message), IpcTimeoutError, IpcClosedError,
   * NodeNotRunningError, or FrameError when params cannot be encoded.
   */
  request<T = unknown> (method: string, params?: unknown, options: IpcCallOptions = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new IpcClosedError('the IPC client is closed'))
    const { signal, timeoutMs } = options
    if (signal?.aborted === true) return Promise.reject(signal.reason)
    const id = this.#nextId++
    let frame: Buffer
    try {
      frame = encodeFrame(params === undefined ? { id, method } : { id, method, params })
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { method, resolve: resolve as (value: unknown) => void, reject, timer: undefined, signal, onAbort: undefined, onProgress: options.onProgress }
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.#settle(id, new IpcTimeoutError(`the node at ${this.socketPath} did not answer ${method} within ${timeoutMs} ms`), false)
        }, timeoutMs)
      }
      if (signal !== undefined) {
        entry.onAbort = () => this.#settle(id, signal.reason, false)
        signal.addEventListener('abort', entry.onAbort, { once: true })
      }
      this.#pending.set(id, entry)
      const socket = this.#socket
      if (socket !== undefined && !socket.destroyed) {
        socket.write(frame)
      } else {
        this.#connect().then(s => { if (this.#pending.has(id)) s.write(frame) }, err => this.#settle(id, err, false))
      }
    })
  }

  /** Closes the connection; unanswered requests reject with IpcClosedError. */
  close (): Promise<void> {
    this.#closed = true
    const socket = this.#socket
    this.#socket = undefined
    this.#failAll(new IpcClosedError('the IPC client was closed before the node answered'))
    if (socket === undefined || socket.closed) return Promise.resolve()
    return new Promise(resolve => {
      socket.once('close', () => resolve())
      socket.destroy()
    })
  }

  #connect (): Promise<Socket> {
    if (this.#socket !== undefined && !this.#socket.destroyed) return Promise.resolve(this.#socket)
    this.#connecting ??= new Promise<Socket>((resolve, reject) => {
      try {
        checkPathLength(this.socketPath)
      } catch (err) {
        this.#connecting = undefined
        reject(err)
        return
      }
      const socket = createConnection(this.socketPath)
      const decoder = new FrameDecoder(this.#maxFrame)
      let connected = false
      socket.once('connect', () => {
        connected = true
        this.#connecting = undefined
        if (this.#closed) {
          socket.destroy()
          reject(new IpcClosedError('the IPC client was closed'))
          return
        }
        this.#socket = socket
        resolve(socket)
      })
      socket.on('data', (chunk: Buffer) => {
        let replies: unknown[]
        try {
          replies = decoder.push(chunk)
        } catch (err) {
          socket.destroy()
          this.#failAll(err as Error)
          return
        }
        for (const r of replies) this.#onReply(r)
      })
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (connected) return // 'close' follows and fails what is pending
        this.#connecting = undefined
        reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? new NodeNotRunningError(this.socketPath, this.home, { cause: err }) : err)
      })
      socket.on('close', () => {
        if (this.#socket === socket) this.#socket = undefined
        if (connected) this.#failAll(new IpcClosedError(`the node at ${this.socketPath} closed the connection before answering`))
      })
    })
    return this.#connecting
  }

  #onReply (reply: unknown): void {
    if (!isObject(reply)) return
    const error = isObject(reply.error) ? reply.error : undefined
    if (typeof reply.id !== 'number') {
      // an answer to no request of ours: the node refused the stream and is closing it
      if (reply.id === null && error !== undefined) this.#failAll(remoteError(error))
      return
    }
    if (error !== undefined) this.#settle(reply.id, remoteError(error), false)
    else if ('result' in reply) this.#settle(reply.id, reply.result, true)
    else if ('progress' in reply) {
      const entry = this.#pending.get(reply.id)
      try {
        entry?.onProgress?.(reply.progress)
      } catch (err) {
        this.#settle(reply.id, err, false)
      }
    }
  }

  #settle (id: number, value: unknown, ok: boolean): void {
    const entry = this.#pending.get(id)
    if (entry === undefined) return
    this.#pending.delete(id)
    if (entry.timer !== undefined) clearTimeout(entry.timer)
    if (entry.onAbort !== undefined) entry.signal!.removeEventListener('abort', entry.onAbort)
    if (ok) entry.resolve(value)
    else entry.reject(value as Error)
  }

  #failAll (err: Error): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, err, false)
  }
}

/** One request on a fresh connection, closed afterwards (what the CLI does). */
export async function ipcRequest<T = unknown> (socketPath: string, method: string, params?: unknown, options: IpcRequestOptions = {}): Promise<T> {
  const client = new IpcClient(socketPath, options)
  try {
    return await client.request<T>(method, params, options)
  } finally {
    void client.close()
  }
}

function remoteError (error: Record<string, unknown>): IpcRemoteError {
  return new IpcRemoteError(typeof error.code === 'string' ? error.code : 'FAILED', typeof error.message === 'string' ? error.message : 'the request failed')
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isThenable (v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function'
}

function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message
  if (typeof err === 'string') return err
  try {
    return JSON.stringify(err) ?? String(err)
  } catch {
    return String(err)
  }
}

/** `home` as one shell word, quoted only when it needs to be. */
function shellWord (s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}
