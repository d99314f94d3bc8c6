import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { loadScenario } from '../../simulator/scenario.ts'
import { engine, type RealRunOptions } from '../../simulator/real/engine.ts'

describe('simulator, real engine: full BizraNodes over simulated links', () => {
  // two worker threads for five nodes: every link between the threads goes over a MessagePort
  // (links.ts, LinkBridge), and the metrics come back to this thread (the in-thread path is
  // what sim-engines.test.ts runs on local-5)
  test('local-5 on two worker threads: every gossip message reaches every node, every proposal commits with the right decision, tasks complete, no safety violation', async () => {
    const s = loadScenario('local-5')
    s.durationS = 12
    s.workload.endS = 8
    const seen: number[] = []
    const options: RealRunOptions = { workers: 2, onProgress: p => seen.push(p.fraction) }
    const m = await engine.run(s, options)
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
    // per-node traffic is counted at the links, in both threads, and summed here
    assert.ok(m.messages.totalMessages > 0 && m.messages.totalBytes > 0)
    assert.ok(m.messages.perNode.sent.p50 > 0 && m.messages.bytesPerNode.received.p50 > 0)
    assert.equal(seen.at(-1), 1, 'progress ends at 100%')
  })
})
