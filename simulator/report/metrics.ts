/**
 * The one metrics shape every engine reports (metrics.json), and the collector that builds it.
 * An engine feeds the collector raw observations as they happen (a message's first arrival at
 * a node, a commit, a task's end, a fault) and per-node counters at the end; `finish` turns
 * them into Metrics. Latencies go into log-bucketed histograms (1% wide), so percentiles cost
 * no memory per sample and come out the same on every run with the same inputs.
 *
 * Everything but `host` is a function of the scenario and seed: with the same seed the `des`
 * engine writes byte-identical JSON apart from `host` (wall time, events/s, RSS of this run).
 */

export interface Percentiles {
  count: number
  mean: number
  p50: number
  p90: number
  p99: number
  max: number
}

export interface Distribution {
  mean: number
  p50: number
  p99: number
  max: number
}

export interface Histogram {
  /** bucket lower edges; the last bucket is open-ended */
  edges: number[]
  counts: number[]
}

export type FaultKind = 'crash' | 'restart' | 'partition-start' | 'partition-end' | 'equivocate' | 'forge' | 'withhold' | 'spam' | 'expired'

export interface FaultEvent {
  /** simulated ms since the start */
  t: number
  kind: FaultKind
  /** node index, region names, proposal id: what it concerns */
  detail: string
}

export interface Metrics {
  engine: string
  scenario: string
  seed: number
  nodes: number
  regions: string[]
  simulatedS: number
  eventsProcessed: number
  propagation: {
    /** first arrival of each gossip message at each node, ms after it was published */
    all: Percentiles
    byRegion: Record<string, Percentiles & { cdf: Array<[number, number]> }>
    /** share of the nodes alive at publication that each message reached */
    coverage: { messages: number, mean: number, min: number }
  }
  consensus: {
    mode: 'machine' | 'light'
    validators: number
    byzantine: Record<string, number>
    quorum: number
    proposals: number
    committed: number
    committedAccept: number
    committedReject: number
    expired: number
    /** still pending when the simulation ended */
    pending: number
    /** proposal -> commit at each honest validator, ms */
    commitLatencyMs: Percentiles
    commitLatencyHistogram: Histogram
    /** proposal -> certificate known, at every node that learned it, ms */
    learnLatencyMs: Percentiles
    /** validators that some node caught signing two votes on one proposal */
    equivocationsDetected: number
    forgedVotesRejected: number
    votesWithheld: number
    /** proposals with certificates of different decisions; must be 0 */
    safetyViolations: number
    /** certificates whose decision differs from the deterministic rule's */
    wrongDecisions: number
  }
  messages: {
    totalMessages: number
    totalBytes: number
    byKind: Record<string, { messages: number, bytes: number }>
    perNode: { sent: Distribution, received: Distribution }
    bytesPerNode: { sent: Distribution, received: Distribution }
    /** messages sent + received per node */
    perNodeHistogram: Histogram
    /** loss: messages that met packet loss (delivered one retransmission timeout late); partition, down: messages dropped */
    dropped: { loss: number, partition: number, down: number }
  }
  tasks: {
    submitted: number
    succeeded: number
    failed: number
    /** still running when the simulation ended */
    pending?: number
    /** succeeded / (succeeded + failed) */
    successRate: number
    latencyMs: Percentiles
    attempts: number
    failovers: number
  }
  membership: {
    observers: number
    /** crash -> peer:suspect at an observer that tracked the crashed peer, ms */
    suspectLatencyMs: Percentiles
    /** crash -> peer:dead, ms */
    deadLatencyMs: Percentiles
    /** peer:suspect for a peer that was alive (slow, lossy or partitioned links) */
    falseSuspicions: number
  }
  spam: { sent: number, rejected: number, graylistedBy: number }
  faults: { crashes: number, restarts: number, partitions: number, timeline: FaultEvent[], timelineDropped: number }
  /** how this run went on this machine: not reproducible, left out of determinism checks */
  host: {
    /** wall seconds of the whole run, set-up included */
    wallS: number
    /** events processed per wall second of the event loop (set-up and reporting excluded) */
    eventsPerSec: number
    peakRssMb: number
    node: string
    /**
     * real engine, over the measured run (set-up excluded), the thread that hosts nodes worst
     * off: cpuStarved, the share of its event loop's busy time in which it was not running
     * (ready, and the machine ran something else: CPU queueing the latencies then carry, which
     * the des engine does not model); busyShare, its event loop's busy share of the wall time
     */
    cpuStarved?: number
    busyShare?: number
  }
}

/** Log-bucketed latency histogram: bucket k covers [MIN*G^k, MIN*G^(k+1)). */
const MIN = 0.01
const G = 1.01
const LOG_G = Math.log(G)
const BUCKETS = 2400 // up to ~ 2.3e8 ms

export class LatencyHistogram {
  readonly counts = new Float64Array(BUCKETS)
  count = 0
  sum = 0
  max = 0

  add (ms: number): void {
    const v = ms > MIN ? ms : MIN
    let k = Math.floor(Math.log(v / MIN) / LOG_G)
    if (k >= BUCKETS) k = BUCKETS - 1
    this.counts[k]!++
    this.count++
    this.sum += ms
    if (ms > this.max) this.max = ms
  }

  merge (o: LatencyHistogram): void {
    for (let k = 0; k < BUCKETS; k++) this.counts[k]! += o.counts[k]!
    this.count += o.count
    this.sum += o.sum
    if (o.max > this.max) this.max = o.max
  }

  /** value at quantile q (0..1): the geometric middle of its bucket, capped at the max seen */
  quantile (q: number): number {
    if (this.count === 0) return 0
    const target = Math.max(1, Math.ceil(q * this.count))
    let acc = 0
    for (let k = 0; k < BUCKETS; k++) {
      acc += this.counts[k]!
      if (acc >= target) return Math.min(this.max, MIN * Math.pow(G, k + 0.5))
    }
    return this.max
  }

  summary (): Percentiles {
    return {
      count: this.count,
      mean: round(this.count === 0 ? 0 : this.sum / this.count),
      p50: round(this.quantile(0.5)),
      p90: round(this.quantile(0.9)),
      p99: round(this.quantile(0.99)),
      max: round(this.max)
    }
  }

  /** about `points` (x ms, cumulative share) pairs, for a CDF chart */
  cdf (points = 60): Array<[number, number]> {
    if (this.count === 0) return []
    const out: Array<[number, number]> = []
    let acc = 0
    let lastShare = -1
    const step = 1 / points
    const marks = [0.99, 0.995, 0.999]
    for (let k = 0; k < BUCKETS; k++) {
      if (this.counts[k] === 0) continue
      acc += this.counts[k]!
      const share = acc / this.count
      // a point every 1/points of the share, and where the tail quantiles are crossed
      if (share - lastShare >= step || share === 1 || marks.some(q => lastShare < q && share >= q)) {
        out.push([round(Math.min(this.max, MIN * Math.pow(G, k + 1))), round(share, 4)])
        lastShare = share
      }
    }
    return out
  }

  /** counts in `bins` equal-width bins from 0 to the max */
  histogram (bins = 30): Histogram {
    if (this.count === 0) return { edges: [], counts: [] }
    const width = niceWidth(this.max / bins)
    const n = Math.max(1, Math.ceil(this.max / width + 1e-9))
    const counts = new Array<number>(n).fill(0)
    for (let k = 0; k < BUCKETS; k++) {
      if (this.counts[k] === 0) continue
      const mid = Math.min(this.max, MIN * Math.pow(G, k + 0.5))
      counts[Math.min(n - 1, Math.floor(mid / width))]! += this.counts[k]!
    }
    return { edges: counts.map((_, i) => round(i * width)), counts }
  }
}

function niceWidth (raw: number): number {
  if (!(raw > 0)) return 1
  const p = Math.pow(10, Math.floor(Math.log10(raw)))
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p
  return 10 * p
}

/**
 * The `tasks` part of Metrics from an engine's task counts, so that both engines report it the
 * same way: pending = submitted - succeeded - failed, successRate = succeeded / (succeeded +
 * failed) (0 when none finished).
 */
export function taskOutcome (c: { submitted: number, succeeded: number, failed: number, attempts: number, failovers: number }, latency: LatencyHistogram): Metrics['tasks'] {
  const finished = c.succeeded + c.failed
  return {
    submitted: c.submitted,
    succeeded: c.succeeded,
    failed: c.failed,
    pending: c.submitted - finished,
    successRate: round(finished === 0 ? 0 : c.succeeded / finished, 6),
    latencyMs: latency.summary(),
    attempts: c.attempts,
    failovers: c.failovers
  }
}

export function round (x: number, digits = 3): number {
  const f = Math.pow(10, digits)
  return Math.round(x * f) / f
}

/** mean, median, p99 and max of per-node counters (sorts a copy). */
export function distribution (values: ArrayLike<number>, count = values.length): Distribution {
  if (count === 0) return { mean: 0, p50: 0, p99: 0, max: 0 }
  const a = new Float64Array(count)
  let sum = 0
  for (let i = 0; i < count; i++) { a[i] = values[i]!; sum += a[i]! }
  a.sort()
  const at = (q: number): number => a[Math.min(count - 1, Math.max(0, Math.ceil(q * count) - 1))]!
  return { mean: round(sum / count), p50: round(at(0.5)), p99: round(at(0.99)), max: round(a[count - 1]!) }
}

/**
 * Histogram of per-node counts in ~`bins` equal-width bins up to the 99.5th percentile; the
 * last bin is open-ended and holds the rest (super-peers would otherwise squash the bulk into
 * one bar).
 */
export function countHistogram (values: ArrayLike<number>, bins = 30): Histogram {
  const n = values.length
  if (n === 0) return { edges: [], counts: [] }
  const sorted = Float64Array.from(values as ArrayLike<number>).sort()
  const max = sorted[n - 1]!
  const cap = sorted[Math.min(n - 1, Math.floor(0.995 * n))]!
  const width = niceWidth((cap + 1) / bins)
  const k = Math.max(1, Math.min(Math.floor(max / width), Math.floor(cap / width) + 1) + 1)
  const counts = new Array<number>(k).fill(0)
  for (let i = 0; i < n; i++) counts[Math.min(k - 1, Math.floor(values[i]! / width))]!++
  return { edges: counts.map((_, i) => round(i * width)), counts }
}

/** The metrics without `host`: what must be byte-identical for one seed. */
export function deterministicPart (m: Metrics): Omit<Metrics, 'host'> {
  const { host: _host, ...rest } = m
  return rest
}

export function peakRssMb (): number {
  // maxRSS is in kilobytes on Linux
  return Math.round(process.resourceUsage().maxRSS / 1024)
}
