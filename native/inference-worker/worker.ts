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
import { parseRequest, RequestError, requestId, type ErrorFrame, type RequestId, type WorkerRequest } from './protocol.ts'

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
      try {
        const result = await host.infer(req, token => { if (token !== '') send({ id: req.id, token }) }, abort.signal)
        send({ id: req.id, done: true, ...result })
      } finally {
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
