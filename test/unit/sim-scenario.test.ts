import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apportion, loadScenario, scaleScenario, ScenarioError, shippedScenarios, totalNodes, validateScenario } from '../../simulator/scenario.ts'

const base = (): Record<string, unknown> => ({
  name: 'tiny',
  seed: 1,
  durationS: 10,
  regions: [{ name: 'a', nodes: 10, latencyMs: { mean: 5, jitter: 1 }, loss: 0 }, { name: 'b', nodes: 20, latencyMs: { mean: 5, jitter: 1 } }],
  superPeers: { count: 2, bridges: ['a', 'b'] },
  consensus: { validators: 4 },
  workload: { proposalsPerS: 1, tasksPerS: 1, gossipPerS: 1 }
})

function problem (mutate: (s: any) => void, file = 'x.json'): string {
  const s = base()
  mutate(s)
  try {
    validateScenario(s, file)
  } catch (err) {
    assert.ok(err instanceof ScenarioError, String(err))
    return err.message
  }
  return 'valid'
}

describe('sim scenarios', () => {
  test('every shipped scenario loads and validates', () => {
    for (const name of shippedScenarios()) {
      const s = loadScenario(name)
      assert.equal(s.name, name)
      assert.ok(totalNodes(s) >= 5)
    }
    assert.equal(totalNodes(loadScenario('planet-1m')), 1_000_000)
    assert.equal(totalNodes(loadScenario('regional-50')), 50)
    assert.equal(loadScenario('byzantine-31').consensus.validators, 31)
  })

  test('errors name the file and the JSON path', () => {
    assert.equal(problem(() => {}), 'valid')
    assert.equal(problem(s => { s.regions[1].latencyMs.mean = -1 }, 'f.json'), 'f.json: $.regions[1].latencyMs.mean must be from 0 to 600000, got -1')
    assert.match(problem(s => { delete s.seed }), /^x\.json: \$\.seed is required$/)
    assert.match(problem(s => { s.regions[0].nodes = 2.5 }), /\$\.regions\[0\]\.nodes must be an integer/)
    assert.match(problem(s => { s.regions[1].name = 'a' }), /\$\.regions\[1\]\.name repeats region "a"/)
    assert.match(problem(s => { s.superPeers.bridges = ['a', 'zz'] }), /\$\.superPeers\.bridges\[1\] names no region/)
    assert.match(problem(s => { s.byzantine = [{ count: 1, behaviour: 'lie' }] }), /\$\.byzantine\[0\]\.behaviour must be one of equivocate, forge, withhold, spam/)
    assert.match(problem(s => { s.byzantine = [{ count: 3, behaviour: 'forge' }, { count: 2, behaviour: 'spam' }] }), /\$\.byzantine counts add up to 5, more than the 4 validators/)
    assert.match(problem(s => { s.partitions = [{ startS: 5, endS: 4, regions: ['a'] }] }), /\$\.partitions\[0\]\.endS must be after startS/)
    assert.match(problem(s => { s.workload.colour = 'red' }), /\$\.workload\.colour is not a known field/)
    assert.match(problem(s => { s.consensus.validators = 31 }), /\$\.consensus\.validators must be from 1 to 30/)
    assert.match(problem(s => { s.interRegion = { latencyMs: { mean: 50, jitter: 5 }, links: [{ between: ['a', 'a'], latencyMs: { mean: 1, jitter: 0 } }] } }), /\$\.interRegion\.links\[0\]\.between must name two different regions/)
  })

  test('files: missing, not JSON, invalid', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bz-scn-'))
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, '{ not json')
    assert.throws(() => loadScenario(bad), (e: Error) => e instanceof ScenarioError && e.message.startsWith(`${bad}: not valid JSON`) && !e.message.includes('\n'))
    const wrong = join(dir, 'wrong.json')
    writeFileSync(wrong, JSON.stringify({ ...base(), durationS: 'long' }))
    assert.throws(() => loadScenario(wrong), { message: `${wrong}: $.durationS must be a number, got "long"` })
    assert.throws(() => loadScenario(join(dir, 'none.json')), /scenario file not found/)
    assert.throws(() => loadScenario('no-such-scenario'), /scenario file not found/)
  })

  test('--nodes scales regions proportionally', () => {
    const s = validateScenario(base(), 'x')
    const t = scaleScenario(s, 300)
    assert.deepEqual(t.regions.map(r => r.nodes), [100, 200])
    assert.equal(t.superPeers!.count, 20)
    const small = scaleScenario(loadScenario('planet-1m'), 1000)
    assert.equal(totalNodes(small), 1000)
    assert.deepEqual(small.regions.map(r => r.nodes), [250, 250, 250, 100, 100, 50])
    assert.equal(small.superPeers!.count, 6)
    assert.throws(() => scaleScenario(s, 1), /--nodes must be an integer from 2/)
    assert.deepEqual(apportion(10, [1, 1, 1]), [4, 3, 3])
    assert.deepEqual(apportion(5, [100, 1], 1), [4, 1])
  })
})
