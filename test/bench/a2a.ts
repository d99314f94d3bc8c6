/**
 * npm run bench:a2a — A2A echo tasks against a bare libp2p request/response echo stream on the
 * same nodes, in one run:
 *   two-node:   node 0 sends `echo` tasks to node 1 (`to` set: no provider choice);
 *   federation: eight nodes, node 0 sends `bench-echo` tasks with no `to`, so the router picks
 *               among the four nodes that offer it (gossiped cards, ranking, failover ready).
 * A task is the whole path a user gets: task card signed into an envelope, a stream on
 * /bizra/a2a/1.0.0, the executor's envelope/schema/FATE checks, the skill, the session-DAG
 * record (one atomic batch of five nodes), a signed result envelope with the Merkle proof, and
 * the requester's verification of both. The baseline opens a stream per request and echoes
 * the same text with no envelope, no checks and no log. Each node runs in a process of its own
 * (the sender in this one), as a federation's nodes do, so the machine's cores are shared the
 * way they would be in deployment (BENCH_LAYOUT=two puts the seven others in one process).
 * Latency: one request in flight (p50/p99). Throughput: 16 in flight. Modes alternate in
 * slices so machine drift hits all alike.
 *
 * Context lines first; last line one JSON object:
 *   {"bench":"a2a","p50Ms":…,"p99Ms":…,"tasksPerSec":…,"rawEchoPerSec":…,"ratio":…}
 * The headline numbers are the federation's (routing included); two-node figures ride along.
 * Targets: p50 <= 5 ms, >= 1,000 tasks/s, ratio (tasksPerSec / rawEchoPerSec) >= 0.5.
 * BENCH_MS sets the time per mode and slice (default 1500).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { BizraNode } from '../../src/node/node.ts'
import { swarmKeyFile, tempDir } from '../helpers/nodes.ts'
import { median } from './harness.ts'

const SLICE_MS = Number(process.env.BENCH_MS ?? 1500)
const SLICES = 3
const CONCURRENCY = 16
const ECHO_PROTOCOL = '/bizra-bench/echo/1.0.0'
const TEXT = 'the quick brown fox jumps over the lazy dog, 0123456789 ABCDEF'
const SKILL = { id: 'bench-echo', name: 'Bench echo', description: 'echo for the benchmark', tags: ['bench'], inputModes: ['text/plain'], outputModes: ['text/plain'] }

async function startNode (key: string, bootstrap: string[]): Promise<BizraNode> {
  const node = await BizraNode.start({
    home: tempDir('bz-bench-a2a-'),
    logger: false,
    ipc: false,
    // the default membership heartbeat (10 s), as a node runs
    config: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, api: null, swarmKey: key }
  })
  await node.libp2p.handle(ECHO_PROTOCOL, async (stream) => {
    const lp = lpStream(stream)
    try {
      await lp.write(await lp.read())
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  }, { maxInboundStreams: 1024, maxOutboundStreams: 1024 })
  return node
}

// the other nodes run in child processes: `a2a.ts child KEY BOOTSTRAP FLAGS`, one node per
// character of FLAGS ('1' = offers bench-echo)
if (process.argv[2] === 'child') {
  const [, , , key, bootstrap, flags] = process.argv
  const nodes: BizraNode[] = []
  for (const flag of flags!) {
    const node = await startNode(key!, [bootstrap!])
    if (flag === '1') node.skills.register(SKILL, async (m) => ({ parts: m.parts }))
    nodes.push(node)
  }
  process.stdout.write(JSON.stringify({ peerIds: nodes.map(n => n.peerId) }) + '\n')
  process.on('disconnect', () => { void Promise.all(nodes.map(n => n.stop())).then(() => process.exit(0)) })
  await new Promise(() => {})
}

// BENCH_LAYOUT=each (default): every node in a process of its own; =two: the seven others share one
const layout = process.env.BENCH_LAYOUT === 'two' ? ['0001111'] : ['0', '0', '0', '1', '1', '1', '1']

const key = swarmKeyFile()
const sender = await startNode(key, [])
const boot = sender.addresses().find(a => a.includes('127.0.0.1'))!
const children: ChildProcess[] = []
const peers: string[] = []
for (const flags of layout) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', key, boot, flags], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  children.push(child)
  peers.push(...await new Promise<string[]>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { peerIds: string[] }).peerIds))
    child.once('exit', code => reject(new Error(`bench node exited with ${code}`)))
  }))
}
const providers = peers.slice(3)
const encoder = new TextEncoder()

const deadline = Date.now() + 60_000
while (sender.a2a.directory.providers('bench-echo').length < providers.length || sender.libp2p.getConnections().length < peers.length) {
  if (Date.now() > deadline) throw new Error('the federation did not form in 60 s')
  await new Promise(resolve => setTimeout(resolve, 100))
}

async function rawEcho (to: string): Promise<void> {
  const stream = await sender.libp2p.dialProtocol(peerIdFromString(to), ECHO_PROTOCOL)
  const lp = lpStream(stream)
  await lp.write(encoder.encode(TEXT))
  const back = await lp.read()
  if (back.byteLength !== TEXT.length) throw new Error('echo mismatch')
  await stream.close()
}

async function task (skill: string, to?: string): Promise<void> {
  const { id } = await sender.tasks.sendTask({ skill, to, message: { parts: [{ text: TEXT }] } })
  const t = await sender.tasks.waitTask(id)
  if (t.state !== 'completed') throw new Error(`task ${t.state}: ${JSON.stringify(t.error)}`)
}

let rr = 0
const modes = {
  twoNodeTask: () => task('echo', peers[0]),
  twoNodeRaw: () => rawEcho(peers[0]!),
  federationTask: () => task('bench-echo'),
  federationRaw: () => rawEcho(providers[rr++ % providers.length]!)
}
type Mode = keyof typeof modes

/** Runs `fn` with `concurrency` in flight for `ms`; returns per-call latencies and calls/s. */
async function run (fn: () => Promise<void>, concurrency: number, ms: number): Promise<{ latencies: number[], perSec: number }> {
  const latencies: number[] = []
  const t0 = performance.now()
  const end = t0 + ms
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const s = performance.now()
      await fn()
      latencies.push(performance.now() - s)
    }
  }))
  return { latencies, perSec: latencies.length / ((performance.now() - t0) / 1000) }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!
}
const r2 = (x: number): number => Math.round(x * 100) / 100

for (const fn of Object.values(modes)) await run(fn, CONCURRENCY, 300) // warm-up
const latency = Object.fromEntries(Object.keys(modes).map(k => [k, [] as number[]])) as Record<Mode, number[]>
const rate = Object.fromEntries(Object.keys(modes).map(k => [k, [] as number[]])) as Record<Mode, number[]>
for (let s = 0; s < SLICES; s++) {
  for (const [k, fn] of Object.entries(modes) as Array<[Mode, () => Promise<void>]>) {
    latency[k].push(...(await run(fn, 1, SLICE_MS / 2)).latencies)
    rate[k].push((await run(fn, CONCURRENCY, SLICE_MS)).perSec)
  }
}

const summary = (k: Mode): { p50Ms: number, p99Ms: number, perSec: number } => ({ p50Ms: r2(pct(latency[k], 0.5)), p99Ms: r2(pct(latency[k], 0.99)), perSec: Math.round(median(rate[k])) })
const two = { task: summary('twoNodeTask'), raw: summary('twoNodeRaw') }
const fed = { task: summary('federationTask'), raw: summary('federationRaw') }
console.log(`two nodes:  tasks p50 ${two.task.p50Ms} ms p99 ${two.task.p99Ms} ms ${two.task.perSec}/s; raw echo p50 ${two.raw.p50Ms} ms ${two.raw.perSec}/s`)
console.log(`federation: tasks p50 ${fed.task.p50Ms} ms p99 ${fed.task.p99Ms} ms ${fed.task.perSec}/s; raw echo p50 ${fed.raw.p50Ms} ms ${fed.raw.perSec}/s (8 nodes, 4 providers)`)
for (const c of children) c.disconnect()
await sender.stop()
console.log(JSON.stringify({
  bench: 'a2a',
  nodes: 8,
  p50Ms: fed.task.p50Ms,
  p99Ms: fed.task.p99Ms,
  tasksPerSec: fed.task.perSec,
  rawEchoPerSec: fed.raw.perSec,
  ratio: r2(fed.task.perSec / fed.raw.perSec),
  twoNode: { p50Ms: two.task.p50Ms, p99Ms: two.task.p99Ms, tasksPerSec: two.task.perSec, rawEchoPerSec: two.raw.perSec, ratio: r2(two.task.perSec / two.raw.perSec) }
}))
