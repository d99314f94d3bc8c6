import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js'
import { canonicalize } from '../../src/pci/canonical.ts'
import { canStart, canTransition, DagError, hashNode, nodeHash, payloadHash, STATES, type DagNode, type HashedNode, type SessionState } from '../../src/state/dag.ts'
import { SessionDag, type AppendEntry } from '../../src/state/store.ts'
import { MAX_PROOF_NODES, verifyProof, type Proof } from '../../src/state/proof.ts'
import { mulberry32 } from '../helpers/random.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const H = (c: string): string => c.repeat(64)
const LIFECYCLE: SessionState[] = ['init', 'active', 'computing', 'validated', 'committed']
const newDag = (): SessionDag => new SessionDag(new MemoryLevel<string, string>())
const task = (session: string, ts = 1000): AppendEntry[] => LIFECYCLE.map((state, i) => ({ session, state, payload: { session, step: i }, ts: ts + i }))
const clone = <T>(v: T): T => structuredClone(v)

async function refused (p: Promise<unknown>, reason: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof DagError && reason.test(err.message))
}

function assertInvalid (proof: unknown, reason: RegExp, expected = {}): void {
  const r = verifyProof(proof, expected)
  assert.equal(r.ok, false, `expected ${JSON.stringify(proof)?.slice(0, 200)} to be refused`)
  if (!r.ok) assert.match(r.reason, reason)
}

describe('node hashes', () => {
  const node: DagNode = { session: 's', state: 'active', ts: 1_700_000_000_000, parents: [H('a'), H('b')], payloadHash: H('c') }

  test('BLAKE3 over the domain prefix and the canonical (parents, payloadHash, state, ts), cross-checked with @noble/hashes', () => {
    const body = canonicalize({ state: node.state, ts: node.ts, parents: node.parents, payloadHash: node.payloadHash })
    assert.equal(nodeHash(node), hex(nobleBlake3(new TextEncoder().encode('bizra-dag-v1:' + body))))
    // a fixed vector: proofs written today must verify on every later version
    assert.equal(nodeHash(node), '41532ff3431dc99f6eb3201730aad49a66d79b674aaf053786633226cff1dc6c')
    const payload = { b: [1, 'x'], a: { z: null, y: true } }
    assert.equal(payloadHash(payload), hex(nobleBlake3(new TextEncoder().encode(canonicalize(payload)))))
    assert.equal(payloadHash(payload), payloadHash({ a: { y: true, z: null }, b: [1, 'x'] }), 'key order does not matter')
  })

  test('equals BLAKE3 of canonicalize() for any node, well-formed or not (the direct serialisation is only a shortcut)', () => {
    const rand = mulberry32(99)
    const hexOf = (): string => Array.from({ length: 64 }, () => '0123456789abcdef'[Math.floor(rand() * 16)]).join('')
    const viaCanonical = (n: Pick<DagNode, 'state' | 'ts' | 'parents' | 'payloadHash'>): string =>
      hex(nobleBlake3(new TextEncoder().encode('bizra-dag-v1:' + canonicalize({ parents: n.parents, payloadHash: n.payloadHash, state: n.state, ts: n.ts }))))
    for (let i = 0; i < 200; i++) {
      const n = { state: STATES[Math.floor(rand() * STATES.length)]!, ts: Math.floor(rand() * 2 ** (rand() < 0.1 ? 53 : 41)), parents: Array.from({ length: Math.floor(rand() * 4) }, hexOf), payloadHash: hexOf() }
      assert.equal(nodeHash(n), viaCanonical(n))
    }
    const odd = [
      { state: 'init', ts: 1.5, parents: [], payloadHash: H('a') },
      { state: 'init', ts: 1, parents: ['A'.repeat(64)], payloadHash: H('a') },
      { state: 'init', ts: 1, parents: [], payloadHash: 'x"y' },
      { state: 'nope', ts: 1, parents: [H('b')], payloadHash: H('a') },
      { state: 'init', ts: -1, parents: [], payloadHash: H('a') }
    ] as unknown as DagNode[]
    for (const n of odd) assert.equal(nodeHash(n), viaCanonical(n))
  })

  test('changes with every hashed field, not with the session label', () => {
    const base = nodeHash(node)
    const variants: DagNode[] = [
      { ...node, state: 'computing' },
      { ...node, ts: node.ts + 1 },
      { ...node, parents: [H('a')] },
      { ...node, parents: [H('b'), H('a')] },
      { ...node, parents: [] },
      { ...node, payloadHash: H('d') }
    ]
    const hashes = new Set([base, ...variants.map(nodeHash)])
    assert.equal(hashes.size, variants.length + 1)
    const relabelled: DagNode = { ...node, session: 'other' }
    assert.equal(nodeHash(relabelled), base)
    assert.equal(hashNode(node).hash, base)
  })
})

describe('session transitions', () => {
  test('exactly the lifecycle, the computing -> active retry, and nothing out of committed', () => {
    const allowed = new Set(['init>active', 'active>computing', 'computing>validated', 'computing>active', 'validated>committed'])
    for (const from of STATES) {
      for (const to of STATES) assert.equal(canTransition(from, to), allowed.has(`${from}>${to}`), `${from} -> ${to}`)
    }
  })

  test('a session starts with init, or branches from one node whose state it follows', () => {
    assert.ok(canStart('init', []))
    assert.ok(canStart('init', ['committed', 'active']))
    assert.ok(!canStart('active', []))
    assert.ok(canStart('active', ['init']))
    assert.ok(canStart('active', ['computing']))
    assert.ok(!canStart('active', ['init', 'computing']))
    assert.ok(!canStart('validated', ['init']))
    assert.ok(!canStart('active', ['committed']))
  })
})

describe('SessionDag', () => {
  test('a task lifecycle in one batch: nodes chain, head is the last, proof verifies, check is clean', async () => {
    const dag = newDag()
    const nodes = await dag.appendMany(task('t1'))
    assert.deepEqual(nodes.map(n => n.state), LIFECYCLE)
    assert.deepEqual(nodes[0]!.parents, [])
    for (let i = 1; i < nodes.length; i++) assert.deepEqual(nodes[i]!.parents, [nodes[i - 1]!.hash])
    assert.equal(nodes[0]!.payloadHash, payloadHash({ session: 't1', step: 0 }))
    assert.deepEqual(await dag.head('t1'), nodes[4])
    assert.deepEqual(await dag.get(nodes[2]!.hash), nodes[2])
    assert.equal(await dag.get(H('0')), undefined)
    assert.equal(await dag.get('not a hash'), undefined)
    assert.deepEqual(await dag.sessions(), ['t1'])
    const proof = await dag.proof(nodes[0]!.hash)
    assert.deepEqual(proof, { v: 1, nodes, head: nodes[4]!.hash })
    assert.deepEqual(verifyProof(proof, { head: nodes[4]!.hash, payloadHash: nodes[0]!.payloadHash }), { ok: true, head: nodes[4]!.hash })
    assert.deepEqual(await dag.check(), { ok: true, nodes: 5, sessions: 1, problems: [] })
  })

  test('append one node at a time: default parents are the head, default ts never precedes a parent', async () => {
    const dag = newDag()
    const future = Date.now() + 3_600_000
    const a = await dag.append('s', 'init', { payload: 'x' }, { ts: future })
    const b = await dag.append('s', 'active', { payloadHash: H('e') })
    assert.deepEqual(b.parents, [a.hash])
    assert.equal(b.ts, future)
    assert.equal(b.payloadHash, H('e'))
    const c = await dag.append('s', 'computing', { payload: null })
    assert.ok(c.ts >= future)
    const retry = await dag.append('s', 'active', { payload: 'retry' })
    assert.deepEqual(retry.parents, [c.hash])
  })

  test('refuses illegal transitions and malformed appends, writing nothing', async () => {
    const dag = newDag()
    await refused(dag.append('s', 'active', { payload: 1 }), /must start with init/)
    const init = await dag.append('s', 'init', { payload: 1 }, { ts: 10 })
    await refused(dag.append('s', 'computing', { payload: 2 }), /illegal transition init -> computing/)
    await refused(dag.append('s', 'init', { payload: 2 }), /illegal transition init -> init/)
    await refused(dag.append('s', 'active', { payload: 2 }, { parents: [] }), /must include the head/)
    await refused(dag.append('s', 'active', { payload: 2 }, { parents: [init.hash, H('f')] }), /unknown parent/)
    await refused(dag.append('s', 'active', { payload: 2 }, { parents: [init.hash, init.hash] }), /duplicates/)
    await refused(dag.append('s', 'active', { payload: 2 }, { parents: ['A'.repeat(64)] }), /unknown parent/)
    await refused(dag.append('s', 'active', { payload: 2 }, { ts: 9 }), /precedes a parent/)
    await refused(dag.append('s', 'active', { payload: 2 }, { ts: 1.5 }), /non-negative integer/)
    await refused(dag.append('s', 'active', { payloadHash: 'abc' }), /payloadHash/)
    await refused(dag.append('s', 'active', { payload: { n: Number.NaN } }), /payload is not JSON/)
    await refused(dag.append('s', 'active', { payload: undefined }), /payload is not JSON/)
    await refused(dag.append('s', 'active', { payload: 2, payloadHash: H('a') } as never), /not both/)
    await refused(dag.append('', 'init', { payload: 2 }), /session must be/)
    await refused(dag.append('x'.repeat(513), 'init', { payload: 2 }), /session must be/)
    await refused(dag.append('\ud800', 'init', { payload: 2 }), /session must be/)
    await refused(dag.append('s', 'bogus' as SessionState, { payload: 2 }), /unknown state/)
    assert.deepEqual(await dag.head('s'), init)
    assert.deepEqual(await dag.check(), { ok: true, nodes: 1, sessions: 1, problems: [] })

    const [, , , , committed] = await dag.appendMany(task('t', 20))
    for (const state of STATES) await refused(dag.append('t', state, { payload: 9 }), /illegal transition committed/)
    assert.deepEqual(await dag.head('t'), committed)
  })

  test('a batch with one bad entry writes none of it', async () => {
    const dag = newDag()
    const entries = [...task('a'), ...task('b'), { session: 'a', state: 'active' as const, payload: 'late' }]
    await refused(dag.appendMany(entries), /^entry 10: illegal transition committed -> active/)
    assert.deepEqual(await dag.sessions(), [])
    assert.equal((await dag.check()).nodes, 0)
    assert.deepEqual(await dag.appendMany([]), [])
  })

  test('two sessions producing the same node is refused (the session is not hashed)', async () => {
    const dag = newDag()
    const a = await dag.append('a', 'init', { payload: 'same' }, { ts: 5 })
    await refused(dag.append('b', 'init', { payload: 'same' }, { ts: 5 }), new RegExp(`${a.hash} already exists \\(in session "a"\\)`))
    assert.equal(await dag.head('b'), undefined)
  })

  test('branch: a new session from any node of another; merge: a node taking other sessions\' heads', async () => {
    const dag = newDag()
    const a = await dag.appendMany(task('a', 100).slice(0, 3)) // init, active, computing
    const b0 = await dag.append('b', 'init', { payload: 'b0' }, { parents: [a[1]!.hash] })
    const b1 = await dag.append('b', 'active', { payload: 'b1' })
    // a branch may continue its branch point's lifecycle instead of starting over
    const c0 = await dag.append('c', 'active', { payload: 'c0' }, { parents: [a[2]!.hash] })
    await refused(dag.append('d', 'validated', { payload: 'd0' }, { parents: [a[1]!.hash] }), /must start with init/)
    await refused(dag.append('d', 'active', { payload: 'd0' }, { parents: [a[1]!.hash, b0.hash] }), /must start with init/)

    await refused(dag.append('a', 'validated', { payload: 'm' }, { parents: [a[2]!.hash, b0.hash] }), /merge parent .* is not the head of session "b"/)
    await refused(dag.append('a', 'validated', { payload: 'm' }, { parents: [a[2]!.hash, a[1]!.hash] }), /not the head of session "a"/)
    const merge = await dag.append('a', 'validated', { payload: 'm' }, { parents: [a[2]!.hash, b1.hash, c0.hash] })
    const done = await dag.append('a', 'committed', { payload: 'done' })

    // the branch's first node proves up to the merging session's head, through the merge
    const proof = await dag.proof(b0.hash, done.hash)
    assert.deepEqual(proof.nodes.map(n => n.hash), [b0.hash, b1.hash, merge.hash, done.hash])
    assert.equal(verifyProof(proof, { head: done.hash, payloadHash: payloadHash('b0') }).ok, true)
    // and by default up to its own session's head
    assert.deepEqual((await dag.proof(b0.hash)).nodes.map(n => n.hash), [b0.hash, b1.hash])
    // the shortest path from a's root to its head skips the branches
    assert.deepEqual((await dag.proof(a[0]!.hash)).nodes.map(n => n.state), LIFECYCLE)
    await refused(dag.proof(c0.hash, b1.hash), /is not an ancestor/)
    await refused(dag.proof(H('9')), /unknown node/)
    await refused(dag.proof(a[0]!.hash, H('9')), /unknown node/)
    assert.deepEqual(await dag.sessions(), ['a', 'b', 'c'])
    assert.deepEqual(await dag.check(), { ok: true, nodes: 8, sessions: 3, problems: [] })
  })

  test('concurrent appends to one session are serialised: two cannot extend the same head', async () => {
    const dag = newDag()
    await dag.append('s', 'init', { payload: 0 })
    const results = await Promise.allSettled([
      dag.append('s', 'active', { payload: 1 }),
      dag.append('s', 'active', { payload: 2 })
    ])
    assert.deepEqual(results.map(r => r.status).sort(), ['fulfilled', 'rejected'])
    // in call order, a whole lifecycle issued at once lands as one chain
    const rest = await Promise.all((['computing', 'validated', 'committed'] as const).map((state, i) => dag.append('s', state, { payload: 10 + i })))
    assert.deepEqual(rest.map(n => n.state), ['computing', 'validated', 'committed'])
    assert.equal(rest[1]!.parents[0], rest[0]!.hash)
    assert.equal(rest[2]!.parents[0], rest[1]!.hash)
    assert.deepEqual(await dag.check(), { ok: true, nodes: 5, sessions: 1, problems: [] })
  })

  test('different sessions proceed in parallel: a stalled write to one does not hold up another', { timeout: 5_000 }, async () => {
    const mem = new MemoryLevel<string, string>()
    let stall: (() => void) | undefined
    const stalled = new Promise<void>(resolve => { stall = resolve })
    let writing: (() => void) | undefined
    const slowWriting = new Promise<void>(resolve => { writing = resolve })
    const db = new Proxy(mem, {
      get (target, prop, receiver) {
        if (prop !== 'batch') {
          const v = Reflect.get(target, prop, receiver)
          return typeof v === 'function' ? v.bind(target) : v
        }
        return async (ops: Array<{ key: string }>, options: object) => {
          if (ops.some(o => o.key === 'dag!h!slow')) {
            writing!()
            await stalled
          }
          return target.batch(ops as never, options)
        }
      }
    })
    const dag = new SessionDag(db)
    const slow = dag.append('slow', 'init', { payload: 1 })
    // appends that reach the database in the same turn share a batch (group commit), and its
    // fate; one that comes later is written in a batch of its own, even while that one hangs
    await slowWriting
    const fast = await dag.appendMany(task('fast'))
    assert.equal(fast.length, 5)
    const slowSecond = dag.append('slow', 'active', { payload: 2 })
    stall!()
    assert.deepEqual((await slowSecond).parents, [(await slow).hash])
  })

  test('group commit: appends in the same turn share one getMany and one batch; each gets exactly the nodes written', async () => {
    const mem = new MemoryLevel<string, string>()
    const calls = { get: 0, getMany: 0, batch: 0 }
    const db = new Proxy(mem, {
      get (target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver)
        if (typeof v !== 'function') return v
        if (prop !== 'get' && prop !== 'getMany' && prop !== 'batch') return v.bind(target)
        return (...args: unknown[]) => {
          calls[prop]++
          return v.apply(target, args)
        }
      }
    })
    const dag = new SessionDag(db)
    // a task log's shape: a new session starting at a payload hash, then four more nodes
    const logged = (n: number): AppendEntry[] => LIFECYCLE.map((state, i) => i === 0
      ? { session: `task/${n}`, state, payloadHash: payloadHash({ task: n }) }
      : { session: `task/${n}`, state, payload: { n, i } })
    const results = await Promise.all(Array.from({ length: 8 }, async (_, n) => dag.appendMany(logged(n))))
    // one getMany for every head and first node at once, one batch for all 40 nodes and 8 heads
    assert.deepEqual(calls, { get: 0, getMany: 1, batch: 1 })
    for (const [n, nodes] of results.entries()) {
      assert.deepEqual(nodes.map(x => x.state), LIFECYCLE)
      assert.deepEqual(await dag.head(`task/${n}`), nodes[4])
      for (const node of nodes) assert.deepEqual(await dag.get(node.hash), node)
      const proof = await dag.proof(nodes[0]!.hash)
      assert.deepEqual(proof, { v: 1, nodes, head: nodes[4]!.hash })
    }
    assert.deepEqual(await dag.check(), { ok: true, nodes: 40, sessions: 8, problems: [] })
    // a refused append in the same turn writes nothing and does not disturb the others
    const mixed = await Promise.allSettled([dag.appendMany(logged(8)), dag.appendMany(logged(3)), dag.appendMany(logged(9))])
    assert.deepEqual(mixed.map(r => r.status), ['fulfilled', 'rejected', 'fulfilled'])
    assert.deepEqual(await dag.check(), { ok: true, nodes: 50, sessions: 10, problems: [] })
    // two sessions creating the same node in the same turn: one is refused, not overwritten
    const twins = await Promise.allSettled([dag.append('x', 'init', { payload: 'same' }, { ts: 7 }), dag.append('y', 'init', { payload: 'same' }, { ts: 7 })])
    assert.deepEqual(twins.map(r => r.status).sort(), ['fulfilled', 'rejected'])
    assert.deepEqual(await dag.check(), { ok: true, nodes: 51, sessions: 11, problems: [] })
  })

  test('check() reports tampered nodes, missing parents, stale or missing heads', async () => {
    const corrupt = async (edit: (db: MemoryLevel<string, string>, nodes: HashedNode[]) => Promise<void>, problem: RegExp): Promise<void> => {
      const db = new MemoryLevel<string, string>()
      const dag = new SessionDag(db)
      const nodes = await dag.appendMany(task('t'))
      await edit(db, nodes)
      const report = await dag.check()
      assert.equal(report.ok, false)
      assert.ok(report.problems.some(p => problem.test(p)), `expected ${problem} in ${JSON.stringify(report.problems)}`)
    }
    const stored = (n: HashedNode): DagNode => ({ session: n.session, state: n.state, ts: n.ts, parents: n.parents, payloadHash: n.payloadHash })
    await corrupt(async (db, n) => db.put(`dag!n!${n[2]!.hash}`, JSON.stringify({ ...stored(n[2]!), ts: 1 })), /hash does not match/)
    await corrupt(async (db, n) => db.put(`dag!n!${n[2]!.hash}`, '{'), /not JSON/)
    await corrupt(async (db, n) => db.put(`dag!n!${n[2]!.hash}`, JSON.stringify({ ...stored(n[2]!), state: 'x' })), /state must be/)
    await corrupt(async (db, n) => db.del(`dag!n!${n[1]!.hash}`), /parent .* is missing/)
    await corrupt(async (db, n) => db.put('dag!h!t', n[3]!.hash), /chain to its head holds 4 of its 5 nodes/)
    await corrupt(async (db) => db.put('dag!h!t', H('7')), /head .* is missing/)
    await corrupt(async (db) => db.del('dag!h!t'), /has nodes but no head/)
    await corrupt(async (db, n) => db.put('dag!h!u', n[4]!.hash), /belongs to session "t"/)
    // a forged node whose hash matches but breaks the lifecycle
    await corrupt(async (db, n) => {
      const forged = hashNode({ session: 't', state: 'init', ts: 2000, parents: [n[4]!.hash], payloadHash: H('1') })
      await db.put(`dag!n!${forged.hash}`, JSON.stringify(stored(forged)))
      await db.put('dag!h!t', forged.hash)
    }, /illegal transition committed -> init/)
  })

  test('leaves pattern keys of the consensus store alone', async () => {
    const db = new MemoryLevel<string, string>()
    await db.put('pattern!x!y', '1')
    await db.put('commit!y', '{}')
    const dag = new SessionDag(db)
    await dag.appendMany(task('t'))
    assert.equal(await db.get('pattern!x!y'), '1')
    assert.deepEqual(await dag.check(), { ok: true, nodes: 5, sessions: 1, problems: [] })
    const keys: string[] = []
    for await (const k of db.keys()) keys.push(k)
    assert.equal(keys.filter(k => !k.startsWith('dag!')).length, 2)
  })
})

describe('verifyProof', async () => {
  const dag = newDag()
  const a = await dag.appendMany(task('a', 100).slice(0, 3))
  const b0 = await dag.append('b', 'init', { payload: 'b0' }, { parents: [a[1]!.hash] })
  await dag.append('a', 'validated', { payload: 'm' }, { parents: [a[2]!.hash, b0.hash] })
  await dag.append('a', 'committed', { payload: 'done' })
  const good = await dag.proof(a[0]!.hash)
  const head = good.head
  assert.equal(good.nodes.length, 5)

  test('a proof verifies against its head and first payload', () => {
    assert.deepEqual(verifyProof(good), { ok: true, head })
    assert.deepEqual(verifyProof(good, { head, payloadHash: a[0]!.payloadHash }), { ok: true, head })
    assert.deepEqual(verifyProof(JSON.parse(JSON.stringify(good))), { ok: true, head })
  })

  test('every kind of tampering fails with a reason', () => {
    const edit = (f: (p: Proof) => void): Proof => { const p = clone(good); f(p); return p }
    assertInvalid(edit(p => { p.nodes[2]!.payloadHash = H('0') }), /node 2: hash does not match/)
    assertInvalid(edit(p => { p.nodes[3]!.ts += 1 }), /node 3: hash does not match/)
    assertInvalid(edit(p => { p.nodes[1]!.state = 'computing' }), /node 1: hash does not match/)
    assertInvalid(edit(p => { p.nodes[3]!.parents.reverse() }), /node 3: hash does not match/)
    assertInvalid(edit(p => { p.nodes[2]!.hash = H('0') }), /node 2: hash does not match/)
    assertInvalid(edit(p => { p.nodes.splice(2, 1) }), /node 2 does not list node 1 as a parent/)
    // without its first node a proof still proves the rest; the expected payload catches it
    assert.equal(verifyProof(edit(p => { p.nodes.shift() })).ok, true)
    assertInvalid(edit(p => { p.nodes.shift() }), /first node's payloadHash/, { payloadHash: a[0]!.payloadHash })
    assertInvalid(edit(p => { p.nodes.pop() }), /head does not match the last node/)
    assertInvalid(edit(p => { [p.nodes[1], p.nodes[2]] = [p.nodes[2]!, p.nodes[1]!] }), /node 1 does not list node 0/)
    assertInvalid(edit(p => { p.nodes.reverse() }), /does not list/)
    assertInvalid(edit(p => { p.head = H('0') }), /head does not match the last node/)
    assertInvalid(good, /head is .*, expected/, { head: a[0]!.hash })
    assertInvalid(good, /first node's payloadHash/, { payloadHash: H('0') })
  })

  test('a re-hashed forgery is consistent on its own; only the expected head catches it', () => {
    const forged = clone(good)
    const last = forged.nodes[4]!
    const rehashed = hashNode({ ...last, payloadHash: payloadHash('forged result') })
    forged.nodes[4] = rehashed
    forged.head = rehashed.hash
    assert.equal(verifyProof(forged).ok, true)
    assertInvalid(forged, /head is .*, expected/, { head })
    // re-hashing a middle node breaks the link from the next one
    const middle = clone(good)
    middle.nodes[2] = hashNode({ ...middle.nodes[2]!, payloadHash: H('0') })
    assertInvalid(middle, /node 3 does not list node 2/)
  })

  test('illegal lifecycles are refused even when every hash is right', () => {
    const chain = (specs: Array<{ session?: string, state: SessionState, ts?: number, extraParents?: string[] }>): Proof => {
      const nodes: HashedNode[] = []
      for (const [i, s] of specs.entries()) {
        const parents = [...(i === 0 ? [] : [nodes[i - 1]!.hash]), ...(s.extraParents ?? [])]
        nodes.push(hashNode({ session: s.session ?? 's', state: s.state, ts: s.ts ?? 10 + i, parents, payloadHash: payloadHash(i) }))
      }
      return { v: 1, nodes, head: nodes.at(-1)!.hash }
    }
    assert.equal(verifyProof(chain([{ state: 'init' }, { state: 'active' }, { state: 'computing' }, { state: 'active' }])).ok, true)
    assertInvalid(chain([{ state: 'init' }, { state: 'computing' }]), /node 1: illegal transition init -> computing in session "s"/)
    assertInvalid(chain([{ state: 'validated' }, { state: 'committed' }, { state: 'init' }]), /illegal transition committed -> init/)
    assertInvalid(chain([{ state: 'init' }, { state: 'active', ts: 5 }]), /node 1: ts 5 precedes/)
    // across sessions: a branch may start over; re-entering a session must follow its last state
    assert.equal(verifyProof(chain([{ state: 'active' }, { session: 't', state: 'init' }, { state: 'computing' }])).ok, true)
    const reentry = chain([{ state: 'committed' }, { session: 't', state: 'init' }])
    const after = hashNode({ session: 's', state: 'active', ts: 20, parents: [reentry.nodes[1]!.hash], payloadHash: H('1') })
    assertInvalid({ v: 1, nodes: [...reentry.nodes, after], head: after.hash }, /node 2: illegal transition committed -> active/)
  })

  test('malformed input is refused with a reason, never thrown', () => {
    const n0 = good.nodes[0]!
    const cases: Array<[unknown, RegExp]> = [
      [null, /not an object/],
      ['proof', /not an object/],
      [[good], /not an object/],
      [{ ...good, extra: 1 }, /exactly the fields/],
      [{ v: 1, nodes: good.nodes }, /exactly the fields/],
      [{ ...good, v: 2 }, /unsupported proof version 2/],
      [{ ...good, nodes: {} }, /nodes is not an array/],
      [{ ...good, nodes: [] }, /nodes is empty/],
      [{ ...good, head: head.toUpperCase() }, /head must be/],
      [{ ...good, head: 42 }, /head must be/],
      [{ ...good, nodes: [null] }, /node 0: not an object/],
      [{ ...good, nodes: [{ ...n0, extra: 1 }] }, /node 0: has fields/],
      [{ ...good, nodes: [{ ...n0, hash: undefined }] }, /node 0: has fields|hash must be/],
      [{ ...good, nodes: [{ ...n0, hash: n0.hash.slice(1) }] }, /hash must be/],
      [{ ...good, nodes: [{ ...n0, session: '' }] }, /session must be/],
      [{ ...good, nodes: [{ ...n0, session: 7 }] }, /session must be/],
      [{ ...good, nodes: [{ ...n0, state: 'done' }] }, /state must be one of/],
      [{ ...good, nodes: [{ ...n0, ts: -1 }] }, /ts must be/],
      [{ ...good, nodes: [{ ...n0, ts: '100' }] }, /ts must be/],
      [{ ...good, nodes: [{ ...n0, ts: 2 ** 60 }] }, /ts must be/],
      [{ ...good, nodes: [{ ...n0, parents: 'x' }] }, /parents must be an array/],
      [{ ...good, nodes: [{ ...n0, parents: ['zz'] }] }, /parents must be lowercase hex/],
      [{ ...good, nodes: [{ ...n0, parents: [H('a'), H('a')] }] }, /duplicates/],
      [{ ...good, nodes: [{ ...n0, parents: Array.from({ length: 257 }, (_, i) => i.toString(16).padStart(64, '0')) }] }, /at most 256/],
      [{ ...good, nodes: [{ ...n0, payloadHash: null }] }, /payloadHash must be/],
      [{ ...good, nodes: new Array(MAX_PROOF_NODES + 1).fill(n0) }, /too many nodes \(10001 > 10000\)/]
    ]
    for (const [input, reason] of cases) assert.doesNotThrow(() => assertInvalid(input, reason), `${JSON.stringify(input)?.slice(0, 120)}`)
  })
})

describe('random DAGs (seeded)', () => {
  test('every proof from every node to every head it reaches verifies; unreachable ones are refused; check() is clean', async () => {
    const SEQUENCES = 300
    let proofs = 0
    for (let seed = 1; seed <= SEQUENCES; seed++) {
      const rand = mulberry32(seed)
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
      const dag = newDag()
      const ancestors = new Map<string, Set<string>>() // node -> itself and everything it descends from
      const heads = new Map<string, HashedNode>()
      const all: HashedNode[] = []
      let clock = 1_000
      let sessionCount = 0
      const record = (nodes: HashedNode[]): void => {
        for (const n of nodes) {
          const set = new Set([n.hash])
          for (const p of n.parents) for (const x of ancestors.get(p)!) set.add(x)
          ancestors.set(n.hash, set)
          heads.set(n.session, n)
          all.push(n)
        }
      }
      const ts = (): number => { clock += Math.floor(rand() * 3); return clock }
      const open = (): HashedNode[] => [...heads.values()].filter(h => h.state !== 'committed')

      const ops = 10 + Math.floor(rand() * 30)
      for (let op = 0; op < ops; op++) {
        const r = rand()
        const payload = { seed, op }
        if (heads.size === 0 || r < 0.15) {
          record([await dag.append(`s${sessionCount++}`, 'init', { payload }, { ts: ts() })])
        } else if (r < 0.25) {
          // a whole task in one batch, sometimes branching off an existing node
          const parent = rand() < 0.5 ? pick(all).hash : undefined
          const session = `s${sessionCount++}`
          const entries: AppendEntry[] = LIFECYCLE.map((state, i) => ({ session, state, payload: { ...payload, i }, ts: ts(), parents: i === 0 && parent !== undefined ? [parent] : undefined }))
          record(await dag.appendMany(entries))
        } else if (r < 0.4) {
          const parent = pick(all)
          const successors = STATES.filter(s => canTransition(parent.state, s))
          const state = successors.length > 0 && rand() < 0.3 ? pick(successors) : 'init'
          record([await dag.append(`s${sessionCount++}`, state, { payload }, { parents: [parent.hash], ts: ts() })])
        } else if (r < 0.9 && open().length > 0) {
          const head = pick(open())
          const state = pick(STATES.filter(s => canTransition(head.state, s)))
          const others = [...heads.values()].filter(h => h.session !== head.session)
          const parents = others.length > 0 && rand() < 0.25 ? [head.hash, pick(others).hash] : undefined
          record([await dag.append(head.session, state, { payload }, { parents, ts: ts() })])
        } else {
          const head = pick([...heads.values()])
          const illegal = STATES.filter(s => !canTransition(head.state, s))
          await refused(dag.append(head.session, pick(illegal), { payload }, { ts: ts() }), /illegal transition/)
        }
      }

      const report = await dag.check()
      assert.deepEqual(report, { ok: true, nodes: all.length, sessions: heads.size, problems: [] }, `seed ${seed}`)
      for (const [session, head] of heads) assert.deepEqual(await dag.head(session), head, `seed ${seed}`)
      for (const node of all) {
        for (const head of heads.values()) {
          if (ancestors.get(head.hash)!.has(node.hash)) {
            const proof = await dag.proof(node.hash, head.hash)
            assert.equal(proof.nodes[0]!.hash, node.hash)
            assert.deepEqual(verifyProof(proof, { head: head.hash, payloadHash: node.payloadHash }), { ok: true, head: head.hash }, `seed ${seed}: ${node.hash} -> ${head.hash}`)
            proofs++
          } else {
            await refused(dag.proof(node.hash, head.hash), /not an ancestor/)
          }
        }
        assert.equal(verifyProof(await dag.proof(node.hash)).ok, true, `seed ${seed}: ${node.hash} to its own head`)
      }
    }
    assert.ok(proofs > SEQUENCES * 20, `only ${proofs} proofs checked`)
  })
})
