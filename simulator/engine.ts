import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Scenario } from './scenario.ts'
import type { Metrics } from './report/metrics.ts'

export type { Metrics } from './report/metrics.ts'

/** How far a run has got, reported now and then while it runs. */
export interface Progress {
  /** simulated (des) or elapsed (real) ms so far, and in all */
  simulatedMs: number
  totalMs: number
  /** 0..1 */
  fraction: number
  /** events processed so far (des), messages delivered (real) */
  events: number
  /** wall seconds since the run started */
  wallS: number
}

export interface RunOptions {
  /** scale the scenario's regions to this many nodes in all (scaleScenario) */
  nodes?: number
  onProgress?: (p: Progress) => void
  /** stops the run early; the promise rejects with the signal's reason */
  signal?: AbortSignal
}

/**
 * A simulation engine. Both engines take the same scenario and report the same Metrics, so a
 * small scenario can be run on both and compared. An engine module exports `engine: Engine`.
 */
export interface Engine {
  readonly name: string
  run: (scenario: Scenario, options?: RunOptions) => Promise<Metrics>
}

export class EngineUnavailableError extends Error {
  static override readonly name: string = 'EngineUnavailableError'
  override readonly name: string = 'EngineUnavailableError'
}

/**
 * Engines by name: each entry is the module that exports `engine`. `real` (full BizraNode
 * instances over @libp2p/memory) plugs in by adding simulator/real/engine.ts; until then
 * asking for it says so.
 */
const ENGINE_MODULES: Record<string, URL> = {
  des: new URL('./des/engine.ts', import.meta.url),
  real: new URL('./real/engine.ts', import.meta.url)
}

export const ENGINE_NAMES = Object.keys(ENGINE_MODULES)

export function engineAvailable (name: string): boolean {
  const url = ENGINE_MODULES[name]
  return url !== undefined && existsSync(fileURLToPath(url))
}

export async function loadEngine (name: string): Promise<Engine> {
  const url = ENGINE_MODULES[name]
  if (url === undefined) throw new EngineUnavailableError(`unknown engine "${name}" (engines: ${ENGINE_NAMES.join(', ')})`)
  if (!engineAvailable(name)) throw new EngineUnavailableError(`engine ${name} is not available yet`)
  const mod = await import(url.href) as { engine?: Engine }
  if (mod.engine === undefined || typeof mod.engine.run !== 'function') throw new Error(`${fileURLToPath(url)} does not export an engine`)
  return mod.engine
}
