import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

/**
 * A simulation scenario: the federation's shape (regions, super-peers, validators), the faults
 * it meets (Byzantine validators, churn, partitions) and the work it does. Both engines
 * (`des`, and `real` when it exists) take the same scenario and report the same metrics.
 *
 * Units: times in a field named ...S are seconds of simulated time, ...Ms milliseconds;
 * rates are per second of simulated time (churn: per node per hour). `loss` is the
 * probability that a message on that link meets packet loss; links are TCP connections, so it
 * arrives one retransmission timeout late (max(200 ms, 3 x the link's mean latency)).
 * Partitions, not loss, make messages disappear.
 */

export const BEHAVIOURS = ['equivocate', 'forge', 'withhold', 'spam'] as const
export type Behaviour = typeof BEHAVIOURS[number]

export interface LatencySpec {
  /** mean one-way latency, ms */
  mean: number
  /** each message's latency is uniform in [mean - jitter, mean + jitter] (at least 0.05 ms) */
  jitter: number
}

export interface RegionSpec {
  name: string
  nodes: number
  latencyMs: LatencySpec
  loss: number
}

export interface InterRegionLink {
  between: [string, string]
  latencyMs: LatencySpec
  loss: number
}

export interface ByzantineSpec {
  count: number
  behaviour: Behaviour
  /** spam only: junk messages per second per spammer (default 20) */
  ratePerS?: number
}

export interface PartitionSpec {
  startS: number
  endS: number
  /** each region named here is cut off from every other region while the partition holds */
  regions: string[]
}

export interface Scenario {
  name: string
  description?: string
  seed: number
  durationS: number
  regions: RegionSpec[]
  interRegion: { latencyMs: LatencySpec, loss: number, links?: InterRegionLink[] }
  /** super-peers are nodes of the bridged regions (spread evenly) that peer directly with each other */
  superPeers?: { count: number, bridges: string[] }
  topology?: {
    /** connections each node dials inside its region (default 8; it also gets inbound ones) */
    peersPerNode?: number
    /** connections each node dials to random nodes of other regions (default 0) */
    crossRegionPeers?: number
  }
  consensus: {
    validators: number
    /** vote deadline of each proposal (default 30000) */
    timeoutMs?: number
    /**
     * "machine": every node runs the consensus state machine, as a real node does (counts
     * votes, verifies certificates, publishes the certificate it forms); "light": only
     * validators do, other nodes learn results from validators' certificates. Default:
     * machine up to 500 nodes, light above.
     */
    nonValidators?: 'machine' | 'light'
  }
  byzantine?: ByzantineSpec[]
  churn?: {
    /** crashes per node per hour */
    crashPerHour: number
    /** restarts per crashed node per hour (mean downtime = 3600 / restartPerHour s) */
    restartPerHour: number
    /** validators crash too (default false) */
    includeValidators?: boolean
  }
  partitions?: PartitionSpec[]
  workload: {
    /** workload runs from startS (default 2, so meshes form first) to endS (default durationS - 5) */
    startS?: number
    endS?: number
    proposalsPerS: number
    /** share of proposals below the constitution's thresholds: they commit as "reject" (default 0.2) */
    rejectShare?: number
    tasksPerS: number
    gossipPerS: number
    /** payload bytes of a workload gossip message (default 512) */
    gossipBytes?: number
    /** share of nodes that offer the task skill (default 0.1, at least one node) */
    providerShare?: number
    /** provider's execution time (default mean 50, jitter 25) */
    taskServiceMs?: LatencySpec
    /** attempt timeout before the requester fails over (default 10000, the channel's open timeout) */
    taskAttemptTimeoutMs?: number
    /** providers tried per task (default 3, as the router) */
    taskMaxAttempts?: number
  }
  gossip?: { D?: number, Dlo?: number, Dhi?: number, Dlazy?: number, heartbeatMs?: number, historyGossip?: number }
  membership?: {
    /** node-info heartbeat interval (default 10000, the node's default) */
    heartbeatMs?: number
    /** nodes that run the membership state machine and send tasks (default min(nodes, 200)) */
    observers?: number
  }
}

export class ScenarioError extends Error {
  static override readonly name: string = 'ScenarioError'
  override readonly name: string = 'ScenarioError'
}

export const MAX_NODES = 2_000_000
const MAX_REGIONS = 64

type Obj = Record<string, unknown>

/** Collects problems as `FILE: $.json.path problem`; the first one is thrown. */
class Checker {
  readonly file: string
  constructor (file: string) { this.file = file }

  fail (path: string, problem: string): never {
    throw new ScenarioError(`${this.file}: ${path} ${problem}`)
  }

  object (v: unknown, path: string, allowed: readonly string[], requiredKeys: readonly string[] = []): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, 'must be an object')
    const o = v as Obj
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.fail(`${path}.${k}`, `is not a known field (known: ${allowed.join(', ')})`)
    for (const k of requiredKeys) if (!(k in o)) this.fail(`${path}.${k}`, 'is required')
    return o
  }

  number (v: unknown, path: string, min: number, max: number, integer = false): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `must be a number, got ${describe(v)}`)
    if (integer && !Number.isInteger(v)) this.fail(path, `must be an integer, got ${v}`)
    if (v < min || v > max) this.fail(path, `must be from ${min} to ${max}, got ${v}`)
    return v
  }

  optNumber (v: unknown, path: string, min: number, max: number, integer = false): number | undefined {
    return v === undefined ? undefined : this.number(v, path, min, max, integer)
  }

  string (v: unknown, path: string, re: RegExp, what: string): string {
    if (typeof v !== 'string' || !re.test(v)) this.fail(path, `must be ${what}, got ${describe(v)}`)
    return v
  }

  array (v: unknown, path: string, min = 0, max = Infinity): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `must be an array, got ${describe(v)}`)
    if (v.length < min) this.fail(path, `must have at least ${min} entr${min === 1 ? 'y' : 'ies'}`)
    if (v.length > max) this.fail(path, `must have at most ${max} entries`)
    return v
  }

  latency (v: unknown, path: string): LatencySpec {
    const o = this.object(v, path, ['mean', 'jitter'], ['mean', 'jitter'])
    const mean = this.number(o.mean, `${path}.mean`, 0, 600_000)
    const jitter = this.number(o.jitter, `${path}.jitter`, 0, 600_000)
    return { mean, jitter }
  }
}

function describe (v: unknown): string {
  if (v === undefined) return 'nothing'
  const s = JSON.stringify(v)
  return s === undefined ? typeof v : s.length > 40 ? `${s.slice(0, 37)}...` : s
}

const NAME_RE = /^[A-Za-z0-9][\w.-]{0,63}$/

/** Validates parsed JSON as a scenario; `file` names the source in errors. Returns a normalised copy. */
export function validateScenario (input: unknown, file = 'scenario'): Scenario {
  const c = new Checker(file)
  const top = c.object(input, '$', ['$schema', 'name', 'description', 'seed', 'durationS', 'regions', 'interRegion', 'superPeers', 'topology', 'consensus', 'byzantine', 'churn', 'partitions', 'workload', 'gossip', 'membership'],
    ['name', 'seed', 'durationS', 'regions', 'consensus', 'workload'])
  const name = c.string(top.name, '$.name', NAME_RE, '1-64 characters [A-Za-z0-9_.-]')
  const description = top.description === undefined ? undefined : c.string(top.description, '$.description', /^[^]{0,2000}$/, 'a string of at most 2000 characters')
  const seed = c.number(top.seed, '$.seed', 0, 2 ** 32 - 1, true)
  const durationS = c.number(top.durationS, '$.durationS', 0.001, 7 * 24 * 3600)

  const regions: RegionSpec[] = c.array(top.regions, '$.regions', 1, MAX_REGIONS).map((r, i) => {
    const p = `$.regions[${i}]`
    const o = c.object(r, p, ['name', 'nodes', 'latencyMs', 'loss'], ['name', 'nodes', 'latencyMs'])
    return {
      name: c.string(o.name, `${p}.name`, NAME_RE, '1-64 characters [A-Za-z0-9_.-]'),
      nodes: c.number(o.nodes, `${p}.nodes`, 1, MAX_NODES, true),
      latencyMs: c.latency(o.latencyMs, `${p}.latencyMs`),
      loss: c.optNumber(o.loss, `${p}.loss`, 0, 0.5) ?? 0
    }
  })
  const names = new Set<string>()
  regions.forEach((r, i) => {
    if (names.has(r.name)) c.fail(`$.regions[${i}].name`, `repeats region "${r.name}"`)
    names.add(r.name)
  })
  const total = regions.reduce((s, r) => s + r.nodes, 0)
  if (total > MAX_NODES) c.fail('$.regions', `add up to ${total} nodes, more than ${MAX_NODES}`)
  const region = (v: unknown, path: string): string => {
    const s = c.string(v, path, /^[^]*$/, 'a region name')
    if (!names.has(s)) c.fail(path, `names no region (regions: ${[...names].join(', ')})`)
    return s
  }

  let interRegion: Scenario['interRegion'] = { latencyMs: { mean: 80, jitter: 20 }, loss: 0 }
  if (top.interRegion !== undefined) {
    const o = c.object(top.interRegion, '$.interRegion', ['latencyMs', 'loss', 'links'], ['latencyMs'])
    const links = o.links === undefined
      ? undefined
      : c.array(o.links, '$.interRegion.links').map((l, i) => {
        const p = `$.interRegion.links[${i}]`
        const lo = c.object(l, p, ['between', 'latencyMs', 'loss'], ['between', 'latencyMs'])
        const between = c.array(lo.between, `${p}.between`, 2, 2).map((x, k) => region(x, `${p}.between[${k}]`)) as [string, string]
        if (between[0] === between[1]) c.fail(`${p}.between`, 'must name two different regions')
        return { between, latencyMs: c.latency(lo.latencyMs, `${p}.latencyMs`), loss: c.optNumber(lo.loss, `${p}.loss`, 0, 0.5) ?? 0 }
      })
    interRegion = { latencyMs: c.latency(o.latencyMs, '$.interRegion.latencyMs'), loss: c.optNumber(o.loss, '$.interRegion.loss', 0, 0.5) ?? 0, ...(links === undefined ? {} : { links }) }
  }

  let superPeers: Scenario['superPeers']
  if (top.superPeers !== undefined) {
    const o = c.object(top.superPeers, '$.superPeers', ['count', 'bridges'], ['count', 'bridges'])
    const bridges = c.array(o.bridges, '$.superPeers.bridges', 1).map((x, i) => region(x, `$.superPeers.bridges[${i}]`))
    if (new Set(bridges).size !== bridges.length) c.fail('$.superPeers.bridges', 'names a region twice')
    const bridged = regions.filter(r => bridges.includes(r.name)).reduce((s, r) => s + r.nodes, 0)
    const count = c.number(o.count, '$.superPeers.count', 0, bridged, true)
    if (count > 0 && count < bridges.length) c.fail('$.superPeers.count', `must be at least one per bridged region (${bridges.length})`)
    superPeers = { count, bridges }
  }

  let topology: Scenario['topology']
  if (top.topology !== undefined) {
    const o = c.object(top.topology, '$.topology', ['peersPerNode', 'crossRegionPeers'])
    topology = {}
    const ppn = c.optNumber(o.peersPerNode, '$.topology.peersPerNode', 1, 64, true)
    const cross = c.optNumber(o.crossRegionPeers, '$.topology.crossRegionPeers', 0, 64, true)
    if (ppn !== undefined) topology.peersPerNode = ppn
    if (cross !== undefined) topology.crossRegionPeers = cross
  }

  const co = c.object(top.consensus, '$.consensus', ['validators', 'timeoutMs', 'nonValidators'], ['validators'])
  const consensus: Scenario['consensus'] = { validators: c.number(co.validators, '$.consensus.validators', 1, Math.min(total, 1000), true) }
  const timeoutMs = c.optNumber(co.timeoutMs, '$.consensus.timeoutMs', 100, 3_600_000, true)
  if (timeoutMs !== undefined) consensus.timeoutMs = timeoutMs
  if (co.nonValidators !== undefined) {
    if (co.nonValidators !== 'machine' && co.nonValidators !== 'light') c.fail('$.consensus.nonValidators', `must be "machine" or "light", got ${describe(co.nonValidators)}`)
    consensus.nonValidators = co.nonValidators as 'machine' | 'light'
  }

  let byzantine: ByzantineSpec[] | undefined
  if (top.byzantine !== undefined) {
    const list = Array.isArray(top.byzantine) ? top.byzantine : [top.byzantine]
    const base = Array.isArray(top.byzantine) ? '$.byzantine' : '$.byzantine'
    byzantine = list.map((b, i) => {
      const p = Array.isArray(top.byzantine) ? `${base}[${i}]` : base
      const o = c.object(b, p, ['count', 'behaviour', 'ratePerS'], ['count', 'behaviour'])
      if (typeof o.behaviour !== 'string' || !(BEHAVIOURS as readonly string[]).includes(o.behaviour)) c.fail(`${p}.behaviour`, `must be one of ${BEHAVIOURS.join(', ')}, got ${describe(o.behaviour)}`)
      const spec: ByzantineSpec = { count: c.number(o.count, `${p}.count`, 0, consensus.validators, true), behaviour: o.behaviour as Behaviour }
      const rate = c.optNumber(o.ratePerS, `${p}.ratePerS`, 0, 10_000)
      if (rate !== undefined) {
        if (spec.behaviour !== 'spam') c.fail(`${p}.ratePerS`, 'applies only to behaviour "spam"')
        spec.ratePerS = rate
      }
      return spec
    })
    const sum = byzantine.reduce((s, b) => s + b.count, 0)
    if (sum > consensus.validators) c.fail('$.byzantine', `counts add up to ${sum}, more than the ${consensus.validators} validators`)
  }

  let churn: Scenario['churn']
  if (top.churn !== undefined) {
    const o = c.object(top.churn, '$.churn', ['crashPerHour', 'restartPerHour', 'includeValidators'], ['crashPerHour', 'restartPerHour'])
    churn = { crashPerHour: c.number(o.crashPerHour, '$.churn.crashPerHour', 0, 3600), restartPerHour: c.number(o.restartPerHour, '$.churn.restartPerHour', 0, 360_000) }
    if (o.includeValidators !== undefined) {
      if (typeof o.includeValidators !== 'boolean') c.fail('$.churn.includeValidators', 'must be true or false')
      churn.includeValidators = o.includeValidators as boolean
    }
  }

  let partitions: PartitionSpec[] | undefined
  if (top.partitions !== undefined) {
    partitions = c.array(top.partitions, '$.partitions').map((x, i) => {
      const p = `$.partitions[${i}]`
      const o = c.object(x, p, ['startS', 'endS', 'regions'], ['startS', 'endS', 'regions'])
      const startS = c.number(o.startS, `${p}.startS`, 0, 7 * 24 * 3600)
      const endS = c.number(o.endS, `${p}.endS`, 0, 7 * 24 * 3600)
      if (endS <= startS) c.fail(`${p}.endS`, `must be after startS (${startS})`)
      const rs = c.array(o.regions, `${p}.regions`, 1).map((r, k) => region(r, `${p}.regions[${k}]`))
      if (regions.length < 2) c.fail(`${p}.regions`, 'a partition needs at least two regions in the scenario')
      return { startS, endS, regions: rs }
    })
  }

  const wo = c.object(top.workload, '$.workload', ['startS', 'endS', 'proposalsPerS', 'rejectShare', 'tasksPerS', 'gossipPerS', 'gossipBytes', 'providerShare', 'taskServiceMs', 'taskAttemptTimeoutMs', 'taskMaxAttempts'], ['proposalsPerS', 'tasksPerS', 'gossipPerS'])
  const workload: Scenario['workload'] = {
    proposalsPerS: c.number(wo.proposalsPerS, '$.workload.proposalsPerS', 0, 1000),
    tasksPerS: c.number(wo.tasksPerS, '$.workload.tasksPerS', 0, 1_000_000),
    gossipPerS: c.number(wo.gossipPerS, '$.workload.gossipPerS', 0, 100_000)
  }
  const optional: Array<[keyof Scenario['workload'], number, number, boolean]> = [
    ['startS', 0, durationS, false], ['endS', 0, durationS, false], ['rejectShare', 0, 1, false], ['gossipBytes', 1, 1_048_576, true],
    ['providerShare', 0, 1, false], ['taskAttemptTimeoutMs', 1, 3_600_000, false], ['taskMaxAttempts', 1, 100, true]
  ]
  for (const [k, min, max, int] of optional) {
    const v = c.optNumber(wo[k], `$.workload.${k}`, min, max, int)
    if (v !== undefined) (workload as Record<string, unknown>)[k] = v
  }
  if (wo.taskServiceMs !== undefined) workload.taskServiceMs = c.latency(wo.taskServiceMs, '$.workload.taskServiceMs')
  if (workload.startS !== undefined && workload.endS !== undefined && workload.endS < workload.startS) c.fail('$.workload.endS', `must not be before startS (${workload.startS})`)

  let gossip: Scenario['gossip']
  if (top.gossip !== undefined) {
    const o = c.object(top.gossip, '$.gossip', ['D', 'Dlo', 'Dhi', 'Dlazy', 'heartbeatMs', 'historyGossip'])
    gossip = {}
    const g = gossip as Record<string, number>
    for (const [k, min, max] of [['D', 1, 64], ['Dlo', 1, 64], ['Dhi', 1, 64], ['Dlazy', 0, 64], ['heartbeatMs', 10, 60_000], ['historyGossip', 1, 10]] as const) {
      const v = c.optNumber(o[k], `$.gossip.${k}`, min, max, true)
      if (v !== undefined) g[k] = v
    }
    const D = gossip.D ?? 6
    if ((gossip.Dlo ?? Math.min(4, D)) > D) c.fail('$.gossip.Dlo', `must not exceed D (${D})`)
    if ((gossip.Dhi ?? Math.max(12, D)) < D) c.fail('$.gossip.Dhi', `must not be below D (${D})`)
  }

  let membership: Scenario['membership']
  if (top.membership !== undefined) {
    const o = c.object(top.membership, '$.membership', ['heartbeatMs', 'observers'])
    membership = {}
    const hb = c.optNumber(o.heartbeatMs, '$.membership.heartbeatMs', 100, 600_000, true)
    const obs = c.optNumber(o.observers, '$.membership.observers', 0, 100_000, true)
    if (hb !== undefined) membership.heartbeatMs = hb
    if (obs !== undefined) membership.observers = obs
  }

  const s: Scenario = { name, seed, durationS, regions, interRegion, consensus, workload }
  if (description !== undefined) s.description = description
  if (superPeers !== undefined) s.superPeers = superPeers
  if (topology !== undefined) s.topology = topology
  if (byzantine !== undefined) s.byzantine = byzantine
  if (churn !== undefined) s.churn = churn
  if (partitions !== undefined) s.partitions = partitions
  if (gossip !== undefined) s.gossip = gossip
  if (membership !== undefined) s.membership = membership
  return s
}

/** Reads and validates a scenario file; a bare name (`local-5`) means a shipped scenario. */
export function loadScenario (fileOrName: string): Scenario {
  const file = resolveScenarioPath(fileOrName)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ScenarioError(code === 'ENOENT' ? `${fileOrName}: scenario file not found (shipped: ${shippedScenarios().join(', ')})` : `${file}: cannot read scenario: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ScenarioError(`${file}: not valid JSON (${(err as Error).message.replace(/\s+/g, ' ').trim()})`)
  }
  return validateScenario(json, file)
}

export const SCENARIO_DIR = new URL('./scenarios/', import.meta.url)

export function shippedScenarios (): string[] {
  return ['local-5', 'regional-50', 'regional-3x100', 'byzantine-31', 'partition-heal', 'planet-1m']
}

function resolveScenarioPath (fileOrName: string): string {
  if (/^[A-Za-z0-9][\w.-]*$/.test(fileOrName) && !fileOrName.endsWith('.json')) {
    return new URL(`${fileOrName}.json`, SCENARIO_DIR).pathname
  }
  return fileOrName
}

export function totalNodes (s: Scenario): number {
  return s.regions.reduce((sum, r) => sum + r.nodes, 0)
}

/** Shares `total` out in proportion to `weights` (largest remainder), then lifts any share below `min` to it, taking from the largest. */
export function apportion (total: number, weights: readonly number[], min = 0): number[] {
  const sum = weights.reduce((a, b) => a + b, 0)
  const exact = weights.map(w => sum === 0 ? total / weights.length : (total * w) / sum)
  const out = exact.map(x => Math.floor(x))
  let left = total - out.reduce((a, b) => a + b, 0)
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i)
  for (let k = 0; left > 0 && order.length > 0; k = (k + 1) % order.length, left--) out[order[k]!.i]!++
  for (let i = 0; i < out.length; i++) {
    while (out[i]! < min) {
      let big = 0
      for (let j = 1; j < out.length; j++) if (out[j]! > out[big]!) big = j
      if (out[big]! <= min) return out
      out[big]!--
      out[i]!++
    }
  }
  return out
}

/**
 * The scenario with its regions scaled to `nodes` in all (proportionally, at least one node per
 * region), super-peers scaled alike (at least one per bridged region), validators and
 * observers capped at the node count. The result is validated again.
 */
export function scaleScenario (s: Scenario, nodes: number): Scenario {
  if (!Number.isInteger(nodes) || nodes < s.regions.length || nodes > MAX_NODES) {
    throw new ScenarioError(`--nodes must be an integer from ${s.regions.length} (one per region) to ${MAX_NODES}, got ${nodes}`)
  }
  const before = totalNodes(s)
  if (nodes === before) return s
  const counts = apportion(nodes, s.regions.map(r => r.nodes), 1)
  const out: Scenario = structuredClone(s)
  out.regions.forEach((r, i) => { r.nodes = counts[i]! })
  if (out.superPeers !== undefined && out.superPeers.count > 0) {
    const bridged = out.regions.filter(r => out.superPeers!.bridges.includes(r.name)).reduce((a, r) => a + r.nodes, 0)
    const scaled = Math.round((s.superPeers!.count * nodes) / before)
    out.superPeers.count = Math.min(bridged, Math.max(out.superPeers.bridges.length, scaled))
  }
  out.consensus.validators = Math.min(out.consensus.validators, nodes)
  if (out.byzantine !== undefined) {
    let room = out.consensus.validators
    for (const b of out.byzantine) { b.count = Math.min(b.count, room); room -= b.count }
  }
  if (out.membership?.observers !== undefined) out.membership.observers = Math.min(out.membership.observers, nodes)
  return validateScenario(out, `${s.name} scaled to ${nodes} nodes`)
}

export function scenarioLabel (file: string): string {
  return basename(file).replace(/\.json$/, '')
}
