/**
 * npm run bench:sim — how large a federation the simulator handles on this machine.
 *
 *   des:  events per second of the discrete-event engine on planet-1m (10^6 nodes), with the
 *         simulated time cut to BENCH_SIM_DES_SECONDS (default 8) so the run takes minutes.
 *   real: the largest federation of full nodes (the real engine, its nodes on worker threads,
 *         one per core, in real time) that completes the regional scenario (regional-3x100
 *         scaled to 25, 50, 75, 100, 150, … nodes, cut to BENCH_SIM_REAL_SECONDS, default 20):
 *         see simulator/real/bench.ts.
 *
 * The last line is one JSON object:
 *   {"bench":"sim","realNodes":…,"realWallS":…,"desNodes":…,"desEventsPerSec":…,"peakRssMb":…}
 */
import { loadScenario, totalNodes, validateScenario } from '../../simulator/scenario.ts'
import { runDes } from '../../simulator/des/engine.ts'
import { peakRssMb } from '../../simulator/report/metrics.ts'

interface RealResult { realNodes: number | null, realWallS: number | null }
interface DesResult { desNodes: number, desEventsPerSec: number }

async function benchDes (): Promise<DesResult> {
  const seconds = Number(process.env.BENCH_SIM_DES_SECONDS ?? 8)
  const s = structuredClone(loadScenario('planet-1m'))
  s.durationS = seconds
  s.workload.startS = Math.min(2, seconds / 4)
  s.workload.endS = seconds
  s.partitions = s.partitions?.filter(p => p.startS < seconds)
  const scenario = validateScenario(s, `planet-1m cut to ${seconds} s`)
  let last = 0
  const m = await runDes(scenario, {
    onProgress: p => {
      if (p.wallS - last >= 15 || p.fraction === 1) {
        last = p.wallS
        process.stderr.write(`des planet-1m: ${(p.fraction * 100).toFixed(0)}% of ${seconds} s simulated, ${p.events} events, ${p.wallS.toFixed(0)} s wall\n`)
      }
    }
  })
  console.log(`des: ${totalNodes(scenario)} nodes, ${seconds} s simulated, ${m.eventsProcessed} events in ${m.host.wallS} s wall (${m.host.eventsPerSec} events/s in the event loop), ` +
    `${m.consensus.proposals} proposals (${m.consensus.committed} committed), ${m.propagation.coverage.messages} gossip messages, propagation p50 ${m.propagation.all.p50} ms p99 ${m.propagation.all.p99} ms, peak RSS ${m.host.peakRssMb} MB`)
  return { desNodes: m.nodes, desEventsPerSec: m.host.eventsPerSec }
}

/** The real engine's part: the largest federation of full nodes that completes the regional scenario in real time. */
async function benchReal (): Promise<RealResult> {
  const { largestRealFederation } = await import('../../simulator/real/bench.ts')
  const r = await largestRealFederation({ seconds: Number(process.env.BENCH_SIM_REAL_SECONDS ?? 20), log: line => console.log(line) })
  return { realNodes: r.realNodes, realWallS: r.realWallS }
}

const real = await benchReal()
const des = await benchDes()
console.log(JSON.stringify({ bench: 'sim', ...real, ...des, peakRssMb: peakRssMb() }))
