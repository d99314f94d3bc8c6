import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, tempDir } from '../helpers/nodes.ts'

function cli (args: string[], cwd?: string): { code: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, ...(cwd !== undefined ? { cwd } : {}) })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('bizra sim run', () => {
  const dir = tempDir('bz-sim-')

  test('local-5 writes metrics.json and report.html with the SVG charts', () => {
    const out = join(dir, 'local5')
    const r = cli(['sim', 'run', 'local-5', '--out', out, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const printed = JSON.parse(r.stdout)
    assert.equal(printed.out, out)
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'))
    assert.deepEqual(metrics, printed.metrics)
    assert.equal(metrics.engine, 'des')
    assert.equal(metrics.scenario, 'local-5')
    assert.equal(metrics.nodes, 5)
    assert.equal(metrics.consensus.safetyViolations, 0)
    for (const k of ['propagation', 'consensus', 'messages', 'tasks', 'membership', 'faults', 'host']) assert.ok(k in metrics, k)
    const html = readFileSync(join(out, 'report.html'), 'utf8')
    for (const cls of ['cdf', 'commit-hist', 'msgs-hist', 'timeline']) assert.match(html, new RegExp(`<svg class="chart ${cls}"`))
    // not a TTY: progress comes as plain lines on stderr, no carriage returns
    assert.match(r.stderr, /des local-5: 100%/)
    assert.doesNotMatch(r.stderr, /\r/)
  })

  test('--seed, --nodes and the default output folder', () => {
    const r = cli(['sim', 'run', 'regional-50', '--nodes', '20', '--seed', '5'], dir)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /des regional-50 \(seed 5, 20 nodes/)
    const written = /wrote (\S+metrics\.json)/.exec(r.stdout)![1]!
    assert.ok(written.startsWith(join(dir, 'sim-out', 'regional-50-')), written)
    assert.ok(existsSync(written))
  })

  test('bad input: one line on stderr, exit 2', () => {
    const garbage = join(dir, 'garbage.json')
    writeFileSync(garbage, 'this is not a scenario')
    const invalid = join(dir, 'invalid.json')
    writeFileSync(invalid, JSON.stringify({ name: 'x', seed: 1, durationS: 5, regions: [], consensus: { validators: 1 }, workload: { proposalsPerS: 0, tasksPerS: 0, gossipPerS: 0 } }))
    const cases: Array<[string[], RegExp]> = [
      [['sim', 'run', garbage], /not valid JSON/],
      [['sim', 'run', invalid], /invalid\.json: \$\.regions must have at least 1 entry/],
      [['sim', 'run', join(dir, 'missing.json')], /scenario file not found/],
      [['sim', 'run', 'local-5', '--engine', 'warp'], /--engine must be one of/],
      [['sim', 'run', 'local-5', '--nodes', 'many'], /--nodes must be an integer/],
      [['sim', 'run', 'local-5', '--seed', '1.5'], /--seed must be an integer/],
      [['sim', 'run'], /give one SCENARIO/],
      [['sim', 'walk'], /usage/]
    ]
    for (const [args, re] of cases) {
      const r = cli(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stdout, '')
      const lines = r.stderr.split('\n').filter(l => l.length > 0)
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0]!, /^bizra: /)
      assert.match(lines[0]!, re)
    }
  })
})
