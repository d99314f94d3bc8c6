/**
 * The node's model files: GGUF files in `<home>/models` (DESIGN.md "Inference"), listed with
 * their header metadata and tier. Reads headers only, never weights.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { readGgufInfo, type GgufInfo } from '../../native/gguf/reader.ts'
import { tierForParameters, type Tier } from './tiers.ts'
import { FileError } from '../util/fs.ts'

/** A model file: its header metadata and tier, or (ok: false) why it cannot be read; `error` names the file. */
export type ModelEntry =
  | ({ ok: true, tier: Tier } & GgufInfo)
  | { ok: false, file: string, error: string }

/** Every `*.gguf` in `dir`, by file name; an unreadable file is an entry with its error. A missing dir is empty. */
export function listModelFiles (dir: string): ModelEntry[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new FileError(dir, `cannot list models: ${(err as Error).message}`)
  }
  return names.filter(n => n.toLowerCase().endsWith('.gguf')).sort().map(n => describeModel(join(dir, n)))
}

export function describeModel (file: string): ModelEntry {
  try {
    const info = readGgufInfo(file)
    return { ok: true, tier: tierForParameters(info.parameterCount), ...info }
  } catch (err) {
    return { ok: false, file, error: (err as Error).message }
  }
}
