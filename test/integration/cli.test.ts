import { describe, test, before } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnNode } from '../helpers/nodes.ts'

const BIN = fileURLToPath(new URL('../../bin/bizra.mjs', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

function bizra (args: string[], opts: { input?: string, env?: Record<string, string | undefined> } = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env, BIZRA_PASSPHRASE: undefined, BIZRA_HOME: undefined, BIZRA_DEBUG: undefined, ...opts.env }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  const r = spawnSync(process.execPath, [BIN, ...args], { input: opts.input ?? '', encoding: 'utf8', env: env as NodeJS.ProcessEnv, timeout: 30_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** A user-facing error: exit 2, exactly one line on stderr, no stack trace. */
function assertOneLineError (r: Run, mentions: RegExp): void {
  assert.equal(r.code, 2, `expected exit 2, got ${r.code}; stderr: ${r.stderr}`)
  const lines = r.stderr.trimEnd().split('\n')
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${r.stderr}`)
  assert.match(lines[0]!, /^bizra: /)
  assert.doesNotMatch(r.stderr, /\n\s+at /)
  assert.match(r.stderr, mentions)
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'bizra-cli-'))

describe('bizra init', () => {
  test('creates identity, swarm key and API token with private modes; a second run changes nothing', () => {
    const home = join(tmp(), 'home')
    const first = bizra(['init', '--home', home, '--json'])
    assert.equal(first.code, 0, first.stderr)
    const out = JSON.parse(first.stdout)
    assert.deepEqual(out.created, ['identity.key', 'swarm.key', 'api.token'])
    assert.match(out.peerId, /^12D3KooW/)
    assert.equal(statSync(home).mode & 0o777, 0o700)
    const before: Record<string, string> = {}
    for (const f of ['identity.key', 'swarm.key', 'api.token']) {
      assert.equal(statSync(join(home, f)).mode & 0o777, 0o600, f)
      before[f] = readFileSync(join(home, f), 'utf8')
    }
    assert.match(before['swarm.key']!, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)

    const again = bizra(['init', '--home', home])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /already initialised; nothing changed/)
    assert.match(again.stdout, new RegExp(out.peerId))
    for (const f of Object.keys(before)) assert.equal(readFileSync(join(home, f), 'utf8'), before[f], `${f} changed`)
  })

  test('BIZRA_HOME is the default home', () => {
    const home = join(tmp(), 'envhome')
    const r = bizra(['init', '--json'], { env: { BIZRA_HOME: home } })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).home, home)
    assert.ok(existsSync(join(home, 'identity.key')))
  })

  test('start creates the home, prints PeerId and addresses, and stops cleanly on SIGTERM', async () => {
    const home = join(tmp(), 'h')
    const node = await spawnNode(home, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    const show = JSON.parse(bizra(['identity', 'show', '--home', home, '--json']).stdout)
    assert.equal(node.peerId, show.peerId)
    assert.match(node.addresses[0]!, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${show.peerId}$`))
    node.child.kill('SIGTERM')
    assert.equal(await node.exited, 0, node.stderr())
  })
})

describe('bizra identity', () => {
  let home: string
  let peerId: string
  before(() => {
    home = join(tmp(), 'home')
    peerId = JSON.parse(bizra(['init', '--home', home, '--json']).stdout).peerId
  })

  test('show, sign and verify', () => {
    const show = JSON.parse(bizra(['identity', 'show', '--home', home, '--json']).stdout)
    assert.equal(show.peerId, peerId)
    assert.equal(Buffer.from(show.publicKey, 'base64url').length, 32)

    const sig = bizra(['identity', 'sign', '--home', home, '--message', 'salaam'])
    assert.equal(sig.code, 0, sig.stderr)
    const signature = sig.stdout.trim()
    const ok = bizra(['identity', 'verify', '--peer', peerId, '--sig', signature, '--message', 'salaam', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(JSON.parse(ok.stdout).ok, true)
    const bad = bizra(['identity', 'verify', '--peer', peerId, '--sig', signature, '--message', 'salaam!', '--json'])
    assert.equal(bad.code, 1)
    assert.equal(JSON.parse(bad.stdout).ok, false)
    // signing bytes from stdin gives the same signature as --message
    const viaStdin = bizra(['identity', 'sign', '--home', home, '--file', '-'], { input: 'salaam' })
    assert.equal(viaStdin.stdout.trim(), signature)
  })

  test('export then import into another home keeps the PeerId; import never silently overwrites', () => {
    const dir = tmp()
    const file = join(dir, 'backup.key')
    const exp = bizra(['identity', 'export', '--home', home, '--out', file])
    assert.equal(exp.code, 0, exp.stderr)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assertOneLineError(bizra(['identity', 'export', '--home', home, '--out', file]), /already exists/)

    const other = join(dir, 'other')
    bizra(['init', '--home', other])
    const otherId = JSON.parse(bizra(['identity', 'show', '--home', other, '--json']).stdout).peerId
    const otherKey = readFileSync(join(other, 'identity.key'), 'utf8')
    assertOneLineError(bizra(['identity', 'import', file, '--home', other]), /--force/)
    assert.equal(readFileSync(join(other, 'identity.key'), 'utf8'), otherKey)

    const forced = bizra(['identity', 'import', file, '--home', other, '--force', '--json'])
    assert.equal(forced.code, 0, forced.stderr)
    const { backup } = JSON.parse(forced.stdout)
    assert.equal(readFileSync(backup, 'utf8'), otherKey)
    assert.equal(JSON.parse(bizra(['identity', 'show', '--home', other, '--json']).stdout).peerId, peerId)
    assert.notEqual(otherId, peerId)
  })

  test('an encrypted identity needs its passphrase; wrong or missing ones are clear errors that change nothing', () => {
    const enc = join(tmp(), 'enc')
    const r = bizra(['init', '--home', enc, '--json'], { env: { BIZRA_PASSPHRASE: 'correct horse' } })
    assert.equal(r.code, 0, r.stderr)
    const keyFile = join(enc, 'identity.key')
    const bytes = readFileSync(keyFile, 'utf8')
    assert.equal(JSON.parse(bytes).encrypted, true)
    assert.doesNotMatch(bytes, /"seed"/)

    assertOneLineError(bizra(['identity', 'show', '--home', enc]), new RegExp(`${keyFile}.*BIZRA_PASSPHRASE`))
    assertOneLineError(bizra(['identity', 'show', '--home', enc], { env: { BIZRA_PASSPHRASE: 'wrong' } }), new RegExp(`${keyFile}.*wrong passphrase`))
    assertOneLineError(bizra(['init', '--home', enc], { env: { BIZRA_PASSPHRASE: 'wrong' } }), /wrong passphrase/)
    assert.equal(readFileSync(keyFile, 'utf8'), bytes)
    const ok = bizra(['identity', 'show', '--home', enc, '--json'], { env: { BIZRA_PASSPHRASE: 'correct horse' } })
    assert.equal(JSON.parse(ok.stdout).peerId, JSON.parse(r.stdout).peerId)
  })

  test('a corrupt key file is a one-line error naming the file, and it is left as it was', () => {
    const h = join(tmp(), 'corrupt')
    bizra(['init', '--home', h])
    const keyFile = join(h, 'identity.key')
    const garbage = readFileSync(keyFile, 'utf8').slice(0, 40)
    writeFileSync(keyFile, garbage)
    assertOneLineError(bizra(['identity', 'show', '--home', h]), new RegExp(`${keyFile}.*not a valid BIZRA identity`))
    assertOneLineError(bizra(['init', '--home', h]), new RegExp(keyFile))
    assertOneLineError(bizra(['envelope', 'create', '--home', h, '--payload', '{}']), new RegExp(keyFile))
    assert.equal(readFileSync(keyFile, 'utf8'), garbage)
  })

  test('commands that need an identity say how to get one', () => {
    assertOneLineError(bizra(['identity', 'show', '--home', join(tmp(), 'none')]), /bizra init/)
  })
})

describe('bizra swarm-key', () => {
  test('generate writes the IPFS format with mode 0600 and refuses to overwrite', () => {
    const file = join(tmp(), 'swarm.key')
    const r = bizra(['swarm-key', 'generate', '--out', file])
    assert.equal(r.code, 0, r.stderr)
    const text = readFileSync(file, 'utf8')
    assert.match(text, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assertOneLineError(bizra(['swarm-key', 'generate', '--out', file]), /already exists/)
    assert.equal(readFileSync(file, 'utf8'), text)
    const stdout = bizra(['swarm-key', 'generate'])
    assert.match(stdout.stdout, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    assert.notEqual(stdout.stdout, text)
  })
})

describe('bizra envelope', () => {
  let home: string
  before(() => {
    home = join(tmp(), 'home')
    bizra(['init', '--home', home])
  })

  test('create then verify from a file and from stdin, with no home', () => {
    const c = bizra(['envelope', 'create', '--home', home, '--payload', '{"hello":"world"}', '--ttl', '60', '--ihsan', '0.97', '--snr', '0.9'])
    assert.equal(c.code, 0, c.stderr)
    const env = JSON.parse(c.stdout)
    assert.deepEqual(Object.keys(env).sort(), ['agent', 'ihsan', 'nonce', 'payload', 'sender', 'sig', 'snr', 'ts', 'ttl', 'type', 'v'])
    assert.equal(env.ttl, 60)
    assert.equal(env.ihsan, 0.97)
    const file = join(tmp(), 'env.json')
    writeFileSync(file, c.stdout)
    const noHome = join(tmp(), 'never-created')
    const v = bizra(['envelope', 'verify', file, '--home', noHome, '--json'])
    assert.equal(v.code, 0, v.stderr)
    assert.deepEqual(JSON.parse(v.stdout), { ok: true })
    assert.equal(existsSync(noHome), false, 'verify must not need or create a home')
    const s = bizra(['envelope', 'verify', '-', '--json'], { input: c.stdout })
    assert.equal(s.code, 0, s.stderr)
  })

  test('a tampered payload is rejected with R002 and exit 1', () => {
    const env = JSON.parse(bizra(['envelope', 'create', '--home', home, '--payload', '{"amount":1}']).stdout)
    env.payload.amount = 1000
    const v = bizra(['envelope', 'verify', '-', '--json'], { input: JSON.stringify(env) })
    assert.equal(v.code, 1)
    const out = JSON.parse(v.stdout)
    assert.equal(out.ok, false)
    assert.equal(out.code, 'R002')
    assert.equal(typeof out.reason, 'string')
  })

  test('low declared Ihsan is R003; a malformed envelope is R005', () => {
    const low = bizra(['envelope', 'create', '--home', home, '--payload', '1', '--ihsan', '0.5'])
    assert.equal(low.code, 0, low.stderr)
    assert.equal(JSON.parse(bizra(['envelope', 'verify', '-', '--json'], { input: low.stdout }).stdout).code, 'R003')
    const mal = bizra(['envelope', 'verify', '-', '--json'], { input: '{"v":2}' })
    assert.equal(mal.code, 1)
    assert.equal(JSON.parse(mal.stdout).code, 'R005')
  })

  test('bad input is one line on stderr and exit 2', () => {
    assertOneLineError(bizra(['envelope', 'create', '--home', home, '--payload', '{bad']), /--payload is not valid JSON/)
    assertOneLineError(bizra(['envelope', 'create', '--home', home]), /--payload is required/)
    assertOneLineError(bizra(['envelope', 'create', '--home', home, '--payload', '{}', '--ttl', 'soon']), /--ttl must be an integer/)
    assertOneLineError(bizra(['envelope', 'create', '--home', home, '--payload', '{}', '--ttl', '3601']), /--ttl/)
    assertOneLineError(bizra(['envelope', 'create', '--home', home, '--payload', '{}', '--ihsan', '1.5']), /--ihsan/)
    assertOneLineError(bizra(['envelope', 'create', '--home', home, '--payload', '{}', '--type', 'Bad Type']), /type must match/)
    assertOneLineError(bizra(['envelope', 'verify', '/no/such/file.json']), /\/no\/such\/file\.json: envelope not found/)
    assertOneLineError(bizra(['envelope', 'verify', '-'], { input: 'not json at all' }), /stdin is not valid JSON/)
    assertOneLineError(bizra(['envelope', 'verify']), /give one FILE/)
    assertOneLineError(bizra(['envelope', 'create', '--home', home, '--payload', '{}', '--bogus']), /Unknown option '--bogus'/)
    assertOneLineError(bizra(['frobnicate']), /unknown command "frobnicate"/)
  })
})

describe('bizra gates check', () => {
  test('a dangerous Bash command is blocked at FATE with exit 1; a harmless one passes', () => {
    const blocked = bizra(['gates', 'check', '--tool', 'Bash', '--input', '{"command":"rm -rf /"}', '--json'])
    assert.equal(blocked.code, 1)
    const b = JSON.parse(blocked.stdout)
    assert.equal(b.passed, false)
    assert.equal(b.gate, 'FATE')
    assert.equal(b.code, 'F004')
    assert.equal(b.scores.fate.threshold, 0.98)
    const human = bizra(['gates', 'check', '--tool', 'Bash', '--input', '{"command":"rm -rf /"}'])
    assert.match(human.stdout, /BLOCKED Bash at FATE gate: F004/)

    const ok = bizra(['gates', 'check', '--tool', 'Bash', '--input', '{"command":"ls -la"}', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.deepEqual({ passed: JSON.parse(ok.stdout).passed, code: JSON.parse(ok.stdout).code }, { passed: true, code: null })
  })

  test('the chain reports the first failing gate', () => {
    const snr = JSON.parse(bizra(['gates', 'check', '--tool', 'Read', '--input', '{}', '--snr', '0.2', '--ihsan', '0.1', '--json']).stdout)
    assert.deepEqual([snr.gate, snr.code], ['SNR', 'R004'])
    const ihsan = JSON.parse(bizra(['gates', 'check', '--tool', 'Read', '--input', '{}', '--ihsan', '0.9', '--json']).stdout)
    assert.deepEqual([ihsan.gate, ihsan.code], ['IHSAN', 'R003'])
  })

  test('bad input is exit 2', () => {
    assertOneLineError(bizra(['gates', 'check', '--tool', 'Bash']), /--input is required/)
    assertOneLineError(bizra(['gates', 'check', '--tool', 'Bash', '--input', '[1,']), /--input is not valid JSON/)
    assertOneLineError(bizra(['gates', 'check', '--input', '{}']), /--tool is required/)
  })
})

test('no stray temporary files are left in a home', () => {
  const home = join(tmp(), 'h')
  bizra(['init', '--home', home])
  assert.deepEqual(readdirSync(home).sort(), ['api.token', 'identity.key', 'swarm.key'])
})
