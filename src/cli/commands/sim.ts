import { resolve, join } from 'node:path'
import { numberOption, parse, str, UsageError } from '../args.ts'
import { emit } from '../output.ts'
import { loadScenario, ScenarioError, shippedScenarios, type Scenario } from '../../../simulator/scenario.ts'
import { EngineUnavailableError, ENGINE_NAMES, loadEngine, type Engine, type Progress } from '../../../simulator/engine.ts'
import { writeReport } from '../../../simulator/report/write.ts'
import type { Metrics } from '../../../simulator/report/metrics.ts'

export const usage = [
  'bizra sim run SCENARIO [--engine des|real] [--nodes N] [--out DIR] [--seed N]',
  '                                      simulate a federation (SCENARIO: a file, or ' + shippedScenarios().join(', ') + ');',
  '                                      writes DIR/metrics.json and DIR/report.html (default ./sim-out/<scenario>-<time>); exit 1 on a safety violation'
].join('\n')

const OPTIONS = {
  engine: { type: 'string', short: 'e' },
  nodes: { type: 'string', short: 'n' },
  out: { type: 'string', short: 'o' },
  seed: { type: 'string' }
} as const

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'sim')
  const [sub, file] = positionals
  if (sub !== 'run') throw new UsageError(`usage:\n${usage}`)
  if (file === undefined || positionals.length > 2) throw new UsageError('sim run: give one SCENARIO (a file or a shipped name)')
  const engineName = str(values, 'engine') ?? 'des'
  if (!ENGINE_NAMES.includes(engineName)) throw new UsageError(`--engine must be one of ${ENGINE_NAMES.join(', ')}, got ${JSON.stringify(engineName)}`)
  const nodes = numberOption(str(values, 'nodes'), 'nodes', 1, 2_000_000, true)
  const seed = numberOption(str(values, 'seed'), 'seed', 0, 2 ** 32 - 1, true)
  const json = values.json === true

  let scenario: Scenario
  let engine: Engine
  try {
    scenario = loadScenario(file)
    engine = await loadEngine(engineName)
  } catch (err) {
    if (err instanceof ScenarioError || err instanceof EngineUnavailableError) throw new UsageError(err.message)
    throw err
  }
  if (seed !== undefined) scenario = { ...scenario, seed }
  const out = resolve(str(values, 'out') ?? join('sim-out', `${scenario.name}-${stamp(new Date())}`))

  const progress = progressReporter(`${engine.name} ${scenario.name}`)
  let metrics: Metrics
  try {
    metrics = await engine.run(scenario, { ...(nodes !== undefined ? { nodes } : {}), onProgress: progress.update })
  } catch (err) {
    progress.clear()
    if (err instanceof ScenarioError) throw new UsageError(err.message)
    throw err
  }
  progress.done()
  const files = writeReport(out, metrics)
  const c = metrics.consensus
  emit(json, { out, files, metrics }, () => [
    `${metrics.engine} ${metrics.scenario} (seed ${metrics.seed}, ${metrics.nodes} nodes, ${metrics.simulatedS} s simulated) in ${metrics.host.wallS} s wall, ${metrics.eventsProcessed} events (${metrics.host.eventsPerSec}/s), peak RSS ${metrics.host.peakRssMb} MB`,
    `  propagation p50 ${metrics.propagation.all.p50} ms, p99 ${metrics.propagation.all.p99} ms; coverage ${(metrics.propagation.coverage.mean * 100).toFixed(2)}%`,
    `  consensus: ${c.committed}/${c.proposals} committed, ${c.expired} expired, commit p50 ${c.commitLatencyMs.p50} ms p99 ${c.commitLatencyMs.p99} ms; safety violations ${c.safetyViolations}`,
    `  tasks: ${metrics.tasks.succeeded}/${metrics.tasks.succeeded + metrics.tasks.failed} succeeded, p50 ${metrics.tasks.latencyMs.p50} ms`,
    `  wrote ${files.metrics}`,
    `  wrote ${files.report}`
  ].join('\n'))
  if (c.safetyViolations > 0) {
    process.stderr.write(`bizra: ${c.safetyViolations} safety violation(s): conflicting certificates (see ${files.report})\n`)
    return 1
  }
  return 0
}

function stamp (d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
}

/** A bar on a TTY (redrawn in place); otherwise a plain line at every tenth of the run. */
function progressReporter (label: string): { update: (p: Progress) => void, clear: () => void, done: () => void } {
  const tty = process.stderr.isTTY === true
  let lastDecile = -1
  let drawn = false
  const line = (p: Progress): string =>
    `${label}: ${(p.fraction * 100).toFixed(0).padStart(3)}%  ${(p.simulatedMs / 1000).toFixed(1)}/${(p.totalMs / 1000).toFixed(1)} s simulated, ${p.events} events, ${p.wallS.toFixed(1)} s wall`
  return {
    update (p) {
      if (tty) {
        const width = 30
        const full = Math.round(p.fraction * width)
        process.stderr.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${line(p)}\x1b[K`)
        drawn = true
      } else {
        const decile = Math.floor(p.fraction * 10)
        if (decile > lastDecile) {
          lastDecile = decile
          process.stderr.write(line(p) + '\n')
        }
      }
    },
    clear () {
      if (drawn) process.stderr.write('\r\x1b[K')
      drawn = false
    },
    done () {
      if (drawn) process.stderr.write('\n')
      drawn = false
    }
  }
}
