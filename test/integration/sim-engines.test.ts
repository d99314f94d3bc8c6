import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { loadScenario, validateScenario, type Scenario } from '../../simulator/scenario.ts'
import { loadEngine } from '../../simulator/engine.ts'
import { engine as real } from '../../simulator/real/engine.ts'
import type { Metrics } from '../../simulator/report/metrics.ts'

/**
 * The two engines on the same scenarios. What they must agree on (the tolerance the README
 * states): outcomes (every live node reached, every proposal committed, no safety violation,
 * task success within 15 points) and propagation p50 within a factor, since the real engine's
 * latencies carry what the des engine does not model: each hop's envelope verification and
 * gossipsub work, for every node, on one shared thread.
 */
function cut (name: string, seconds: number): Scenario {
  const s = structuredClone(loadScenario(name))
  s.durationS = seconds
  s.workload.startS = 3
  s.workload.endS = seconds - 4
  return validateScenario(s, `${name} cut to ${seconds} s`)
}

function agree (des: Metrics, r: Metrics, propagationFactor: number, committedShare: number): void {
  assert.equal(des.nodes, r.nodes)
  for (const m of [des, r]) {
    assert.ok(m.propagation.coverage.mean >= 0.99, `${m.engine}: coverage ${m.propagation.coverage.mean}`)
    assert.ok(m.consensus.proposals > 0, `${m.engine}: some proposals`)
    const share = m.engine === 'des' ? 0.9 : committedShare
    assert.ok(m.consensus.committed >= share * m.consensus.proposals, `${m.engine}: ${m.consensus.committed}/${m.consensus.proposals} committed`)
    assert.equal(m.consensus.safetyViolations, 0)
    assert.equal(m.consensus.wrongDecisions, 0)
  }
  assert.ok(Math.abs(des.tasks.successRate - r.tasks.successRate) <= 0.15, `task success des ${des.tasks.successRate} real ${r.tasks.successRate}`)
  const d = des.propagation.all.p50
  const q = r.propagation.all.p50
  assert.ok(q <= d * propagationFactor + 5 && q >= d / propagationFactor, `propagation p50 des ${d} ms, real ${q} ms (factor ${propagationFactor})`)
}

// Not yet here: the same check on a 50-node regional federation. The real engine's gossip there
// reached 89-100% of nodes over runs and its commits took 0.5-2.5 s against des's 0.1 s, so the
// agreement does not hold reliably yet (issue 7's notes).
describe('simulator: the real and des engines agree on the same scenario', () => {
  test('local-5 (real time): outcomes, propagation p50 within 4x + 5 ms, task latency (service-bound) within -25% / +50% + 20 ms', async () => {
    const s = cut('local-5', 14)
    const des = await (await loadEngine('des')).run(s)
    const r = await real.run(s)
    agree(des, r, 4, 0.9)
    // the real task also signs, verifies, logs and proves, for all five nodes on one thread: it
    // may take up to half again plus 20 ms over the des model of the ~50 ms service time
    const dt = des.tasks.latencyMs.p50
    const rt = r.tasks.latencyMs.p50
    assert.ok(rt >= 0.75 * dt && rt <= 1.5 * dt + 20, `task p50 des ${dt} real ${rt}`)
  })
})
