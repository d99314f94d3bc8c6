import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseGenesis, loadGenesis, soloGenesis } from '../../src/node/genesis.ts'
import { parseConfig, resolveConfig, parseHostPort, DEFAULT_CONFIG } from '../../src/node/config.ts'
import { NodeIdentity } from '../../src/identity/identity.ts'
import { FileError } from '../../src/util/fs.ts'

const ids = await Promise.all([1, 2, 3].map(i => NodeIdentity.fromSeed(new Uint8Array(32).fill(i))))

describe('genesis', () => {
  const good = {
    federationId: 'test-fed',
    validators: ids.map(i => i.id),
    bootstrap: [`/ip4/127.0.0.1/tcp/9000/p2p/${ids[0]!.id}`],
    constitution: { ihsan: 0.9 }
  }

  test('a valid genesis parses with constitution defaults filled in', () => {
    const g = parseGenesis(good, 'g.json')
    assert.equal(g.federationId, 'test-fed')
    assert.deepEqual(g.validators, ids.map(i => i.id))
    assert.equal(g.constitution.ihsan, 0.9)
    assert.equal(g.constitution.snr, 0.85)
  })

  test('each bad field is a FileError naming the file and the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [[], /must be a JSON object/],
      [{ ...good, federationId: '' }, /federationId/],
      [{ ...good, validators: [] }, /validators/],
      [{ ...good, validators: ['nope'] }, /not a PeerId/],
      [{ ...good, validators: [ids[0]!.id, ids[0]!.id] }, /listed twice/],
      [{ ...good, bootstrap: ['/ip4/1.2.3.4/tcp/1'] }, /\/p2p\//],
      [{ ...good, bootstrap: ['garbage'] }, /not a multiaddr/],
      [{ ...good, constitution: { ihsan: 2 } }, /constitution\.ihsan/]
    ]
    for (const [input, re] of cases) {
      assert.throws(() => parseGenesis(input, '/x/genesis.json'), (err: Error) => {
        assert.ok(err instanceof FileError)
        assert.match(err.message, /^\/x\/genesis\.json: invalid genesis: /)
        assert.match(err.message, re)
        return true
      })
    }
  })

  test('a file that is not JSON names the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bz-g-'))
    writeFileSync(join(dir, 'genesis.json'), '{oops')
    assert.throws(() => loadGenesis(join(dir, 'genesis.json')), /genesis\.json: invalid genesis: not JSON/)
    assert.throws(() => loadGenesis(join(dir, 'missing.json')), /missing\.json: genesis not found/)
  })

  test('no genesis means a federation of one', () => {
    const g = soloGenesis(ids[0]!.id)
    assert.deepEqual(g.validators, [ids[0]!.id])
    assert.deepEqual(g.bootstrap, [])
  })
})

describe('node config', () => {
  test('defaults match DESIGN.md', () => {
    assert.deepEqual(DEFAULT_CONFIG.listen, ['/ip4/0.0.0.0/tcp/9000'])
    assert.equal(DEFAULT_CONFIG.api, '127.0.0.1:3001')
    assert.equal(DEFAULT_CONFIG.heartbeatMs, 10_000)
  })

  test('config.json in the home is read, paths resolve against the home, flags win', () => {
    const home = mkdtempSync(join(tmpdir(), 'bz-c-'))
    writeFileSync(join(home, 'config.json'), JSON.stringify({ listen: ['/ip4/127.0.0.1/tcp/9100'], api: '127.0.0.1:3100', genesis: 'genesis.json', heartbeatMs: 500 }))
    const c = resolveConfig(home, { api: null, listen: undefined })
    assert.deepEqual(c.listen, ['/ip4/127.0.0.1/tcp/9100'])
    assert.equal(c.api, null)
    assert.equal(c.genesis, join(home, 'genesis.json'))
    assert.equal(c.heartbeatMs, 500)
  })

  test('bad config is a FileError naming the file', () => {
    assert.throws(() => parseConfig({ lisen: [] }, 'c.json', '/'), /c\.json: unknown config key "lisen"/)
    assert.throws(() => parseConfig({ api: 'nohost' }, 'c.json', '/'), /api must be/)
    assert.throws(() => parseConfig({ heartbeatMs: 5 }, 'c.json', '/'), /heartbeatMs/)
    assert.throws(() => parseConfig({ logLevel: 'loud' }, 'c.json', '/'), /logLevel/)
    const home = mkdtempSync(join(tmpdir(), 'bz-c-'))
    writeFileSync(join(home, 'config.json'), 'nope')
    assert.throws(() => resolveConfig(home, {}), /config\.json: config is not valid JSON/)
  })

  test('host:port parsing', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:3001'), { host: '127.0.0.1', port: 3001 })
    assert.deepEqual(parseHostPort('[::1]:0'), { host: '::1', port: 0 })
    assert.equal(parseHostPort('localhost'), undefined)
    assert.equal(parseHostPort('a:70000'), undefined)
  })
})
