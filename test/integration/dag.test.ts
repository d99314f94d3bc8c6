import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { SessionDag, type AppendEntry } from '../../src/state/store.ts'
import { payloadHash, type HashedNode, type SessionState } from '../../src/state/dag.ts'
import { verifyProof, type Proof } from '../../src/state/proof.ts'
import { cliAsync, tempDir, type CliResult } from '../helpers/nodes.ts'
import { mulberry32 } from '../helpers/random.ts'

const WRITER = fileURLToPath(new URL('../helpers/dag-writer.ts', import.meta.url))
const LIFECYCLE: SessionState[] = ['init', 'active', 'computing', 'validated', 'committed']

function assertOneLineError (r: CliResult, mentions: string): void {
  assert.equal(r.code, 2, `expected exit 2, got ${r.code}; stderr: ${r.stderr}`)
  assert.equal(r.stdout, '')
  const lines = r.stderr.trimEnd().split('\n')
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${r.stderr}`)
  assert.match(lines[0]!, /^bizra: /)
  assert.ok(lines[0]!.includes(mentions), `expected ${JSON.stringify(mentions)} in ${lines[0]}`)
}

describe('bizra proof verify', () => {
  test('valid, wrapped, tampered, garbage and missing files', { timeout: 30_000 }, async () => {
    const dag = new SessionDag(new MemoryLevel<string, string>())
    const nodes = await dag.appendMany(LIFECYCLE.map((state, i): AppendEntry => ({ session: 'task-1', state, payload: { step: i } })))
    const proof = await dag.proof(nodes[0]!.hash)
    const head = nodes[4]!.hash
    const dir = tempDir('bz-proof-')
    const file = (name: string, content: unknown): string => {
      const path = join(dir, name)
      writeFileSync(path, typeof content === 'string' || content instanceof Uint8Array ? content : JSON.stringify(content))
      return path
    }
    const tampered: Proof = structuredClone(proof)
    tampered.nodes[2]!.payloadHash = payloadHash('something else')
    const garbage = Uint8Array.from(Array.from({ length: 256 }, mulberry32(3)), x => Math.floor(x * 256))

    const [valid, envelope, wrongHead, bad, badJson, notProof, junk, missing, badOption] = await Promise.all([
      cliAsync(['proof', 'verify', file('proof.json', proof)]),
      cliAsync(['proof', 'verify', file('envelope.json', { v: 1, type: 'a2a.result', payload: { taskId: 't', proof } }), '--json', '--head', head, '--payload-hash', payloadHash({ step: 0 })]),
      cliAsync(['proof', 'verify', file('result.json', { proof }), '--head', nodes[3]!.hash]),
      cliAsync(['proof', 'verify', file('tampered.json', tampered)]),
      cliAsync(['proof', 'verify', join(dir, 'tampered.json'), '--json']),
      cliAsync(['proof', 'verify', file('array.json', [1, 2])]),
      cliAsync(['proof', 'verify', file('garbage.bin', garbage)]),
      cliAsync(['proof', 'verify', join(dir, 'nope.json')]),
      cliAsync(['proof', 'verify', join(dir, 'proof.json'), '--head', 'HEAD'])
    ])

    assert.equal(valid.code, 0, valid.stderr)
    assert.equal(valid.stdout, `valid: head ${head} (5 nodes)\n`)
    assert.equal(envelope.code, 0, envelope.stderr)
    assert.deepEqual(JSON.parse(envelope.stdout), { valid: true, head, nodes: 5 })

    assert.equal(wrongHead.code, 1)
    assert.equal(wrongHead.stdout, `invalid: head is ${head}, expected ${nodes[3]!.hash}\n`)
    assert.equal(bad.code, 1)
    assert.equal(bad.stdout, 'invalid: node 2: hash does not match its content\n')
    assert.equal(badJson.code, 1)
    assert.deepEqual(JSON.parse(badJson.stdout), { valid: false, reason: 'node 2: hash does not match its content' })
    assert.equal(notProof.code, 1)
    assert.equal(notProof.stdout, 'invalid: proof is not an object\n')

    assertOneLineError(junk, join(dir, 'garbage.bin'))
    assertOneLineError(missing, join(dir, 'nope.json'))
    assertOneLineError(badOption, '--head')
  })
})

interface WriterRun { reported: number, signal: NodeJS.Signals | null }

/**
 * Runs the writer until it reports `target` sessions written, then kills it with SIGKILL
 * `delayMs` later: the writer goes on writing meanwhile, so the kill lands at an arbitrary
 * point of a batch (killing on the line itself would always hit it between batches).
 */
async function writeUntilKilled (dir: string, seed: number, target: number, delayMs: number): Promise<WriterRun> {
  const child = spawn(process.execPath, [WRITER, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let buffered = ''
  let reported = 0
  let armed = false
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString()
    const lines = buffered.split('\n')
    buffered = lines.pop()!
    for (const line of lines) reported = Number(line)
    if (reported >= target && !armed) {
      armed = true
      setTimeout(() => child.kill('SIGKILL'), delayMs)
    }
  })
  const signal = await new Promise<NodeJS.Signals | null>(resolve => child.on('close', (_code, sig) => resolve(sig)))
  assert.equal(signal, 'SIGKILL', `writer exited on its own before being killed: ${stderr}`)
  return { reported, signal }
}

/** A session's nodes from its first to its head, following parents within the session. */
async function chainOf (dag: SessionDag, session: string): Promise<HashedNode[]> {
  const chain: HashedNode[] = []
  for (let n = await dag.head(session); n !== undefined;) {
    chain.unshift(n)
    let prev: HashedNode | undefined
    for (const p of n.parents) {
      const parent = await dag.get(p)
      if (parent?.session === session) prev = parent
    }
    n = prev
  }
  return chain
}

describe('crash consistency', () => {
  test('kill -9 at seeded random moments leaves a consistent DAG of complete task chains', { timeout: 30_000 }, async () => {
    const dir = join(tempDir('bz-dag-'), 'db')
    const rand = mulberry32(2024)
    let sessions = 0
    for (let round = 0; round < 8; round++) {
      const target = sessions + 1 + Math.floor(rand() * 30)
      const { reported } = await writeUntilKilled(dir, round + 1, target, rand() * 15)

      const db = new Level<string, string>(dir)
      try {
        const dag = new SessionDag(db)
        const report = await dag.check()
        assert.deepEqual(report.problems, [], `round ${round}`)
        const names = await dag.sessions()
        // every batch the writer reported was synced before it said so
        assert.ok(names.length >= reported, `round ${round}: ${names.length} sessions on disk, ${reported} reported`)
        for (const session of names) {
          const chain = await chainOf(dag, session)
          assert.match(chain.map(n => n.state).join(' '), /^init active computing( active computing)* validated committed$/, `round ${round}: ${session}`)
          const proof = await dag.proof(chain[0]!.hash)
          assert.deepEqual(verifyProof(proof, { head: chain.at(-1)!.hash }), { ok: true, head: chain.at(-1)!.hash })
        }
        assert.equal(report.sessions, names.length)
        sessions = names.length
      } finally {
        await db.close()
      }
    }
    assert.ok(sessions >= 8, `only ${sessions} sessions written over all rounds`)
  })
})
