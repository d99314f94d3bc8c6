import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, cliAsync, tempDir } from '../helpers/nodes.ts'
import { loadIdentity } from '../../src/identity/keystore.ts'
import { proposalDigest, signVote } from '../../src/consensus/crypto.ts'
import type { Certificate, Proposal } from '../../src/consensus/types.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'

function cli (args: string[]): { code: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('bizra swarm create and pattern verify', () => {
  const dir = join(tempDir('bz-sw-'), 'fed4')

  test('swarm create writes a key, a genesis and N configured homes', () => {
    const r = cli(['swarm', 'create', '--nodes', '4', '--out', dir, '--base-port', '19100', '--api-base-port', '19200', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout)
    assert.equal(out.nodes.length, 4)
    assert.equal(statSync(join(dir, 'swarm.key')).mode & 0o777, 0o600)
    const genesis = JSON.parse(readFileSync(join(dir, 'genesis.json'), 'utf8'))
    assert.deepEqual(genesis.validators, out.nodes.map((n: { peerId: string }) => n.peerId))
    assert.deepEqual(genesis.bootstrap, [`/ip4/127.0.0.1/tcp/19100/p2p/${out.nodes[0].peerId}`])
    for (let k = 1; k <= 4; k++) {
      const config = JSON.parse(readFileSync(join(dir, `node${k}`, 'config.json'), 'utf8'))
      assert.deepEqual(config, { listen: [`/ip4/127.0.0.1/tcp/${19099 + k}`], api: `127.0.0.1:${19199 + k}`, swarmKey: '../swarm.key', genesis: '../genesis.json' })
    }
    const again = cli(['swarm', 'create', '--nodes', '4', '--out', dir])
    assert.equal(again.code, 2)
    assert.match(again.stderr, /not empty/)
  })

  test('a certificate signed by q of the validators verifies offline; tampered or forged ones do not', async () => {
    const genesisFile = join(dir, 'genesis.json')
    const ids = await Promise.all([1, 2, 3, 4].map(k => loadIdentity(join(dir, `node${k}`, 'identity.key'))))
    const proposal: Proposal = { id: 'mesh-degree-6', content: { rule: 'D=6' }, snr: 0.97, ihsan: 0.98, proposer: ids[0]!.id, ts: new Date().toISOString(), timeoutMs: 30_000 }
    const digest = proposalDigest(proposal)
    const votes = ids.slice(0, 3).map(id => signVote({ proposal: digest, proposalId: proposal.id, decision: 'accept', voter: id.id }, d => id.sign(d)))
    const cert: Certificate = { proposal, decision: 'accept', votes }
    const file = join(tempDir('bz-cert-'), 'cert.json')
    writeFileSync(file, JSON.stringify(cert))
    const ok = cli(['pattern', 'verify', file, '--genesis', genesisFile, '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.deepEqual({ ...JSON.parse(ok.stdout), digest: undefined }, { ok: true, id: 'mesh-degree-6', decision: 'accept', digest: undefined, votes: 3, validators: 4 })

    const check = (c: unknown, reason: RegExp): void => {
      writeFileSync(file, JSON.stringify(c))
      const r = cli(['pattern', 'verify', file, '--genesis', genesisFile, '--json'])
      assert.equal(r.code, 1, r.stdout)
      assert.match(JSON.parse(r.stdout).reason, reason)
    }
    check({ ...cert, votes: votes.slice(0, 2) }, /quorum is 3 of 4/)
    check({ ...cert, proposal: { ...proposal, snr: 0.99 } }, /another proposal/)
    check({ ...cert, decision: 'reject' }, /disagrees/)
    check({ ...cert, votes: [votes[0], votes[0], votes[1]] }, /two votes by/)
    const stranger = await NodeIdentity.generate()
    check({ ...cert, votes: [...votes.slice(0, 2), signVote({ proposal: digest, proposalId: proposal.id, decision: 'accept', voter: stranger.id }, d => stranger.sign(d))] }, /not a validator/)
    check({ ...cert, votes: [...votes.slice(0, 2), { ...votes[2]!, voter: ids[3]!.id }] }, /bad signature/)

    const noGenesis = cli(['pattern', 'verify', file])
    assert.equal(noGenesis.code, 2)
    assert.match(noGenesis.stderr, /--genesis/)
  })
})

describe('bizra swarm up', () => {
  test('starts every home of a created federation, which then commits a pattern; Ctrl-C stops them all', async () => {
    const dir = join(tempDir('bz-up-'), 'fed')
    // swarm homes use fixed ports (the genesis names node1's): pick a random free-looking range
    const base = 20_000 + Math.floor(Math.random() * 30_000)
    const created = cli(['swarm', 'create', '--nodes', '4', '--out', dir, '--base-port', String(base), '--api-base-port', String(base + 100)])
    assert.equal(created.code, 0, created.stderr)
    const up = spawn(process.execPath, [BIN, 'swarm', 'up', dir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>(resolve => up.on('exit', code => resolve(code)))
    try {
      const started = new Set<string>()
      await new Promise<void>((resolve, reject) => {
        let out = ''
        up.stdout!.on('data', (d: Buffer) => {
          out += d.toString()
          for (const line of out.split('\n')) {
            if (line.includes('"event":"started"')) started.add(JSON.parse(line).node)
          }
          if (started.size === 4) resolve()
        })
        void exited.then(code => reject(new Error(`swarm up exited early (${code})`)))
      })
      const r = await cliAsync(['pattern', 'propose', '--home', join(dir, 'node2'), '--id', 'swarm-up', '--content', '{"ok":true}', '--snr', '0.97', '--ihsan', '0.99', '--wait', '--json'])
      assert.equal(r.code, 0, r.stderr)
      const outcome = JSON.parse(r.stdout)
      assert.deepEqual([outcome.status, outcome.decision], ['committed', 'accept'])
      const cert = join(dir, 'cert.json')
      writeFileSync(cert, JSON.stringify(outcome.certificate))
      assert.equal(cli(['pattern', 'verify', cert, '--genesis', join(dir, 'genesis.json')]).code, 0)
    } finally {
      up.kill('SIGINT')
    }
    assert.equal(await exited, 0)
  })
})
