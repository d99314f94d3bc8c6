import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { loadScenario, validateScenario, type Scenario } from '../../simulator/scenario.ts'
import { loadEngine } from '../../simulator/engine.ts'
import { engine as real, type RealRunOptions } from '../../simulator/real/engine.ts'
import type { Metrics } from '../../simulator/report/metrics.ts'

/**
 * The two engines on the same scenarios. What they must agree on (the tolerance the README
 * states): outcomes (every live node reached, every proposal committed with the right
 * decision, no safety violation, task success within 15 points), and latencies within a
 * factor, real never faster than the des model of the same links by more than its jitter:
 * the real engine's latencies carry what the des engine does not model, each hop's Noise,
 * yamux, gossipsub and envelope verification, for every node, on the machine's cores.
 */
function cut (name: string, seconds: number): Scenario {
  const s = structuredClone(loadScenario(name))
  s.durationS = seconds
  s.workload.startS = 3
  s.workload.endS = seconds - 4
  return validateScenario(s, `${name} cut to ${seconds} s`)
}

/** host.cpuStarved above which a real-time run measured the machine's CPU queue, not the federation (see regional-50) */
const STARVED = 0.25
/** host.busyShare above which a host thread queued work of its own: its latencies may measure that queue (see regional-50) */
const BUSY = 0.35
const SLOW = 3

const isWithin = (des: number, real: number, factor: number, slack: number): boolean => real <= des * factor + slack && real >= des / factor

/** `real` lies within [des / factor, des * factor + slack] */
function within (what: string, des: number, real: number, factor: number, slack: number): void {
  assert.ok(isWithin(des, real, factor, slack), `${what}: des ${des} ms, real ${real} ms (tolerance x${factor} + ${slack} ms)`)
}

function agree (des: Metrics, r: Metrics, committedShare: number): void {
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
}

describe('simulator: the real and des engines agree on the same scenario', () => {
  test('local-5 (real time, one thread): outcomes, propagation p50 within 4x + 5 ms, task latency (service-bound) within -25% / +50% + 20 ms', async () => {
    const s = cut('local-5', 14)
    const des = await (await loadEngine('des')).run(s)
    const r = await real.run(s)
    agree(des, r, 0.9)
    within('propagation p50', des.propagation.all.p50, r.propagation.all.p50, 4, 5)
    // the real task also signs, verifies, logs and proves, for all five nodes on one thread: it
    // may take up to half again plus 20 ms over the des model of the ~50 ms service time
    const dt = des.tasks.latencyMs.p50
    const rt = r.tasks.latencyMs.p50
    assert.ok(rt >= 0.75 * dt && rt <= 1.5 * dt + 20, `task p50 des ${dt} real ${rt}`)
  })

  // 50 nodes in two regions bridged by four super-peers, on worker threads (one per core).
  // Measured on this 2-core machine (five runs, other work beside them at load 1.4-3.4):
  // real/des propagation p50 1.2-1.4x, p90 1.4-2.4x, commit p50 2.5-2.9x, task p50 1.5-2.8x;
  // coverage, commits and task success identical.
  // In real time the federation needs about 1.4 of the 2 cores, in bursts (both host threads
  // 100% busy for a second or two around consensus rounds). When the machine gives those cores
  // to other work, the threads wait for a CPU with work in hand and the latencies measure that
  // queue, not the links: with a full test suite beside it (load ~4, this test at nice 19) the
  // hosts were denied the CPU for 52% of their busy time (host.cpuStarved) and the eu
  // propagation p50 came out 181 ms against des's 15 ms; with two busy loops beside it instead,
  // 52-74%, and in one run gossip coverage and in another task success fell too. On a quiet
  // machine cpuStarved is 9-10% (17-19% when each host had a verification thread beside it;
  // simulated nodes verify inline). So a run whose
  // hosts were starved more than STARVED is not taken as the measurement: the scenario runs
  // again in slow motion (timeScale 3: every latency, interval and rate stretched 3x in wall
  // time and the measurements scaled back), which needs a third of the CPU per wall second, and
  // that run is held to the same outcomes and tolerances. Measured with two busy loops beside
  // it (starved 37-42%): propagation p50 1.0-1.2x, p90 1.2-1.3x, commit p50 1.9-2.1x, task p50
  // 1.3-1.5x. A machine busy enough to starve even that run fails the test.
  // A slower machine does the same from within: on a later VM whose system calls cost more
  // (every real hop is several), the hosts were busy 45-61% of the wall time with nothing
  // beside them (starved 10-14%) and the eu propagation p50 came out 34-83 ms against des's
  // 15 ms (limit 63; one run passed at 59 ms with the hosts busy 50%). So a real-time run whose
  // hosts were busy more than BUSY (35%: under what this happened at, with room) and whose
  // latencies fall outside the tolerances also runs again in slow motion, held to the same.
  test('regional-50 (50 nodes, two regions, super-peers; real time on worker threads, slow motion x3 if the machine starved or queued the first run): outcomes in every region, propagation p50 within 2.5x + 10 ms, commit and task p50 within 6x + 50 ms', async t => {
    const s = cut('regional-50', 18)
    const des = await (await loadEngine('des')).run(s)
    const report = (r: Metrics): string => `des/real (timeScale ${r === slow ? SLOW : 1}): propagation p50 ${des.propagation.all.p50}/${r.propagation.all.p50} ms, p90 ${des.propagation.all.p90}/${r.propagation.all.p90} ms, commit p50 ${des.consensus.commitLatencyMs.p50}/${r.consensus.commitLatencyMs.p50} ms, task p50 ${des.tasks.latencyMs.p50}/${r.tasks.latencyMs.p50} ms, eu/us p50 ${des.propagation.byRegion.eu?.p50}/${r.propagation.byRegion.eu?.p50} and ${des.propagation.byRegion.us?.p50}/${r.propagation.byRegion.us?.p50} ms, coverage ${des.propagation.coverage.mean}/${r.propagation.coverage.mean}; real hosts busy ${r.host.busyShare}, starved ${r.host.cpuStarved}`
    let slow: Metrics | undefined
    let r = await real.run(s)
    t.diagnostic(report(r))
    // the latency tolerances, once: [what, des, real, factor, slack]
    const latencies = (m: Metrics): Array<[string, number, number, number, number]> => [
      ...['eu', 'us'].map((region): [string, number, number, number, number] => [`propagation p50 in ${region}`, des.propagation.byRegion[region]!.p50, m.propagation.byRegion[region]?.p50 ?? Infinity, 2.5, 25]),
      ['propagation p50', des.propagation.all.p50, m.propagation.all.p50, 2.5, 10],
      ['commit p50', des.consensus.commitLatencyMs.p50, m.consensus.commitLatencyMs.p50, 6, 50],
      ['task p50', des.tasks.latencyMs.p50, m.tasks.latencyMs.p50, 6, 50]
    ]
    const latenciesWithin = (m: Metrics): boolean => latencies(m).every(([, d, x, factor, slack]) => isWithin(d, x, factor, slack))
    const starved = (r.host.cpuStarved ?? 0) > STARVED
    const queued = (r.host.busyShare ?? 0) > BUSY && !latenciesWithin(r)
    if (starved || queued) {
      t.diagnostic(starved
        ? `the hosts were denied the CPU ${Math.round(r.host.cpuStarved! * 100)}% of their busy time: running again at timeScale ${SLOW}`
        : `the hosts were busy ${Math.round(r.host.busyShare! * 100)}% of the time and the latencies fell outside the tolerances: running again at timeScale ${SLOW}`)
      const options: RealRunOptions = { timeScale: SLOW }
      slow = await real.run(s, options)
      r = slow
      t.diagnostic(report(r))
    }
    assert.equal(r.nodes, 50)
    agree(des, r, 0.9)
    assert.ok(r.propagation.coverage.min >= 0.95, `real: the worst-covered message reached ${r.propagation.coverage.min}`)
    for (const region of ['eu', 'us']) assert.ok(r.propagation.byRegion[region]!.count > 0, `real: arrivals in ${region}`)
    for (const [what, d, x, factor, slack] of latencies(r)) within(what, d, x, factor, slack)
  })
})
