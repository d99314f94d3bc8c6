import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeIdentity } from '../../src/identity/identity.ts'
import {
  KeystoreError, loadIdentity, saveIdentity, replaceIdentity, decodeKeystore, encodeKeystore, type KeystoreFile
} from '../../src/identity/keystore.ts'
import { FileError } from '../../src/util/fs.ts'

const PASS = 'correct horse battery staple'

let dir: string
let n = 0
const fresh = (): string => join(dir, `identity-${n++}.key`)

const seedOf = (byte: number): Uint8Array => new Uint8Array(32).fill(byte)

before(() => { dir = mkdtempSync(join(tmpdir(), 'bizra-keystore-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

/** Asserts the load fails with a KeystoreError naming the file, and leaves the file as it was. */
async function assertLoadFails (path: string, passphrase: string | undefined, match?: RegExp): Promise<KeystoreError> {
  const before = readFileSync(path)
  let caught: unknown
  try {
    await loadIdentity(path, passphrase)
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof KeystoreError, `expected KeystoreError, got ${String(caught)}`)
  assert.equal(caught.name, 'KeystoreError')
  assert.ok(caught.message.includes(path), `message should name the file: ${caught.message}`)
  assert.equal(caught.path, path)
  if (match !== undefined) assert.match(caught.message, match)
  assert.deepEqual(readFileSync(path), before, 'a failed load must not change the file')
  return caught
}

function editJson (path: string, edit: (f: KeystoreFile) => void): void {
  editJsonLoose(path, f => edit(f as unknown as KeystoreFile))
}

function editJsonLoose (path: string, edit: (f: Record<string, unknown>) => void): void {
  const f = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
  edit(f)
  writeFileSync(path, JSON.stringify(f, null, 2) + '\n', { mode: 0o600 })
}

/** Flips one base64url character of `s` at `i` to a different one. */
function flipB64 (s: string, i = 0): string {
  const c = s[i]!
  return s.slice(0, i) + (c === 'A' ? 'B' : 'A') + s.slice(i + 1)
}

describe('keystore', () => {
  test('save/load round trip in the clear keeps the PeerId and key; file mode 0600', async () => {
    const id = await NodeIdentity.fromSeed(seedOf(1))
    const path = fresh()
    saveIdentity(path, id)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    const f = JSON.parse(readFileSync(path, 'utf8')) as KeystoreFile
    assert.equal(f.encrypted, false)
    assert.equal(f.peerId, id.id)
    const loaded = await loadIdentity(path)
    assert.equal(loaded.id, id.id)
    assert.ok(loaded.peerId.equals(id.peerId))
    assert.deepEqual(loaded.publicKey, id.publicKey)
    assert.deepEqual(loaded.exportSeed(), id.exportSeed())
    // a passphrase given for a clear file is simply unused
    assert.equal((await loadIdentity(path, 'unused')).id, id.id)
  })

  test('encrypted round trip keeps the PeerId; the seed is not in the file', async () => {
    const id = await NodeIdentity.fromSeed(seedOf(2))
    const path = fresh()
    saveIdentity(path, id, PASS)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    const text = readFileSync(path, 'utf8')
    const f = JSON.parse(text) as KeystoreFile
    assert.equal(f.encrypted, true)
    assert.equal(f.seed, undefined)
    assert.ok(!text.includes(Buffer.from(id.exportSeed()).toString('base64url')))
    const loaded = await loadIdentity(path, PASS)
    assert.equal(loaded.id, id.id)
    assert.deepEqual(loaded.exportSeed(), id.exportSeed())
  })

  describe('failed loads name the file and leave it untouched', () => {
    let clearPath: string
    let encPath: string
    before(async () => {
      const id = await NodeIdentity.fromSeed(seedOf(3))
      clearPath = fresh()
      saveIdentity(clearPath, id)
      encPath = fresh()
      saveIdentity(encPath, id, PASS)
    })

    test('encrypted without a passphrase says to set BIZRA_PASSPHRASE', async () => {
      const err = await assertLoadFails(encPath, undefined, /BIZRA_PASSPHRASE/)
      assert.match(err.message, /encrypted/)
      await assertLoadFails(encPath, '', /BIZRA_PASSPHRASE/)
    })

    test('wrong passphrase', async () => {
      await assertLoadFails(encPath, 'wrong', /passphrase/)
    })

    test('corrupt JSON, truncated file, empty file, non-object JSON', async () => {
      const text = readFileSync(clearPath, 'utf8')
      for (const [i, content] of [
        '{ not json',
        text.slice(0, Math.floor(text.length / 2)),
        text.slice(0, text.length - 3),
        '',
        'null',
        '[]',
        '"identity"',
        '42',
        '\u0000\u0001binary'
      ].entries()) {
        const p = fresh()
        writeFileSync(p, content, { mode: 0o600 })
        const err = await assertLoadFails(p, undefined, /not a valid BIZRA identity file/)
        assert.ok(!(err instanceof SyntaxError), `case ${i}`)
      }
    })

    test('truncated encrypted file', async () => {
      const text = readFileSync(encPath, 'utf8')
      const p = fresh()
      writeFileSync(p, text.slice(0, Math.floor(text.length * 0.7)), { mode: 0o600 })
      await assertLoadFails(p, PASS, /not a valid BIZRA identity file/)
    })

    test('altered peerId (clear and encrypted)', async () => {
      const other = await NodeIdentity.fromSeed(seedOf(4))
      const p1 = fresh()
      writeFileSync(p1, readFileSync(clearPath))
      editJson(p1, f => { f.peerId = other.id })
      await assertLoadFails(p1, undefined, /does not match/)

      const p2 = fresh()
      writeFileSync(p2, readFileSync(encPath))
      editJson(p2, f => { f.peerId = other.id })
      await assertLoadFails(p2, PASS, /altered/)
    })

    test('altered ciphertext, tag, iv, salt or seed', async () => {
      const edits: Array<(f: KeystoreFile) => void> = [
        f => { f.ciphertext = flipB64(f.ciphertext!) },
        f => { f.ciphertext = flipB64(f.ciphertext!, 20) },
        f => { f.ciphertext = f.ciphertext!.slice(0, -4) },
        f => { f.cipher!.tag = flipB64(f.cipher!.tag) },
        f => { f.cipher!.iv = flipB64(f.cipher!.iv) },
        f => { f.kdf!.salt = flipB64(f.kdf!.salt) }
      ]
      for (const edit of edits) {
        const p = fresh()
        writeFileSync(p, readFileSync(encPath))
        editJson(p, edit)
        await assertLoadFails(p, PASS, /altered|not a valid/)
      }
      const p = fresh()
      writeFileSync(p, readFileSync(clearPath))
      editJson(p, f => { f.seed = flipB64(f.seed!) })
      await assertLoadFails(p, undefined, /does not match/)
    })

    test('bad headers: version, type, encrypted flag, seed, kdf', async () => {
      const clearEdits: Array<(f: Record<string, unknown>) => void> = [
        f => { f.bizra = 'other' },
        f => { f.version = 2 },
        f => { f.type = 'RSA' },
        f => { delete f.peerId },
        f => { delete f.encrypted },
        f => { f.encrypted = 'no' },
        f => { f.seed = 'short' },
        f => { f.seed = 42 },
        f => { f.seed = '!!not base64url!!' }
      ]
      for (const edit of clearEdits) {
        const p = fresh()
        writeFileSync(p, readFileSync(clearPath))
        editJsonLoose(p, edit)
        await assertLoadFails(p, undefined, /not a valid BIZRA identity file/)
      }
      const encEdits: Array<(f: Record<string, unknown>) => void> = [
        f => { delete f.kdf },
        f => { (f.kdf as Record<string, unknown>).N = 1000 },
        f => { (f.kdf as Record<string, unknown>).N = 2 ** 40 },
        f => { (f.kdf as Record<string, unknown>).r = 0 },
        f => { (f.kdf as Record<string, unknown>).name = 'pbkdf2' },
        f => { (f.cipher as Record<string, unknown>).name = 'aes-128-cbc' },
        f => { (f.cipher as Record<string, unknown>).tag = 'AAAA' },
        f => { delete f.ciphertext }
      ]
      for (const edit of encEdits) {
        const p = fresh()
        writeFileSync(p, readFileSync(encPath))
        editJsonLoose(p, edit)
        await assertLoadFails(p, PASS, /not a valid BIZRA identity file/)
      }
    })

    test('decodeKeystore names its source', async () => {
      await assert.rejects(decodeKeystore('nope', 'stdin'), (err: unknown) =>
        err instanceof KeystoreError && err.message.startsWith('stdin: '))
    })

    test('a missing file is a FileError naming it', async () => {
      const p = join(dir, 'does-not-exist.key')
      await assert.rejects(loadIdentity(p), (err: unknown) =>
        err instanceof FileError && err.message.includes(p) && /not found/.test(err.message))
    })
  })

  test('saveIdentity refuses to overwrite an existing file and leaves it byte-identical', async () => {
    const a = await NodeIdentity.fromSeed(seedOf(5))
    const b = await NodeIdentity.fromSeed(seedOf(6))
    const path = fresh()
    saveIdentity(path, a)
    const before = readFileSync(path)
    assert.throws(() => saveIdentity(path, b), (err: unknown) =>
      err instanceof FileError && err.message.includes(path) && /already exists/.test(err.message))
    assert.throws(() => saveIdentity(path, b, PASS), FileError)
    assert.deepEqual(readFileSync(path), before)
    assert.equal((await loadIdentity(path)).id, a.id)
    // no temporary files left behind
    assert.deepEqual(readdirSync(dir).filter(f => f.includes('.tmp-')), [])
  })

  test('replaceIdentity keeps a backup and the new key loads', async () => {
    const sub = mkdtempSync(join(dir, 'replace-'))
    const path = join(sub, 'identity.key')
    const a = await NodeIdentity.fromSeed(seedOf(7))
    const b = await NodeIdentity.fromSeed(seedOf(8))
    const c = await NodeIdentity.fromSeed(seedOf(9))

    // no file yet: it is simply saved, with no backup
    assert.equal(replaceIdentity(path, a), undefined)
    assert.equal((await loadIdentity(path)).id, a.id)
    const original = readFileSync(path)

    const backup = replaceIdentity(path, b, PASS)
    assert.equal(typeof backup, 'string')
    assert.deepEqual(readFileSync(backup!), original, 'the backup is the old file')
    assert.equal((await loadIdentity(backup!)).id, a.id)
    assert.equal((await loadIdentity(path, PASS)).id, b.id)
    assert.equal(statSync(path).mode & 0o777, 0o600)

    // replacing again straight away keeps both backups, distinct
    const second = readFileSync(path)
    const backup2 = replaceIdentity(path, c)
    assert.equal(typeof backup2, 'string')
    assert.notEqual(backup2, backup)
    assert.deepEqual(readFileSync(backup2!), second)
    assert.deepEqual(readFileSync(backup!), original)
    assert.equal((await loadIdentity(path)).id, c.id)

    // nothing staged is left behind
    const names = readdirSync(sub).sort()
    assert.deepEqual(names.filter(f => f.includes('.new-') || f.includes('.tmp-')), [])
    assert.equal(names.length, 3)
  })

  test('replaceIdentity twice within one millisecond keeps both backups', async (t) => {
    const sub = mkdtempSync(join(dir, 'replace-ms-'))
    const path = join(sub, 'identity.key')
    const ids = await Promise.all([11, 12, 13, 14].map(async b => await NodeIdentity.fromSeed(seedOf(b))))
    t.mock.method(Date, 'now', () => 1_700_000_000_000)
    const snapshots: Buffer[] = []
    const backups: Array<string | undefined> = []
    for (const id of ids) {
      snapshots.push(readdirSync(sub).includes('identity.key') ? readFileSync(path) : Buffer.alloc(0))
      backups.push(replaceIdentity(path, id))
    }
    assert.equal(backups[0], undefined)
    const made = backups.slice(1) as string[]
    assert.equal(new Set(made).size, 3, `distinct backups: ${made.join(', ')}`)
    made.forEach((b, i) => assert.deepEqual(readFileSync(b), snapshots[i + 1]))
    assert.equal((await loadIdentity(path)).id, ids[3]!.id)
    assert.deepEqual(readdirSync(sub).filter(f => f.includes('.new-')), [], 'no staged file left behind')
  })

  test('encodeKeystore output is the format loadIdentity reads', async () => {
    const id = await NodeIdentity.fromSeed(seedOf(10))
    const text = encodeKeystore(id)
    assert.ok(text.endsWith('\n'))
    const f = JSON.parse(text) as KeystoreFile
    assert.deepEqual(Object.keys(f).sort(), ['bizra', 'encrypted', 'peerId', 'seed', 'type', 'version'])
    assert.equal((await decodeKeystore(text, 'mem')).id, id.id)
  })
})
