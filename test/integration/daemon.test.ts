import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cliAsync, spawnNode, startTestNode, swarmKeyFile, tempDir, until, type ChildNode } from '../helpers/nodes.ts'
import type { BizraNode } from '../../src/node/node.ts'

const cli = cliAsync

describe('the daemon and its IPC control', () => {
  const key = swarmKeyFile()
  const children: ChildNode[] = []
  let observer: BizraNode | undefined

  after(async () => {
    for (const c of children) c.child.kill('SIGKILL')
    await observer?.stop()
  })

  test('status, peers and dial over the IPC socket; SIGTERM stops cleanly', async () => {
    const home = join(tempDir('bz-d-'), 'a')
    const node = await spawnNode(home, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--swarm-key', key, '--heartbeat-ms', '200'])
    children.push(node)
    assert.match(node.peerId, /^12D3KooW/)

    const status = await cli(['status', '--home', home, '--json'])
    assert.equal(status.code, 0, status.stderr)
    const s = JSON.parse(status.stdout)
    assert.equal(s.peerId, node.peerId)
    assert.deepEqual(s.addresses, node.addresses)
    assert.equal(s.api, null)
    assert.equal(s.state, 'ACTIVE') // no bootstrap: a lone node is active at once
    assert.equal(s.peers, 0)

    observer = await startTestNode({ swarmKey: key })
    const dial = await cli(['dial', observer.addresses()[0]!, '--home', home, '--json'])
    assert.equal(dial.code, 0, dial.stderr)
    assert.equal(JSON.parse(dial.stdout).peerId, observer.peerId)
    await until([observer], () => observer!.peers().find(p => p.peerId === node.peerId)?.state === 'ACTIVE', 'observer sees the daemon ACTIVE')
    const peers = JSON.parse((await cli(['peers', '--home', home, '--json'])).stdout)
    assert.ok(Array.isArray(peers))
    const seen = peers.find((p: { peerId: string }) => p.peerId === observer!.peerId)
    assert.ok(seen, 'daemon lists the observer')
    assert.ok(['JOINING', 'ACTIVE'].includes(seen.state))
    assert.ok(Array.isArray(seen.addresses))

    const badDial = await cli(['dial', 'not-a-multiaddr', '--home', home])
    assert.equal(badDial.code, 2)

    node.child.kill('SIGTERM')
    assert.equal(await node.exited, 0, node.stderr())
    children.pop()
    const none = await cli(['status', '--home', home])
    assert.equal(none.code, 2)
    assert.equal(none.stderr.trim().split('\n').length, 1)
    assert.match(none.stderr, /no node is running/)

    // the database was closed cleanly: the same home starts again with the same PeerId
    const again = await spawnNode(home, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--swarm-key', key])
    children.push(again)
    assert.equal(again.peerId, node.peerId)
    again.child.kill('SIGTERM')
    assert.equal(await again.exited, 0)
    children.pop()
  })

  test('a node killed with SIGKILL is SUSPECT, then DEAD, in the others\' view; restarted it keeps its PeerId', async () => {
    observer ??= await startTestNode({ swarmKey: key })
    const home = join(tempDir('bz-d-'), 'victim')
    const victim = await spawnNode(home, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--swarm-key', key, '--heartbeat-ms', '200', '--bootstrap', observer.addresses()[0]!])
    children.push(victim)
    const stateOf = (): string | undefined => observer!.peers().find(p => p.peerId === victim.peerId)?.state
    await until([observer], () => stateOf() === 'ACTIVE', 'victim ACTIVE')

    const seen: string[] = []
    const off = observer.onEvent(e => { if ('peerId' in e && e.peerId === victim.peerId) seen.push(e.type) })
    victim.child.kill('SIGKILL')
    await victim.exited
    children.pop()
    await until([observer], () => stateOf() === 'DEAD' || stateOf() === undefined, 'victim DEAD', 30_000)
    off()
    assert.ok(seen.indexOf('peer:suspect') >= 0, `saw ${seen.join(', ')}`)
    assert.ok(seen.indexOf('peer:dead') > seen.indexOf('peer:suspect'), `suspect before dead: ${seen.join(', ')}`)

    const back = await spawnNode(home, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--swarm-key', key, '--heartbeat-ms', '200', '--bootstrap', observer.addresses()[0]!])
    children.push(back)
    assert.equal(back.peerId, victim.peerId)
    await until([observer], () => stateOf() === 'ACTIVE', 'restarted victim ACTIVE again')
  })

  test('a malformed swarm key stops the node before it starts, naming the file', async () => {
    const dir = tempDir('bz-d-')
    const bad = join(dir, 'bad.key')
    writeFileSync(bad, '/key/swarm/psk/1.0.0/\n/base16/\nnothex\n')
    const r = await cli(['start', '--home', join(dir, 'h'), '--swarm-key', bad, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, new RegExp(`${bad}: malformed swarm key`))
    assert.equal(r.stderr.trim().split('\n').length, 1)
  })
})
