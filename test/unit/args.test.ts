import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { parse, UsageError } from '../../src/cli/args.ts'

describe('command-line parsing', () => {
  const OPTIONS = { sig: { type: 'string' }, seed: { type: 'string' }, wait: { type: 'boolean' } } as const

  test('a value that starts with a dash (a base64url signature, a negative number) is taken as the value', () => {
    assert.equal(parse(['--sig', '-AbC_9'], OPTIONS, 't').values.sig, '-AbC_9')
    assert.equal(parse(['--seed', '-1'], OPTIONS, 't').values.seed, '-1')
    assert.equal(parse(['--sig=-x'], OPTIONS, 't').values.sig, '-x')
  })

  test('but not when the next word is one of the command\'s own options, or stdin\'s "-"', () => {
    assert.throws(() => parse(['--sig', '--wait'], OPTIONS, 't'), UsageError)
    assert.throws(() => parse(['--sig', '-h'], OPTIONS, 't'), UsageError)
    const p = parse(['--wait', '-'], OPTIONS, 't')
    assert.deepEqual(p.positionals, ['-'])
  })
})
