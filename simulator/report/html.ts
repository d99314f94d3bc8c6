import type { FaultEvent, Metrics, Percentiles } from './metrics.ts'
import { barChart, esc, fmt, lineChart, PALETTE, timeline, type TimelineRow } from './svg.ts'

/**
 * report.html: one self-contained page (inline CSS and SVG, no scripts, no external assets)
 * that shows a run's metrics: a summary, the four charts (propagation CDF per region,
 * commit-latency histogram, messages per node, timeline of faults) and the tables behind them.
 */
export function renderReport (m: Metrics): string {
  const cdf = lineChart('Propagation latency CDF per region', 'cdf',
    Object.entries(m.propagation.byRegion).map(([name, r]) => ({ name, points: r.cdf })),
    'ms after publication', 'share of first arrivals', 1)
  const commit = barChart('Consensus commit latency', 'commit-hist', m.consensus.commitLatencyHistogram.edges, m.consensus.commitLatencyHistogram.counts,
    'ms from proposal to commit (honest validators)', 'commits', PALETTE[2])
  const perNode = barChart('Messages per node', 'msgs-hist', m.messages.perNodeHistogram.edges, m.messages.perNodeHistogram.counts,
    'messages sent + received by one node', 'nodes', PALETTE[3])
  const faults = timeline('Timeline of faults', 'timeline', timelineRows(m.faults.timeline, m.simulatedS * 1000), m.simulatedS * 1000)

  const c = m.consensus
  const safe = c.safetyViolations === 0
  const summary: Array<[string, string]> = [
    ['engine', m.engine],
    ['scenario', m.scenario],
    ['seed', String(m.seed)],
    ['nodes', fmt(m.nodes)],
    ['simulated', `${m.simulatedS} s`],
    ['events', `${fmt(m.eventsProcessed)} (${fmt(m.host.eventsPerSec)}/s)`],
    ['wall time', `${m.host.wallS} s`],
    ['peak RSS', `${m.host.peakRssMb} MB`]
  ]
  const headline: Array<[string, string, string?]> = [
    ['safety violations', String(c.safetyViolations), safe ? 'ok' : 'bad'],
    ['proposals committed', `${c.committed} of ${c.proposals}`, c.committed === c.proposals ? 'ok' : undefined],
    ['proposals expired', String(c.expired), c.expired === 0 ? undefined : 'warn'],
    ['commit latency p50 / p99', `${fmt(c.commitLatencyMs.p50)} / ${fmt(c.commitLatencyMs.p99)} ms`],
    ['propagation p50 / p99', `${fmt(m.propagation.all.p50)} / ${fmt(m.propagation.all.p99)} ms`],
    ['gossip coverage (mean, min)', `${(m.propagation.coverage.mean * 100).toFixed(2)}%, ${(m.propagation.coverage.min * 100).toFixed(2)}%`],
    ['task success', `${(m.tasks.successRate * 100).toFixed(1)}% of ${m.tasks.succeeded + m.tasks.failed}`],
    ['messages per node (mean, p99)', `${fmt(m.messages.perNode.sent.mean + m.messages.perNode.received.mean)}, sent p99 ${fmt(m.messages.perNode.sent.p99)}`]
  ]
  const regionRows = Object.entries(m.propagation.byRegion).map(([name, r]) => [name, ...pct(r)])
  const kindRows = Object.entries(m.messages.byKind).map(([k, v]) => [k, fmt(v.messages), bytes(v.bytes)])

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>BIZRA simulation: ${esc(m.scenario)} (${esc(m.engine)}, seed ${m.seed})</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827; margin: 24px auto; max-width: 1360px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.sub { color: #6b7280; margin-bottom: 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 12px; min-width: 150px; }
.card .k { color: #6b7280; font-size: 12px; } .card .v { font-size: 18px; font-weight: 600; }
.card.ok .v { color: #15803d; } .card.bad .v { color: #b91c1c; } .card.warn .v { color: #b45309; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(660px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px; }
figcaption { font-weight: 600; margin-bottom: 4px; } figure p { color: #4b5563; margin: 4px 0 0; font-size: 13px; }
svg.chart { max-width: 100%; height: auto; font-size: 11px; fill: #374151; }
svg.chart .label { font-size: 12px; fill: #4b5563; }
table { border-collapse: collapse; margin: 6px 0 12px; } th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f9fafb; }
</style>
</head>
<body>
<h1>BIZRA federation simulation — ${esc(m.scenario)}</h1>
<div class="sub">${summary.map(([k, v]) => `${esc(k)} <b>${esc(v)}</b>`).join(' · ')}</div>
<div class="cards">${headline.map(([k, v, cls]) => `<div class="card${cls !== undefined ? ` ${cls}` : ''}"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div></div>`).join('')}</div>

<h2>Charts</h2>
<div class="grid">
<figure><figcaption>Propagation latency, CDF per region</figcaption>${cdf}<p>For every gossip message and every node, the time from publication to the message's first arrival there. A curve further left is a faster region; a long tail to the right is repair by IHAVE/IWANT or a slow bridge.</p></figure>
<figure><figcaption>Consensus commit latency</figcaption>${commit}<p>Time from a proposal to its commit at each honest validator (q = ${c.quorum} of ${c.validators} matching signed votes). Expired proposals are not in it.</p></figure>
<figure><figcaption>Messages per node</figcaption>${perNode}<p>Messages each node sent plus received (gossip, duplicates, control, tasks, heartbeats). Super-peers and publishers form the right-hand tail.</p></figure>
<figure><figcaption>Timeline of faults</figcaption>${faults}<p>Crashes and restarts (churn), partitions (bands), Byzantine actions and proposals that expired.${m.faults.timelineDropped > 0 ? ` ${m.faults.timelineDropped} later entries are not drawn.` : ''}</p></figure>
</div>

<h2>Propagation by region (ms)</h2>
${table(['region', 'count', 'mean', 'p50', 'p90', 'p99', 'max'], [...regionRows, ['all', ...pct(m.propagation.all)]])}

<h2>Consensus</h2>
${table(['mode', 'validators', 'Byzantine', 'quorum', 'proposals', 'committed (accept / reject)', 'expired', 'pending', 'safety violations', 'wrong decisions'],
  [[c.mode, String(c.validators), Object.entries(c.byzantine).map(([k, v]) => `${v} ${k}`).join(', ') || 'none', String(c.quorum), String(c.proposals), `${c.committed} (${c.committedAccept} / ${c.committedReject})`, String(c.expired), String(c.pending), String(c.safetyViolations), String(c.wrongDecisions)]])}
${table(['latency (ms)', 'count', 'mean', 'p50', 'p90', 'p99', 'max'], [['commit (honest validators)', ...pct(c.commitLatencyMs)], ['result known (all nodes)', ...pct(c.learnLatencyMs)]])}
${table(['equivocators caught', 'forged votes rejected', 'votes withheld', 'spam sent', 'spam rejected', 'peers that graylisted a spammer'],
  [[String(c.equivocationsDetected), fmt(c.forgedVotesRejected), fmt(c.votesWithheld), fmt(m.spam.sent), fmt(m.spam.rejected), fmt(m.spam.graylistedBy)]])}

<h2>Messages</h2>
${table(['kind', 'messages', 'bytes'], [...kindRows, ['total', fmt(m.messages.totalMessages), bytes(m.messages.totalBytes)]])}
${table(['per node', 'mean', 'p50', 'p99', 'max'], [
  ['messages sent', ...dist(m.messages.perNode.sent)], ['messages received', ...dist(m.messages.perNode.received)],
  ['bytes sent', ...dist(m.messages.bytesPerNode.sent, bytes)], ['bytes received', ...dist(m.messages.bytesPerNode.received, bytes)]])}
${table(['met packet loss (retransmitted)', 'dropped: partition', 'dropped: node down'], [[fmt(m.messages.dropped.loss), fmt(m.messages.dropped.partition), fmt(m.messages.dropped.down)]])}

<h2>Tasks and membership</h2>
${table(['tasks', 'succeeded', 'failed', 'pending', 'success rate', 'attempts', 'failovers'], [[String(m.tasks.submitted), String(m.tasks.succeeded), String(m.tasks.failed), String(m.tasks.pending ?? 0), `${(m.tasks.successRate * 100).toFixed(2)}%`, String(m.tasks.attempts), String(m.tasks.failovers)]])}
${table(['latency (ms)', 'count', 'mean', 'p50', 'p90', 'p99', 'max'], [['task (requester, end to end)', ...pct(m.tasks.latencyMs)], ['crash to peer:suspect', ...pct(m.membership.suspectLatencyMs)], ['crash to peer:dead', ...pct(m.membership.deadLatencyMs)]])}
${table(['membership observers', 'suspicions of live peers', 'crashes', 'restarts', 'partitions'], [[String(m.membership.observers), String(m.membership.falseSuspicions), String(m.faults.crashes), String(m.faults.restarts), String(m.faults.partitions)]])}
</body>
</html>
`
}

function pct (p: Percentiles): string[] {
  return [fmt(p.count), fmt(p.mean), fmt(p.p50), fmt(p.p90), fmt(p.p99), fmt(p.max)]
}

function dist (d: { mean: number, p50: number, p99: number, max: number }, f: (v: number) => string = fmt): string[] {
  return [f(d.mean), f(d.p50), f(d.p99), f(d.max)]
}

function bytes (b: number): string {
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`
  if (b >= 1e6) return `${(b / 1e6).toFixed(2)} MB`
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB`
  return `${Math.round(b)} B`
}

function table (head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map(h => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map(r => `<tr>${r.map(c => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`
}

const ROWS: Array<{ kinds: FaultEvent['kind'][], name: string, color: string }> = [
  { kinds: ['crash'], name: 'crash', color: '#dc2626' },
  { kinds: ['restart'], name: 'restart', color: '#16a34a' },
  { kinds: ['equivocate'], name: 'equivocation', color: '#7c3aed' },
  { kinds: ['forge'], name: 'forged vote', color: '#db2777' },
  { kinds: ['withhold'], name: 'vote withheld', color: '#d97706' },
  { kinds: ['spam'], name: 'spam', color: '#0891b2' },
  { kinds: ['expired'], name: 'expired proposal', color: '#4b5563' }
]

function timelineRows (events: FaultEvent[], endMs: number): TimelineRow[] {
  const rows: TimelineRow[] = []
  // partitions: pair each start with its end, one row per set of regions
  const open = new Map<string, number[]>()
  const spans = new Map<string, Array<{ from: number, to: number, label: string }>>()
  for (const e of events) {
    if (e.kind === 'partition-start') open.set(e.detail, [...(open.get(e.detail) ?? []), e.t])
    if (e.kind === 'partition-end') {
      const starts = open.get(e.detail) ?? []
      const from = starts.shift()
      if (from !== undefined) spans.set(e.detail, [...(spans.get(e.detail) ?? []), { from, to: e.t, label: `${e.detail} cut off ${fmt(from / 1000)}–${fmt(e.t / 1000)} s` }])
    }
  }
  for (const [detail, starts] of open) for (const from of starts) spans.set(detail, [...(spans.get(detail) ?? []), { from, to: endMs, label: `${detail} cut off from ${fmt(from / 1000)} s` }])
  for (const [detail, s] of spans) rows.push({ name: `partition ${detail}`.slice(0, 18), color: '#f59e0b', marks: [], spans: s })
  for (const r of ROWS) {
    const marks = events.filter(e => r.kinds.includes(e.kind)).map(e => ({ t: e.t, label: `${fmt(e.t / 1000)} s: ${e.kind} ${e.detail}` }))
    if (marks.length > 0) rows.push({ name: r.name, color: r.color, marks, spans: [] })
  }
  return rows
}
