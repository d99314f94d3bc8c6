import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Metrics } from './metrics.ts'
import { renderReport } from './html.ts'

/** Writes DIR/metrics.json and DIR/report.html (creating DIR); returns their paths. */
export function writeReport (dir: string, metrics: Metrics): { metrics: string, report: string } {
  mkdirSync(dir, { recursive: true })
  const files = { metrics: join(dir, 'metrics.json'), report: join(dir, 'report.html') }
  writeFileSync(files.metrics, JSON.stringify(metrics, null, 2) + '\n')
  writeFileSync(files.report, renderReport(metrics))
  return files
}
