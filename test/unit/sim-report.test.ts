import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { loadScenario } from '../../simulator/scenario.ts'
import { runDes } from '../../simulator/des/engine.ts'
import { renderReport } from '../../simulator/report/html.ts'
import { countHistogram, distribution, LatencyHistogram } from '../../simulator/report/metrics.ts'
import { ticks } from '../../simulator/report/svg.ts'

describe('sim metrics and report', () => {
  test('latency histogram: percentiles within a bucket (1%), CDF ends at 1', () => {
    const h = new LatencyHistogram()
    for (let i = 1; i <= 1000; i++) h.add(i)
    const s = h.summary()
    assert.equal(s.count, 1000)
    assert.equal(s.mean, 500.5)
    assert.ok(Math.abs(s.p50 - 500) / 500 < 0.011, `p50 ${s.p50}`)
    assert.ok(Math.abs(s.p99 - 990) / 990 < 0.011, `p99 ${s.p99}`)
    assert.equal(s.max, 1000)
    const cdf = h.cdf()
    assert.equal(cdf[cdf.length - 1]![1], 1)
    assert.ok(cdf.every((p, i) => i === 0 || (p[0] >= cdf[i - 1]![0] && p[1] >= cdf[i - 1]![1])))
    const hist = h.histogram(10)
    assert.equal(hist.counts.reduce((a, b) => a + b, 0), 1000)
    assert.deepEqual(distribution([5, 1, 3, 2, 4]), { mean: 3, p50: 3, p99: 5, max: 5 })
    assert.equal(countHistogram([0, 1, 2, 30]).counts.reduce((a, b) => a + b, 0), 4)
    assert.deepEqual(ticks(0, 100, 5), [0, 20, 40, 60, 80, 100])
  })

  test('report.html is self-contained, with the four SVG charts', async () => {
    const m = await runDes(loadScenario('partition-heal'))
    const html = renderReport(m)
    assert.match(html, /^<!doctype html>/)
    const svgs = html.match(/<svg class="chart [^"]+"/g) ?? []
    assert.deepEqual(svgs.map(s => s.slice(18, -1)), ['cdf', 'commit-hist', 'msgs-hist', 'timeline'])
    assert.equal((html.match(/<polyline/g) ?? []).length, 3) // a CDF line per region
    assert.ok((html.match(/<rect x/g) ?? []).length > 10) // histogram bars, partition band
    assert.match(html, /partition eu/)
    assert.match(html, /expired proposal/)
    // nothing loaded from elsewhere, nothing run
    assert.doesNotMatch(html, /<script|<link|<img|src=|href=|url\(/i)
    assert.doesNotMatch(html, /NaN|undefined|Infinity/)
  })
})
