import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { loadScenario, validateScenario, type Scenario } from '../../simulator/scenario.ts'
import { runDes, simulate } from '../../simulator/des/engine.ts'
import { deterministicPart } from '../../simulator/report/metrics.ts'
import { loadEngine } from '../../simulator/engine.ts'

/** regional-50 cut to 10 s: a few proposals, tasks and gossip messages, ~0.3 s to run */
function short (seed?: number): Scenario {
  const s = structuredClone(loadScenario('regional-50'))
  s.durationS = 10
  s.workload.endS = 8
  s.workload.proposalsPerS = 1
  if (seed !== undefined) s.seed = seed
  return validateScenario(s, 'short')
}

describe('sim des engine', () => {
  test('same seed -> byte-identical metrics; another seed -> different metrics', async () => {
    const a = JSON.stringify(deterministicPart(await runDes(short())))
    const b = JSON.stringify(deterministicPart(await runDes(short())))
    assert.equal(a, b)
    const c = JSON.stringify(deterministicPart(await runDes(short(8))))
    assert.notEqual(a, c)
    const m = JSON.parse(a)
    assert.equal(m.engine, 'des')
    assert.equal(m.nodes, 50)
    assert.ok(m.eventsProcessed > 1000)
    assert.ok(m.consensus.proposals > 0 && m.tasks.submitted > 0)
  })

  test('the registry serves the des engine', async () => {
    const e = await loadEngine('des')
    assert.equal(e.name, 'des')
    await assert.rejects(loadEngine('warp'), /unknown engine "warp"/)
  })

  test('gossip reaches every live node', async () => {
    const { metrics, sim } = await simulate(short())
    assert.equal(metrics.faults.crashes, 0)
    assert.ok(metrics.propagation.coverage.messages > 10)
    assert.equal(metrics.propagation.coverage.min, 1)
    assert.equal(metrics.propagation.all.count, metrics.propagation.coverage.messages * (sim.n - 1))
    for (const r of Object.values(metrics.propagation.byRegion)) assert.ok(r.p50 > 0 && r.p99 >= r.p50 && r.cdf.length > 2)
    // the mesh keeps its degree within D_lo..D_hi at every node and topic
    for (let i = 0; i < sim.meshN.length; i++) assert.ok(sim.meshN[i]! >= 4 && sim.meshN[i]! <= 12, `mesh degree ${sim.meshN[i]}`)
  })

  test('--nodes scales the federation; churn crashes and restarts nodes, failover keeps tasks going', async () => {
    const s = structuredClone(loadScenario('regional-3x100'))
    s.durationS = 20
    s.workload.endS = 16
    s.workload.proposalsPerS = 0.2
    s.churn = { crashPerHour: 200, restartPerHour: 720 }
    const { metrics } = await simulate(validateScenario(s, 'churny'), { nodes: 150 })
    assert.equal(metrics.nodes, 150)
    assert.ok(metrics.faults.crashes > 0, 'no crashes')
    assert.ok(metrics.faults.timeline.some(e => e.kind === 'crash'))
    assert.ok(metrics.tasks.succeeded > 0)
    assert.ok(metrics.tasks.successRate > 0.8, `task success ${metrics.tasks.successRate}`)
    assert.equal(metrics.consensus.safetyViolations, 0)
    assert.ok(metrics.membership.suspectLatencyMs.count > 0, 'no crash detected by membership')
  })

  test('byzantine-31: no safety violation, every valid proposal committed, the Byzantine acts seen', async () => {
    const { metrics: m, consensus } = await simulate(loadScenario('byzantine-31'))
    const c = m.consensus
    assert.equal(c.validators, 31)
    assert.deepEqual(c.byzantine, { equivocate: 3, forge: 3, withhold: 2, spam: 2 })
    assert.ok(c.proposals >= 3, `only ${c.proposals} proposals`)
    assert.equal(c.safetyViolations, 0)
    assert.equal(c.wrongDecisions, 0)
    assert.equal(c.committed, c.proposals)
    assert.equal(c.expired, 0)
    // every honest validator committed every proposal
    const honest = consensus.roles.filter(r => r === 'honest').length
    for (const p of consensus.proposals) assert.equal(p.validatorCommits, honest, p.proposal.id)
    assert.equal(c.equivocationsDetected, 3)
    assert.ok(c.forgedVotesRejected > 0)
    assert.ok(c.votesWithheld > 0)
    assert.ok(m.spam.rejected > 0 && m.spam.graylistedBy > 0)
  })

  test('partition-heal: proposals expire while eu is cut off and commit once it heals', async () => {
    const { metrics: m, consensus } = await simulate(loadScenario('partition-heal'))
    assert.equal(m.consensus.safetyViolations, 0)
    const during = consensus.proposals.filter(p => p.t0 >= 10_000 && p.t0 < 25_000)
    const before = consensus.proposals.filter(p => p.t0 < 10_000 - 1000)
    const after = consensus.proposals.filter(p => p.t0 > 31_000)
    assert.ok(during.length > 0 && after.length > 0 && before.length > 0)
    for (const p of during) assert.ok(p.validatorCommits === 0 && p.validatorExpired > 0, `${p.proposal.id} at ${p.t0} ms did not expire`)
    for (const p of [...before, ...after]) assert.ok(p.validatorCommits > 0, `${p.proposal.id} at ${p.t0} ms did not commit`)
    assert.ok(m.consensus.expired >= during.length)
    assert.ok(m.messages.dropped.partition > 0)
    assert.ok(m.faults.timeline.some(e => e.kind === 'partition-start') && m.faults.timeline.some(e => e.kind === 'partition-end'))
  })
})
