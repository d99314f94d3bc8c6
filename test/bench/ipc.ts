/**
 * npm run bench:ipc — sequential `status` requests from one client over the node's IPC socket
 * (4-byte LE length + JSON), the server in a child process as the CLI and a node would be.
 * Baseline in the same run: a bare Unix-socket echo of the same bytes (no JSON, no handler).
 * Last line: one JSON object.
 */
import { fork } from 'node:child_process'
import { createConnection } from 'node:net'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IpcClient, startIpcServer } from '../../src/node/ipc.ts'
import type { NodeStatus } from '../../src/node/types.ts'

const DURATION_MS = Number(process.env.BENCH_MS ?? 3000)

if (process.argv[2] === 'server') {
  const [, , , mode, path] = process.argv
  const status: NodeStatus = {
    peerId: '12D3KooWNUJB4S1BxNDKCXg7dMYnJ3GeMxaAuRyTB5R1rz5Z2iL4',
    addresses: ['/ip4/127.0.0.1/tcp/9000/p2p/12D3KooWNUJB4S1BxNDKCXg7dMYnJ3GeMxaAuRyTB5R1rz5Z2iL4', '/ip4/192.168.1.20/tcp/9000/p2p/12D3KooWNUJB4S1BxNDKCXg7dMYnJ3GeMxaAuRyTB5R1rz5Z2iL4'],
    api: '127.0.0.1:3001',
    state: 'ACTIVE',
    peers: 12,
    connections: 14,
    federationId: 'local-federation',
    uptimeS: 3600,
    version: '0.1.0'
  }
  if (mode === 'ipc') {
    await startIpcServer(path!, { status: () => status })
  } else {
    const { createServer } = await import('node:net')
    createServer(s => s.on('data', d => s.write(d))).listen(path!)
  }
  process.send!('ready')
} else {
  const dir = mkdtempSync(join(tmpdir(), 'bz-ipcb-'))
  const self = fileURLToPath(import.meta.url)
  const start = async (mode: string): Promise<{ path: string, stop: () => void }> => {
    const path = join(dir, `${mode}.sock`)
    const child = fork(self, ['server', mode, path], { stdio: 'inherit' })
    await new Promise(resolve => child.once('message', resolve))
    return { path, stop: () => child.kill() }
  }
  const percentile = (xs: number[], p: number): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length * p / 100)]!

  const ipc = await start('ipc')
  const client = new IpcClient(ipc.path)
  const lat: number[] = []
  let frameBytes = 0
  for (let i = 0; i < 2000; i++) await client.request('status') // warm up
  let t0 = performance.now()
  while (performance.now() - t0 < DURATION_MS) {
    const t = performance.now()
    const s = await client.request('status')
    lat.push(performance.now() - t)
    frameBytes = JSON.stringify({ id: 1, result: s }).length + 4
  }
  const ipcWall = performance.now() - t0
  client.close()
  ipc.stop()

  // baseline: the same number of bytes echoed over a bare Unix socket, one request at a time
  const echo = await start('echo')
  const sock = createConnection(echo.path)
  await new Promise(resolve => sock.once('connect', resolve))
  const payload = Buffer.alloc(frameBytes, 0x61)
  let pending: (() => void) | undefined
  let got = 0
  sock.on('data', d => { got += d.length; if (got >= payload.length) { got = 0; pending?.() } })
  const roundTrip = (): Promise<void> => new Promise(resolve => { pending = resolve; sock.write(payload) })
  for (let i = 0; i < 2000; i++) await roundTrip()
  let raw = 0
  t0 = performance.now()
  while (performance.now() - t0 < DURATION_MS) { await roundTrip(); raw++ }
  const rawWall = performance.now() - t0
  sock.destroy()
  echo.stop()

  const reqPerSec = Math.round(lat.length / (ipcWall / 1000))
  const rawReqPerSec = Math.round(raw / (rawWall / 1000))
  console.log(`server in a child process; ${lat.length} sequential status requests of ${frameBytes}-byte answers; p99 ${percentile(lat, 99).toFixed(3)} ms`)
  console.log(JSON.stringify({ bench: 'ipc', p50Ms: Math.round(percentile(lat, 50) * 1000) / 1000, reqPerSec, rawReqPerSec, ratio: Math.round(reqPerSec / rawReqPerSec * 1000) / 1000 }))
  process.exit(0)
}
