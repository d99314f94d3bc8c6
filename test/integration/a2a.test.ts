import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import type { BizraNode } from '../../src/node/node.ts'
import type { NodeEvent } from '../../src/node/types.ts'
import { createEnvelope, verifyEnvelope } from '../../src/pci/envelope.ts'
import { PROTOCOLS } from '../../src/net/protocols.ts'
import { verifyProof } from '../../src/state/proof.ts'
import { ENVELOPE_TYPES, type TaskResult } from '../../src/a2a/wire.ts'
import type { TaskRecord } from '../../src/a2a/types.ts'
import { cliAsync, spawnNode, startTestNode, swarmKeyFile, tempDir, until, type ChildNode } from '../helpers/nodes.ts'

const SKILL_NODE = fileURLToPath(new URL('../helpers/skill-node.ts', import.meta.url))
const spec = (id: string): Parameters<BizraNode['skills']['register']>[0] =>
  ({ id, name: id, description: `test skill ${id}`, tags: ['test'], inputModes: ['text/plain'], outputModes: ['text/plain'] })
const text = (t: TaskRecord): string => (t.result ?? []).map(p => 'text' in p ? p.text : JSON.stringify(p.data)).join('')

/** Waits for a task this node sent to reach `state`. */
async function taskState (node: BizraNode, id: string, state: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const off = node.tasks.onTask(t => {
      if (t.id === id && t.state === state) { off(); resolve() }
    })
    if (node.tasks.getTask(id)?.state === state) { off(); resolve() }
    setTimeout(() => { off(); reject(new Error(`task ${id} never reached ${state}`)) }, 15_000).unref()
  })
}

/** Resolves with the first event of `type` the node emits that `match`es. */
async function nextEvent<T extends NodeEvent['type']> (node: BizraNode, type: T, match: (e: Extract<NodeEvent, { type: T }>) => boolean): Promise<Extract<NodeEvent, { type: T }>> {
  return new Promise((resolve, reject) => {
    const off = node.onEvent(e => {
      if (e.type === type && match(e as Extract<NodeEvent, { type: T }>)) { off(); resolve(e as Extract<NodeEvent, { type: T }>) }
    })
    setTimeout(() => { off(); reject(new Error(`no ${type} event`)) }, 15_000).unref()
  })
}

describe('A2A across five real nodes', () => {
  const key = swarmKeyFile()
  const nodes: BizraNode[] = []
  let bootstrap: string
  const reverseCalls: string[] = []
  const slowAborted: string[] = []

  before(async () => {
    nodes.push(await startTestNode({ swarmKey: key }))
    bootstrap = nodes[0]!.addresses().find(a => a.includes('127.0.0.1'))!
    for (let i = 1; i < 5; i++) nodes.push(await startTestNode({ swarmKey: key, bootstrap: [bootstrap] }))
    const [, , n2, n3, n4] = nodes as [BizraNode, BizraNode, BizraNode, BizraNode, BizraNode]
    n4.skills.register(spec('reverse'), async (m, ctx) => {
      reverseCalls.push(ctx.taskId)
      return { parts: [{ text: [...m.parts.map(p => 'text' in p ? p.text : '').join('')].reverse().join('') }] }
    })
    const slow: Parameters<BizraNode['skills']['register']>[1] = async (_m, ctx) => {
      await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => { slowAborted.push(ctx.taskId); reject(ctx.signal.reason) }, { once: true }))
      return { parts: [{ text: 'never' }] }
    }
    n2.skills.register(spec('slow'), slow)
    n3.skills.register(spec('flaky'), async () => ({ parts: [{ text: 'done by n3' }] }))
    await until(nodes, () => nodes.every(n => n.peers().filter(p => p.state === 'ACTIVE').length === 4), 'all five nodes ACTIVE')
    await until(nodes, () => nodes.every(n => n === n4 || n.a2a.directory.providers('reverse').includes(n4.peerId)), 'every node knows who offers reverse')
  })

  after(async () => {
    await Promise.all(nodes.map(n => n.stop()))
  })

  test('a task for a skill only one node has is routed to it and completes with a proof that verifies', async () => {
    const [n0, , , , n4] = nodes as [BizraNode, BizraNode, BizraNode, BizraNode, BizraNode]
    const sent = await n0.tasks.sendTask({ skill: 'reverse', message: { parts: [{ text: 'federation' }] } })
    assert.equal(sent.state, 'submitted')
    const done = await n0.tasks.waitTask(sent.id)
    assert.equal(done.state, 'completed', JSON.stringify(done.error))
    assert.equal(done.provider, n4.peerId)
    assert.equal(text(done), 'noitaredef')
    assert.ok(reverseCalls.includes(sent.id))
    const check = verifyProof(done.proof)
    assert.ok(check.ok, JSON.stringify(check))
    assert.equal(check.head, done.proofHead)
    // the head is in the executor's own DAG, and its log is consistent
    assert.ok(await n4.a2a.dag.get(done.proofHead!) !== undefined)
    assert.equal((await n4.a2a.dag.check()).ok, true)
  })

  test('a provider found only through its kad-dht provider record still gets the task', async () => {
    const [, n1, , , n4] = nodes as [BizraNode, BizraNode, BizraNode, BizraNode, BizraNode]
    let found: string[] = []
    for (let i = 0; i < 60 && !found.includes(n4.peerId); i++) {
      found = await n1.a2a.findProviders('reverse', AbortSignal.timeout(5_000)).catch(() => [])
      if (!found.includes(n4.peerId)) await new Promise(resolve => setTimeout(resolve, 250))
    }
    assert.ok(found.includes(n4.peerId), 'the DHT names n4 as a provider of reverse')
    n1.a2a.directory.forget(n4.peerId) // as if n1 had never seen n4's card
    assert.deepEqual(n1.a2a.directory.providers('reverse'), [])
    const done = await n1.tasks.waitTask((await n1.tasks.sendTask({ skill: 'reverse', message: { parts: [{ text: 'dht' }] } })).id)
    assert.equal(done.state, 'completed', JSON.stringify(done.error))
    assert.equal(done.provider, n4.peerId)
    assert.equal(text(done), 'thd')
  })

  test('unknown skill -> rejected with a clear message', async () => {
    const n0 = nodes[0]!
    const done = await n0.tasks.waitTask((await n0.tasks.sendTask({ skill: 'no-such-skill', message: { parts: [{ text: 'x' }] } })).id)
    assert.equal(done.state, 'rejected')
    assert.equal(done.error?.code, 'UNKNOWN_SKILL')
    assert.match(done.error!.message, /no node in the federation offers skill "no-such-skill"/)
  })

  test('a task sent to a peer without the skill -> rejected naming the peer', async () => {
    const [n0, n1] = nodes as [BizraNode, BizraNode]
    const done = await n0.tasks.waitTask((await n0.tasks.sendTask({ skill: 'reverse', to: n1.peerId, message: { parts: [{ text: 'x' }] } })).id)
    assert.equal(done.state, 'rejected')
    assert.equal(done.error?.code, 'UNKNOWN_SKILL')
    assert.match(done.error!.message, new RegExp(n1.peerId))
  })

  test('a task that FATE blocks -> rejected naming the gate, and nothing runs', async () => {
    const [n0, , , , n4] = nodes as [BizraNode, BizraNode, BizraNode, BizraNode, BizraNode]
    const before = reverseCalls.length
    const done = await n0.tasks.waitTask((await n0.tasks.sendTask({ skill: 'reverse', to: n4.peerId, message: { parts: [{ text: 'please run rm -rf / for me' }] } })).id)
    assert.equal(done.state, 'rejected')
    assert.equal(done.error?.code, 'F004')
    assert.match(done.error!.message, /FATE gate/)
    assert.equal(reverseCalls.length, before)
  })

  test('a malformed task card -> R005 and nothing runs', async () => {
    const [n0, , , , n4] = nodes as [BizraNode, BizraNode, BizraNode, BizraNode, BizraNode]
    const before = reverseCalls.length
    const stream = await n0.libp2p.dialProtocol(peerIdFromString(n4.peerId), PROTOCOLS.a2a)
    const lp = lpStream(stream)
    const read = async (): Promise<{ kind: string, n?: number, code?: string, envelope?: unknown }> => JSON.parse(new TextDecoder().decode((await lp.read()).subarray()))
    let n = 0
    const ask = async (envelope: unknown): Promise<TaskResult> => {
      await lp.write(new TextEncoder().encode(JSON.stringify({ kind: 'task', n: ++n, envelope })))
      for (;;) {
        const f = await read()
        if (f.kind !== 'result') continue
        assert.equal(f.n, n)
        const v = verifyEnvelope(f.envelope, { replay: false })
        assert.ok(v.ok, 'the rejection is a signed envelope')
        assert.equal(v.envelope.sender, n4.peerId)
        assert.equal(v.envelope.type, ENVELOPE_TYPES.result)
        return v.envelope.payload as TaskResult
      }
    }
    const card = { id: 'bad-1', skill: 'reverse', message: { parts: [{ text: 'x' }] }, requester: n0.peerId, deadline: Date.now() + 10_000 }
    const sign = (payload: unknown): Record<string, unknown> => createEnvelope(n0.identity, { type: ENVELOPE_TYPES.task, payload, ihsan: 1, snr: 1 }) as unknown as Record<string, unknown>
    for (const bad of [
      { ...card, message: { parts: [] } },
      { ...card, id: 'bad-2', skill: 42 },
      { ...card, id: 'bad-3', requester: n4.peerId },
      { ...card, id: 'bad-4', extra: true }
    ]) {
      const r = await ask(sign(bad))
      assert.equal(r.state, 'rejected')
      assert.equal(r.error?.code, 'R005', JSON.stringify(r))
    }
    const notAnEnvelope = await ask({ not: 'an envelope' })
    assert.equal(notAnEnvelope.state, 'rejected')
    assert.equal(notAnEnvelope.error?.code, 'R005')
    const forged = sign(card)
    const sig = forged.sig as string
    forged.sig = sig.slice(0, 10) + (sig[10] === 'A' ? 'B' : 'A') + sig.slice(11)
    assert.equal((await ask(forged)).error?.code, 'R002')
    // bytes that are not JSON: an error frame, and the stream still serves the next task
    await lp.write(new TextEncoder().encode('{"kind": "task", '))
    const err = await read()
    assert.equal(err.kind, 'error')
    assert.equal(err.code, 'R005')
    assert.equal((await ask(sign({ ...card, id: 'bad-5', skill: 'nope!' }))).error?.code, 'R005')
    await stream.close()
    assert.equal(reverseCalls.length, before)
  })

  test('deadline exceeded -> failed with the reason, and the provider stops the skill', async () => {
    const [n0, , n2] = nodes as [BizraNode, BizraNode, BizraNode]
    const sent = await n0.tasks.sendTask({ skill: 'slow', deadlineS: 0.5, message: { parts: [{ text: 'x' }] } })
    const done = await n0.tasks.waitTask(sent.id)
    assert.equal(done.state, 'failed')
    assert.equal(done.provider, n2.peerId)
    assert.equal(done.error?.code, 'DEADLINE')
    assert.match(done.error!.message, /deadline exceeded/)
    await until(nodes, () => slowAborted.includes(sent.id), 'the provider aborted the skill')
  })

  test('cancel -> canceled on both sides', async () => {
    const [n0, , n2] = nodes as [BizraNode, BizraNode, BizraNode]
    const sent = await n0.tasks.sendTask({ skill: 'slow', message: { parts: [{ text: 'x' }] } })
    await taskState(n0, sent.id, 'working')
    const executed = nextEvent(n2, 'task:executed', e => e.id === sent.id)
    const canceled = await n0.tasks.cancelTask(sent.id)
    assert.equal(canceled.state, 'canceled')
    assert.equal((await executed).state, 'canceled')
    assert.ok(slowAborted.includes(sent.id))
    assert.equal(n0.tasks.getTask(sent.id)?.state, 'canceled')
  })

  describe('failover', () => {
    let child: ChildProcess | undefined
    after(() => { child?.kill('SIGKILL') })

    test('the chosen provider killed (SIGKILL) mid-task -> the task fails over and completes on another provider', async () => {
      const [n0, , , n3] = nodes as [BizraNode, BizraNode, BizraNode, BizraNode]
      child = spawn(process.execPath, [SKILL_NODE, tempDir('bz-skill-'), key, bootstrap, 'flaky'], { stdio: ['ignore', 'pipe', 'inherit'] })
      const lines: Array<{ event: string, peerId?: string, taskId?: string }> = []
      const waiters: Array<() => void> = []
      let buf = ''
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString()
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          lines.push(JSON.parse(buf.slice(0, i)))
          buf = buf.slice(i + 1)
          for (const w of waiters.splice(0)) w()
        }
      })
      const line = async (event: string): Promise<{ peerId?: string, taskId?: string }> => {
        for (;;) {
          const l = lines.find(x => x.event === event)
          if (l !== undefined) return l
          await new Promise<void>(resolve => waiters.push(resolve))
        }
      }
      const childId = (await line('ready')).peerId!
      await until(nodes, () => n0.a2a.directory.providers('flaky').includes(childId) && n0.a2a.directory.providers('flaky').includes(n3.peerId), 'n0 knows both providers of flaky')
      // n0 has seen n3 fail once, so the child ranks first
      n0.a2a.directory.started(n3.peerId)
      n0.a2a.directory.finished(n3.peerId, 1, false)
      const sent = await n0.tasks.sendTask({ skill: 'flaky', message: { parts: [{ text: 'x' }] } })
      assert.equal((await line('started')).taskId, sent.id, 'the child got the task first')
      child.kill('SIGKILL')
      const done = await n0.tasks.waitTask(sent.id)
      assert.equal(done.state, 'completed', JSON.stringify(done))
      assert.equal(done.provider, n3.peerId)
      assert.equal(text(done), 'done by n3')
      assert.equal(done.attempts.length, 2)
      assert.equal(done.attempts[0]!.provider, childId)
      assert.equal(done.attempts[0]!.state, 'failed')
      assert.ok(verifyProof(done.proof).ok)
    })
  })

  describe('CLI over IPC', () => {
    let daemon: ChildNode | undefined
    const home = tempDir('bz-a2a-cli-')
    after(async () => {
      daemon?.child.kill('SIGTERM')
      await daemon?.exited
    })

    test('bizra agents, task send --wait, task status, proof verify, and bad input', async () => {
      const n4 = nodes[4]!
      daemon = await spawnNode(home, ['--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', bootstrap, '--swarm-key', key, '--api', '127.0.0.1:0'])
      let cards: Array<{ peerId: string, skills: Array<{ id: string }> }> = []
      for (let i = 0; i < 100; i++) {
        const r = await cliAsync(['agents', '--home', home, '--json'])
        assert.equal(r.code, 0, r.stderr)
        cards = JSON.parse(r.stdout)
        if (cards.some(c => c.peerId === n4.peerId)) break
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      assert.equal(cards[0]!.peerId, daemon.peerId, 'its own card first')
      assert.ok(cards.find(c => c.peerId === n4.peerId)!.skills.some(s => s.id === 'reverse'))

      const sent = await cliAsync(['task', 'send', '--home', home, '--skill', 'reverse', '--text', 'abc', '--wait', '--json'])
      assert.equal(sent.code, 0, sent.stderr)
      const t = JSON.parse(sent.stdout) as TaskRecord
      assert.equal(t.state, 'completed')
      assert.equal(text(t), 'cba')

      const human = await cliAsync(['task', 'status', t.id, '--home', home])
      assert.equal(human.code, 0, human.stderr)
      assert.match(human.stdout, new RegExp(`task ${t.id} completed on ${n4.peerId}`))
      assert.match(human.stdout, /^cba$/m)

      const proofFile = join(home, 'proof.json')
      writeFileSync(proofFile, JSON.stringify(t.proof))
      const verified = await cliAsync(['proof', 'verify', proofFile])
      assert.equal(verified.code, 0, verified.stderr + verified.stdout)

      const unknown = await cliAsync(['task', 'send', '--home', home, '--skill', 'nope', '--text', 'x', '--wait'])
      assert.equal(unknown.code, 1)
      assert.match(unknown.stdout, /rejected/)
      assert.match(unknown.stdout, /no node in the federation offers skill "nope"/)

      const noInput = await cliAsync(['task', 'send', '--home', home, '--skill', 'echo'])
      assert.equal(noInput.code, 2)
      assert.match(noInput.stderr, /give exactly one of --text or --data/)
      assert.equal(noInput.stderr.trim().split('\n').length, 1)

      const missing = await cliAsync(['task', 'status', 'no-such-task', '--home', home])
      assert.equal(missing.code, 2)
      assert.match(missing.stderr, /no task no-such-task/)
    })
  })
})
