import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { NodeHost, type HostCommand, type HostEvent, type HostInit } from './host.ts'

/**
 * A worker thread of the `real` engine: hosts one share of the federation's nodes (host.ts).
 * Commands come from the engine on parentPort; events go back in one message per turn of the
 * event loop. `workerData.ports` are the MessagePorts to the other workers, one per worker,
 * which carry the links between nodes of different threads (links.ts, LinkBridge).
 */

const { init, ports } = workerData as { init: HostInit, ports: Array<[number, MessagePort]> }
const port = parentPort!

let out: HostEvent[] = []
let flushing = false
const emit = (e: HostEvent): void => {
  out.push(e)
  if (!flushing) {
    flushing = true
    setImmediate(() => {
      flushing = false
      const batch = out
      out = []
      port.postMessage(batch)
    })
  }
}

// a stray rejection in the libp2p stack must not take the nodes of this thread down with it
// (in the engine's own thread it would surface the same way); the engine logs it
process.on('unhandledRejection', err => { emit({ e: 'warning', message: `unhandled rejection: ${(err as Error)?.stack ?? String(err)}` }) })

const host = new NodeHost(init, emit)
for (const [other, p] of ports) host.attachBridge(other, p)
port.on('message', (cmd: HostCommand) => host.handle(cmd))
