/**
 * npm run bench:ipc — sequential `status` requests (one in flight at a time) from one IpcClient
 * on one persistent connection to an IPC server in a child process, as the CLI and a running
 * node are. Baseline in the same run: a bare Unix-socket round trip of the same bytes (the
 * request frame out, the response frame back; no JSON, no handler), also to a child process.
 * The two are measured in alternating slices so machine drift hits both alike.
 *
 * Context lines first; last line one JSON object:
 *   {"bench":"ipc","p50Ms":…,"reqPerSec":…,"rawReqPerSec":…,"ratio":…}
 * Targets: p50 <= 0.8 ms, reqPerSec >= 12,000. BENCH_MS sets the time per mode (default 3000).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createConnection, createServer, type Socket } from 'node:net'
import { cpus } from 'node:os'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IpcClient, startIpcServer } from '../../src/node/ipc.ts'
import { encodeFrame } from '../../src/node/ipc-codec.ts'
import type { NodeStatus } from '../../src/node/types.ts'

const DURATION_MS = Number(process.env.BENCH_MS ?? 3000)
const SLICES = 3
const WARMUP = 3000

const PEER_ID = '12D3KooWNUJB4S1BxNDKCXg7dMYnJ3GeMxaAuRyTB5R1rz5Z2iL4'
const startedAt = Date.now() - 3_725_000

/** What a node a little over an hour into a 12-peer federation reports. */
function status (): NodeStatus {
  return {
    peerId: PEER_ID,
    addresses: [
      `/ip4/127.0.0.1/tcp/9000/p2p/${PEER_ID}`,
      `/ip4/192.168.1.20/tcp/9000/p2p/${PEER_ID}`,
      `/ip4/10.8.0.3/tcp/9000/p2p/${PEER_ID}`
    ],
    api: '127.0.0.1:3001',
    state: 'ACTIVE',
    peers: 12,
    connections: 14,
    federationId: 'bizra-genesis-7f3a9c2e',
    uptimeS: Math.floor((Date.now() - startedAt) / 1000),
    version: '0.1.0'
  }
}

/** Request and response frames of one exchange, byte for byte what the IPC run sends. */
const REQUEST = encodeFrame({ id: 1_000_000, method: 'status' })
const RESPONSE = encodeFrame({ id: 1_000_000, result: status() })

if (process.argv[2] === 'server') {
  const [, , , mode, path] = process.argv
  process.on('disconnect', () => process.exit(0)) // the parent went away
  if (mode === 'ipc') {
    await startIpcServer(path!, { status: () => status() })
  } else {
    // bare baseline: after each whole request's bytes, answer the response's bytes
    const server = createServer((s: Socket) => {
      let got = 0
      s.on('data', d => {
        got += d.length
        while (got >= REQUEST.length) {
          got -= REQUEST.length
          s.write(RESPONSE)
        }
      })
    })
    await new Promise<void>(resolve => server.listen(path!, resolve))
  }
  process.send!('ready')
} else {
  const dir = mkdtempSync(join(tmpdir(), 'bz-ipcb-'))
  const self = fileURLToPath(import.meta.url)
  const children: ChildProcess[] = []
  const spawnServer = async (mode: 'ipc' | 'raw'): Promise<string> => {
    const path = join(dir, `${mode}.sock`)
    const child = fork(self, ['server', mode, path], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(child)
    await new Promise((resolve, reject) => {
      child.once('message', resolve)
      child.once('exit', code => reject(new Error(`${mode} server exited with ${code}`)))
    })
    return path
  }
  const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p / 100))]!

  try {
    const ipcPath = await spawnServer('ipc')
    const rawPath = await spawnServer('raw')

    // the IPC client: one persistent connection, one request at a time
    const client = new IpcClient(ipcPath)
    await client.connect()
    let answerBytes = 0
    for (let i = 0; i < WARMUP; i++) {
      const s = await client.request<NodeStatus>('status')
      answerBytes = encodeFrame({ id: i, result: s }).length
    }

    // the bare client: one connection, write the request bytes, wait for all response bytes
    const sock = createConnection(rawPath)
    await new Promise(resolve => sock.once('connect', resolve))
    let got = 0
    let wake: (() => void) | undefined
    sock.on('data', d => {
      got += d.length
      if (got >= RESPONSE.length) {
        got -= RESPONSE.length
        const w = wake
        wake = undefined
        w?.()
      }
    })
    const rawRoundTrip = (): Promise<void> => new Promise(resolve => { wake = resolve; sock.write(REQUEST) })
    for (let i = 0; i < WARMUP; i++) await rawRoundTrip()

    const ipcLat: number[] = []
    const rawLat: number[] = []
    let ipcWall = 0
    let rawWall = 0
    const slice = DURATION_MS / SLICES
    for (let k = 0; k < SLICES; k++) {
      let t0 = performance.now()
      let now = t0
      while (now - t0 < slice) {
        const t = now
        await client.request('status')
        now = performance.now()
        ipcLat.push(now - t)
      }
      ipcWall += now - t0
      t0 = now = performance.now()
      while (now - t0 < slice) {
        const t = now
        await rawRoundTrip()
        now = performance.now()
        rawLat.push(now - t)
      }
      rawWall += now - t0
    }
    await client.close()
    sock.destroy()

    ipcLat.sort((a, b) => a - b)
    rawLat.sort((a, b) => a - b)
    const reqPerSec = Math.round(ipcLat.length / (ipcWall / 1000))
    const rawReqPerSec = Math.round(rawLat.length / (rawWall / 1000))
    const p50Ms = Math.round(percentile(ipcLat, 50) * 1000) / 1000
    const ms = (x: number): string => x.toFixed(3)

    console.log(`node ${process.version} ${process.platform}/${process.arch}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`)
    console.log(`server: a child process (IPC server from src/node/ipc.ts, handler returns a NodeStatus); client: one IpcClient, one persistent connection, sequential requests`)
    console.log(`frames: request ${REQUEST.length} B, response ${answerBytes} B; ${SLICES} alternating slices, ${DURATION_MS} ms per mode, ${WARMUP} warm-up round trips each`)
    console.log(`ipc: ${ipcLat.length} requests, p50 ${ms(percentile(ipcLat, 50))} ms, p90 ${ms(percentile(ipcLat, 90))} ms, p99 ${ms(percentile(ipcLat, 99))} ms, max ${ms(ipcLat[ipcLat.length - 1]!)} ms, ${reqPerSec} req/s`)
    console.log(`raw: ${rawLat.length} round trips of the same bytes over a bare Unix socket (no JSON, no handler), p50 ${ms(percentile(rawLat, 50))} ms, p99 ${ms(percentile(rawLat, 99))} ms, ${rawReqPerSec} req/s`)
    console.log(`targets: p50 <= 0.8 ms ${p50Ms <= 0.8 ? 'met' : 'MISSED'}, >= 12000 req/s ${reqPerSec >= 12000 ? 'met' : 'MISSED'}`)
    console.log(JSON.stringify({ bench: 'ipc', p50Ms, reqPerSec, rawReqPerSec, ratio: Math.round(reqPerSec / rawReqPerSec * 1000) / 1000 }))
  } finally {
    for (const c of children) c.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}
