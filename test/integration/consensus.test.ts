import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { initHome } from '../../src/node/home.ts'
import type { BizraNode } from '../../src/node/node.ts'
import { TOPICS } from '../../src/net/protocols.ts'
import { meshPeers } from '../../src/net/host.ts'
import { ENVELOPE_TYPES } from '../../src/consensus/service.ts'
import { proposalDigest, signVote, verifyCertificate } from '../../src/consensus/crypto.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import type { Certificate, Proposal } from '../../src/consensus/types.ts'
import { cliAsync, spawnNode, startTestNode, swarmKeyFile, tempDir, until, type ChildNode } from '../helpers/nodes.ts'

interface Federation { dir: string, key: string, genesis: string, homes: string[], ids: string[] }

/** Homes for n validators plus `extra` non-validators, one genesis naming the validators. */
async function federation (n: number, extra = 0, bootstrapPort?: number): Promise<Federation> {
  const dir = tempDir('bz-fed-')
  const key = swarmKeyFile(dir)
  const homes: string[] = []
  const ids: string[] = []
  for (let k = 0; k < n + extra; k++) {
    const home = join(dir, `n${k}`)
    const { identity } = await initHome(home)
    homes.push(home)
    ids.push(identity.id)
  }
  const genesis = join(dir, 'genesis.json')
  writeFileSync(genesis, JSON.stringify({
    federationId: `test-${n}`,
    validators: ids.slice(0, n),
    bootstrap: bootstrapPort === undefined ? [] : [`/ip4/127.0.0.1/tcp/${bootstrapPort}/p2p/${ids[0]}`]
  }))
  return { dir, key, genesis, homes, ids }
}

async function startAll (fed: Federation, count: number, timeoutMs = 20_000): Promise<BizraNode[]> {
  const first = await startTestNode({ swarmKey: fed.key, home: fed.homes[0], config: { genesis: fed.genesis, proposalTimeoutMs: timeoutMs } })
  const rest = await Promise.all(fed.homes.slice(1, count).map(home => startTestNode({ swarmKey: fed.key, home, bootstrap: [first.addresses()[0]!], config: { genesis: fed.genesis, proposalTimeoutMs: timeoutMs } })))
  const nodes = [first, ...rest]
  await until(nodes, () => nodes.every(x => meshPeers(x.libp2p, TOPICS.votes).length > 0 && meshPeers(x.libp2p, TOPICS.patterns).length > 0), 'gossip meshes on the pattern topics')
  return nodes
}

const committedEverywhere = (nodes: BizraNode[], digest: string) => async (): Promise<boolean> => {
  for (const x of nodes) if (await x.patternStore.getCommit(digest) === undefined) return false
  return true
}

async function eventually (check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

for (const n of [4, 7]) {
  describe(`${n} validators over real libp2p`, () => {
    let nodes: BizraNode[] = []
    after(async () => { await Promise.all(nodes.map(x => x.stop())) })

    test('an acceptable proposal commits as accept and a weak one as reject, everywhere, with verifiable certificates', async () => {
      const fed = await federation(n)
      nodes = await startAll(fed, n)
      const good = await nodes[1]!.propose({ id: 'mesh-degree', content: { D: 6 }, snr: 0.97, ihsan: 0.98 }, { wait: true })
      assert.equal(good.status, 'committed')
      assert.ok(good.status === 'committed' && good.decision === 'accept')
      const weak = await nodes[2]!.propose({ id: 'noisy', content: { D: 2 }, snr: 0.9, ihsan: 0.96 }, { wait: true })
      assert.ok(weak.status === 'committed' && weak.decision === 'reject', JSON.stringify(weak).slice(0, 200))
      for (const r of [good, weak]) {
        await eventually(committedEverywhere(nodes, r.digest), `commit of ${r.digest} on every node`)
        for (const x of nodes) {
          const c = await x.patternStore.getCommit(r.digest)
          assert.ok(verifyCertificate(c!.certificate, fed.ids).ok)
        }
      }
      // proposals and votes are stored too, not only the certificates
      await eventually(async () => (await nodes[0]!.patternStore.votes(good.digest)).length >= n - Math.floor((n - 1) / 3), 'votes stored')
      assert.deepEqual((await nodes[3]!.patternStore.proposal(good.digest))?.id, 'mesh-degree')
      const listed = await nodes[0]!.patterns.list()
      assert.deepEqual(listed.map(p => [p.id, p.decision]).sort(), [['mesh-degree', 'accept'], ['noisy', 'reject']])
    })
  })
}

describe('a validator that joins while a proposal waits for its vote (n=4)', () => {
  let nodes: BizraNode[] = []
  after(async () => { await Promise.all(nodes.map(x => x.stop())) })

  test('the proposal and the votes cast before it joined reach it (they are published again while pending), and the proposal commits', async () => {
    const fed = await federation(4)
    const timeoutMs = 15_000
    // two of four validators: q = 3, so nothing can commit until a third one hears the proposal
    nodes = await startAll(fed, 2, timeoutMs)
    const pending = nodes[1]!.propose({ id: 'needs-a-third', content: { D: 8 }, snr: 0.97, ihsan: 0.98 }, { wait: true })
    // gossipsub offers a newcomer the ids of the last 3 heartbeats' messages (IHAVE): let the
    // proposal and the first votes age past that window, as they would over a longer absence
    for (let beat = 0; beat < 4; beat++) {
      await new Promise(resolve => { nodes[0]!.libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', resolve, { once: true }) })
    }
    const third = await startTestNode({ swarmKey: fed.key, home: fed.homes[2], bootstrap: [nodes[0]!.addresses()[0]!], config: { genesis: fed.genesis, proposalTimeoutMs: timeoutMs } })
    nodes.push(third)
    const result = await pending
    assert.ok(result.status === 'committed' && result.decision === 'accept', JSON.stringify(result).slice(0, 200))
    assert.ok(verifyCertificate(result.certificate, fed.ids).ok)
    assert.ok(result.certificate.votes.some(v => v.voter === fed.ids[2]), 'the third validator\'s vote is in the certificate')
    await eventually(committedEverywhere(nodes, result.digest), 'commit on all three')
  })
})

describe('faults, restarts and late joiners (n=4)', () => {
  const children: ChildNode[] = []
  let nodes: BizraNode[] = []
  after(async () => {
    for (const c of children) c.child.kill('SIGKILL')
    await Promise.all(nodes.map(x => x.stop()))
  })

  test('kill -9 of one validator mid-vote still commits; restarted it still has its patterns; a late joiner syncs and verifies; a forged certificate is refused', async () => {
    const fed = await federation(4, 1)
    nodes = await startAll(fed, 3)
    // validator 4 runs as its own process so it can be killed for real
    const victim = await spawnNode(fed.homes[3]!, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--swarm-key', fed.key, '--genesis', fed.genesis, '--heartbeat-ms', '200', '--bootstrap', nodes[0]!.addresses()[0]!])
    children.push(victim)
    await until(nodes, () => nodes[0]!.peers().some(p => p.peerId === victim.peerId && p.state === 'ACTIVE'), 'victim joined')

    const first = await nodes[0]!.propose({ id: 'before-kill', content: { v: 1 }, snr: 0.99, ihsan: 0.99 }, { wait: true })
    assert.equal(first.status, 'committed')
    await eventually(async () => {
      const r = await cliAsync(['pattern', 'show', 'before-kill', '--home', fed.homes[3]!, '--json'])
      return r.code === 0
    }, 'victim committed the first pattern')

    const pending = nodes[1]!.propose({ id: 'during-kill', content: { v: 2 }, snr: 0.99, ihsan: 0.99 }, { wait: true })
    victim.child.kill('SIGKILL')
    await victim.exited
    children.pop()
    const second = await pending
    assert.ok(second.status === 'committed' && second.decision === 'accept', 'q = 3 of 4 commit without the killed validator')

    const back = await spawnNode(fed.homes[3]!, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--swarm-key', fed.key, '--genesis', fed.genesis, '--bootstrap', nodes[0]!.addresses()[0]!])
    children.push(back)
    const show = await cliAsync(['pattern', 'show', 'before-kill', '--home', fed.homes[3]!, '--json'])
    assert.equal(show.code, 0, show.stderr)
    assert.equal(JSON.parse(show.stdout).decision, 'accept')

    // a non-validator joining late fetches every commit over /bizra/sync/1.0.0 and verifies it
    const late = await startTestNode({ swarmKey: fed.key, home: fed.homes[4], bootstrap: [nodes[0]!.addresses()[0]!], config: { genesis: fed.genesis } })
    nodes.push(late)
    await eventually(async () => (await late.patterns.list()).length >= 2, 'late joiner synced')
    for (const p of await late.patterns.list()) assert.ok(verifyCertificate(p.certificate, fed.ids.slice(0, 4)).ok)

    // a certificate signed by outsiders is refused by sync import and by gossip
    const outsiders = await Promise.all([1, 2, 3].map(() => NodeIdentity.generate()))
    const proposal: Proposal = { id: 'forged', content: { evil: true }, snr: 1, ihsan: 1, proposer: outsiders[0]!.id, ts: new Date().toISOString(), timeoutMs: 30_000 }
    const digest = proposalDigest(proposal)
    const forged: Certificate = { proposal, decision: 'accept', votes: outsiders.map(o => signVote({ proposal: digest, proposalId: 'forged', decision: 'accept', voter: o.id }, d => o.sign(d))) }
    const imported = await late.patterns.importCertificates([forged])
    assert.deepEqual(imported, { stored: 0, refused: 1 })
    await nodes[0]!.gossip.publish(TOPICS.patterns, ENVELOPE_TYPES.certificate, forged, { ihsan: 1, snr: 1 })
    const marker = await nodes[0]!.propose({ id: 'after-forgery', content: { v: 3 }, snr: 0.99, ihsan: 0.99 }, { wait: true })
    await eventually(committedEverywhere([late], marker.digest), 'marker reached the late joiner')
    assert.equal(await late.patternStore.getCommit(digest), undefined)
    assert.equal(await late.patterns.show('forged'), undefined)
  })
})
