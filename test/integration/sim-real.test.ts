import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { loadScenario } from '../../simulator/scenario.ts'
import { engine } from '../../simulator/real/engine.ts'

describe('simulator, real engine: full BizraNodes over simulated links', () => {
  test('local-5: every gossip message reaches every node, every proposal commits with the right decision, tasks complete, no safety violation', async () => {
    const s = loadScenario('local-5')
    s.durationS = 12
    s.workload.endS = 8
    const seen: number[] = []
    const m = await engine.run(s, { onProgress: p => seen.push(p.fraction) })
    assert.equal(m.engine, 'real')
    assert.equal(m.nodes, 5)
    assert.ok(m.propagation.coverage.messages > 0)
    assert.equal(m.propagation.coverage.min, 1)
    assert.ok(m.consensus.proposals > 0)
    assert.equal(m.consensus.committed, m.consensus.proposals)
    assert.equal(m.consensus.safetyViolations, 0)
    assert.equal(m.consensus.wrongDecisions, 0)
    assert.ok(m.tasks.submitted > 0)
    assert.equal(m.tasks.succeeded, m.tasks.submitted)
    assert.ok(m.propagation.all.p50 > 0 && m.propagation.all.p50 < 1000, `p50 ${m.propagation.all.p50} ms on a 1 ms LAN`)
    assert.equal(seen.at(-1), 1, 'progress ends at 100%')
  })
})
