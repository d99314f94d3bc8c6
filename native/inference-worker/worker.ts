/**
 * The inference worker: a child process that hosts node-llama-cpp so that a native crash, a
 * hang or a leak in llama.cpp costs a restart, not the node. Speaks length-prefixed JSON frames
 * on stdin/stdout (protocol.ts); logs go to stderr. Exits when stdin closes (the parent is gone).
 *
 *   node native/inference-worker/worker.ts [--cpu]
 *
 * --cpu: never use a GPU (default: a GPU backend where a prebuilt one works, else the CPU).
 */
import { encodeFrame, FrameDecoder, type FrameError } from '../../src/node/ipc-codec.ts'
import { ModelHost } from './host.ts'
import { parseRequest, RequestError, requestId, STREAM_INTERVAL_MS, type ErrorFrame, type RequestId, type WorkerRequest } from './protocol.ts'

const log = (line: string): void => {
  process.stderr.write(`[inference-worker ${process.pid}] ${line}\n`)
}

// stdout carries frames only: a library that prints would corrupt the stream, so console
// output goes to stderr.
console.log = console.info = console.debug = (...args: unknown[]) => log(args.map(String).join(' '))

function send (frame: unknown): void {
  process.stdout.write(encodeFrame(frame))
}

function sendError (id: RequestId | null, err: unknown): void {
  const frame: ErrorFrame = err instanceof RequestError
    ? { id, error: { code: err.code, message: err.message } }
    : { id, error: { code: 'internal', message: (err as Error)?.message ?? String(err) } }
  send(frame)
}

let host: ModelHost
try {
  host = await ModelHost.open(process.argv.includes('--cpu') ? false : 'auto', log)
} catch (err) {
  send({ event: 'fatal', error: { code: 'init_failed', message: `cannot start llama.cpp: ${(err as Error).message}` } })
  process.exit(1)
}

/**
 * The text of one infer request on its way to stdout. The first piece is written at once; after
 * it, text is written at most every STREAM_INTERVAL_MS, all that came in meanwhile in one
 * frame. A token of a tiny model takes a quarter of a millisecond, and a frame per token cost
 * the node's path (this write, the node's read, its SSE write, the client's parse) a third of
 * its speed; a few milliseconds is below what anyone watching the text can see.
 */
class TokenOut {
  readonly #id: RequestId
  #text = ''
  #timer: NodeJS.Timeout | undefined
  #lastSent = 0
  #started = false

  constructor (id: RequestId) {
    this.#id = id
  }

  push (text: string): void {
    if (text === '') return
    if (!this.#started) {
      this.#started = true
      this.#lastSent = performance.now()
      send({ id: this.#id, token: text })
      return
    }
    this.#text += text
    if (this.#timer !== undefined) return
    const wait = STREAM_INTERVAL_MS - (performance.now() - this.#lastSent)
    // even when the interval is over, write on the next turn: by then llama.cpp is evaluating
    // the next token on its own thread and the write runs beside it
    this.#timer = setTimeout(() => { this.#timer = undefined; this.flush() }, Math.max(0, wait))
  }

  /** writes what is buffered now */
  flush (): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#text === '') return
    this.#lastSent = performance.now()
    send({ id: this.#id, token: this.#text })
    this.#text = ''
  }
}

/** abort handles of infer requests that have not finished, by request id */
const running = new Map<RequestId, AbortController>()

async function handle (req: WorkerRequest): Promise<void> {
  switch (req.op) {
    case 'load':
      send({ id: req.id, result: await host.load(req, fraction => send({ id: req.id, progress: fraction })) })
      return
    case 'unload':
      await host.unload(req.model)
      send({ id: req.id, result: { unloaded: req.model } })
      return
    case 'list':
      send({ id: req.id, result: { models: host.list() } })
      return
    case 'health':
      send({ id: req.id, result: host.health() })
      return
    case 'cancel': {
      const target = running.get(req.target)
      target?.abort()
      send({ id: req.id, result: { canceled: target !== undefined } })
      return
    }
    case 'infer': {
      if (running.has(req.id)) throw new RequestError('bad_request', `request id ${req.id} is already running`)
      const abort = new AbortController()
      running.set(req.id, abort)
      const out = new TokenOut(req.id)
      try {
        const result = await host.infer(req, text => out.push(text), abort.signal)
        out.flush()
        send({ id: req.id, done: true, ...result })
      } finally {
        out.flush() // text generated before a failure goes out ahead of the error frame
        running.delete(req.id)
      }
    }
  }
}

const decoder = new FrameDecoder()
process.stdin.on('data', (chunk: Buffer) => {
  let frames: unknown[]
  try {
    frames = decoder.push(chunk)
  } catch (err) {
    // no frame boundary can be trusted after a bad frame: answer what came before, then quit
    for (const f of (err as FrameError).decoded ?? []) dispatch(f)
    sendError(null, new RequestError('bad_request', `unreadable frame: ${(err as Error).message}`))
    log(`exiting: ${(err as Error).message}`)
    process.exitCode = 1
    process.stdin.destroy()
    return
  }
  for (const f of frames) dispatch(f)
})

function dispatch (frame: unknown): void {
  let req: WorkerRequest
  try {
    req = parseRequest(frame)
  } catch (err) {
    sendError(requestId(frame), err)
    return
  }
  handle(req).catch(err => sendError(req.id, err))
}

process.stdin.on('close', () => {
  for (const abort of running.values()) abort.abort()
  setTimeout(() => process.exit(), 2000).unref() // in case llama.cpp does not let go
  void host.close().finally(() => process.exit())
})
// the parent is gone: nobody is left to answer
process.stdout.on('error', () => process.exit(1))

send({ event: 'ready', pid: process.pid, gpu: host.gpu })
log(`ready (${host.gpu === false ? 'cpu' : host.gpu})`)
