import { mkdirSync, readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { basename, dirname, join, resolve } from 'node:path'
import { homePaths, resolveHome } from '../../node/home.ts'
import { ipcRequest, NodeNotRunningError } from '../../node/ipc.ts'
import { makeTinyLlama } from '../../../native/gguf/tiny-llama.ts'
import { describeModel, listModelFiles, type ModelEntry } from '../../inference/model-store.ts'
import { FileError, writeFileExclusive } from '../../util/fs.ts'
import { numberOption, parse, str, UsageError, type Parsed } from '../args.ts'
import { emit } from '../output.ts'

export const usage = [
  'bizra models list                     GGUF files in <home>/models with size, parameters, quantisation and tier (and which the running node has loaded)',
  'bizra models load NAME|FILE           load a model into the running node (a progress bar on stderr)',
  'bizra models unload NAME              unload a model from the running node',
  'bizra models make-tiny [--out FILE] [--seed N]   write a tiny random llama model (~0.5 MB; default <home>/models/tiny-<seed>.gguf)'
].join('\n')

const OPTIONS = {
  out: { type: 'string' },
  seed: { type: 'string' }
} as const

const DEFAULT_SEED = 42

type Subcommand = (args: Parsed) => Promise<number>

const SUBCOMMANDS: Record<string, Subcommand> = {
  list,
  load,
  unload,
  'make-tiny': makeTiny
}

const socketOf = (values: Parsed['values']): string => homePaths(resolveHome(str(values, 'home'))).socket

async function load ({ values, positionals }: Parsed): Promise<number> {
  const name = positionals[1]
  if (name === undefined || positionals.length > 2) throw new UsageError('models load: give one model NAME (a file in <home>/models) or FILE')
  // a path is taken from where the command runs; the node resolves a bare name in its home
  const model = name.includes('/') ? resolve(name) : name
  const bar = progressBar(`loading ${basename(name)}`)
  try {
    const m = await ipcRequest(socketOf(values), 'models.load', { model }, { timeoutMs: 30 * 60_000, onProgress: v => bar.update((v as { fraction?: number } | null)?.fraction) }) as { id: string, tier?: string, parameters?: number }
    bar.done()
    emit(values.json === true, m, `loaded ${m.id}${m.tier !== undefined ? ` (${m.tier}, ${formatCount(m.parameters ?? 0)} parameters)` : ''}`)
    return 0
  } finally {
    bar.done()
  }
}

async function unload ({ values, positionals }: Parsed): Promise<number> {
  const name = positionals[1]
  if (name === undefined || positionals.length > 2) throw new UsageError('models unload: give one model NAME')
  const r = await ipcRequest(socketOf(values), 'models.unload', { model: name }, { timeoutMs: 60_000 })
  emit(values.json === true, r, `unloaded ${name}`)
  return 0
}

/** A progress bar on stderr when it is a terminal; otherwise a line at each quarter. */
function progressBar (label: string): { update: (fraction: number | undefined) => void, done: () => void } {
  const tty = process.stderr.isTTY === true
  let last = -1
  let finished = false
  return {
    update (fraction) {
      if (finished || typeof fraction !== 'number' || !Number.isFinite(fraction)) return
      const pct = Math.max(0, Math.min(100, Math.floor(fraction * 100)))
      if (tty) {
        if (pct === last) return
        const width = 30
        const filled = Math.round((pct / 100) * width)
        process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}%`)
      } else if (Math.floor(pct / 25) > Math.floor(Math.max(last, 0) / 25) || (last < 0 && pct === 0)) {
        process.stderr.write(`${label}: ${pct}%\n`)
      }
      last = pct
    },
    done () {
      if (finished) return
      finished = true
      if (tty && last >= 0) process.stderr.write('\n')
    }
  }
}

export async function run (argv: string[]): Promise<number> {
  const args = parse(argv, OPTIONS, 'models')
  const sub = SUBCOMMANDS[args.positionals[0] ?? '']
  if (sub === undefined) throw new UsageError(`usage:\n${usage}`)
  return sub(args)
}

async function list ({ values, positionals }: Parsed): Promise<number> {
  if (positionals.length > 1) throw new UsageError('models list takes no arguments')
  const dir = homePaths(resolveHome(str(values, 'home'))).models
  const models = listModelFiles(dir)
  // which of them the running node has loaded, when one runs (the listing works without)
  let loaded: Array<{ id: string, path?: string }> = []
  try {
    loaded = (await ipcRequest(socketOf(values), 'models.list', {}, { timeoutMs: 5_000 }) as { loaded: typeof loaded }).loaded
  } catch (err) {
    if (!(err instanceof NodeNotRunningError)) throw err
  }
  const isLoaded = (file: string): boolean => loaded.some(l => l.path === file)
  const out = models.map(m => ({ ...m, loaded: isLoaded(m.file) }))
  const elsewhere = loaded.filter(l => !models.some(m => m.file === l.path))
  emit(values.json === true, [...out, ...elsewhere.map(l => ({ ...l, loaded: true }))], () => out.length === 0 && elsewhere.length === 0
    ? `no GGUF models in ${dir} (try: bizra models make-tiny)`
    : [`models in ${dir}:`, ...out.map(m => (m.loaded ? '* ' : '  ') + formatModel(m)), ...elsewhere.map(l => `* ${l.id}  ${l.path ?? ''}`), ...(loaded.length > 0 ? ['(* loaded in the running node)'] : [])].join('\n'))
  return 0
}

function formatModel (m: ModelEntry): string {
  const file = basename(m.file)
  if (!m.ok) return `${file}  UNREADABLE: ${m.error.startsWith(m.file) ? m.error.slice(m.file.length).replace(/^:\s*/, '') : m.error}`
  const ctx = m.contextLength === undefined ? '' : `  ctx ${m.contextLength}`
  return `${file}  ${m.tier}  ${m.architecture}  ${formatCount(m.parameterCount)} params  ${m.fileType}  ${formatBytes(m.sizeBytes)}${ctx}${m.name === undefined ? '' : `  "${m.name}"`}`
}

async function makeTiny ({ values, positionals }: Parsed): Promise<number> {
  if (positionals.length > 1) throw new UsageError('models make-tiny takes no arguments besides --out and --seed')
  const seed = numberOption(str(values, 'seed'), 'seed', 0, 0xffffffff, true) ?? DEFAULT_SEED
  const outFlag = str(values, 'out')
  if (outFlag === '') throw new UsageError('models make-tiny: --out needs a file name')
  const file = outFlag !== undefined ? resolve(outFlag) : join(homePaths(resolveHome(str(values, 'home'))).models, `tiny-${seed}.gguf`)
  const bytes = makeTinyLlama({ seed })
  const created = writeOnce(file, bytes)
  const info = describeModel(file)
  if (!info.ok) throw new FileError(file, `the model just written does not read back: ${info.error}`)
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  emit(values.json === true, { created, seed, sha256, ...info },
    `${created ? 'wrote' : 'unchanged (same seed, same bytes)'} ${file}: ${info.architecture} ${info.fileType}, ${formatCount(info.parameterCount)} parameters (${info.tier}), ${formatBytes(info.sizeBytes)}, seed ${seed}`)
  return 0
}

/**
 * Writes `bytes` to a new file. An existing file with the same bytes is left as it is (a model
 * is a pure function of its seed), a different one is never overwritten. Returns whether it wrote.
 */
function writeOnce (file: string, bytes: Buffer): boolean {
  let existing: Buffer | undefined
  try {
    existing = readFileSync(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') throw new FileError(file, `cannot read the existing file: ${(err as Error).message}`)
  }
  if (existing !== undefined) {
    if (existing.equals(bytes)) return false
    throw new FileError(file, 'already exists with other contents; refusing to overwrite it')
  }
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    writeFileExclusive(file, bytes, 0o644)
  } catch (err) {
    if (err instanceof FileError) throw err
    throw new FileError(file, `cannot write the model: ${(err as Error).message}`)
  }
  return true
}

function formatCount (n: number): string {
  for (const [unit, size] of [['B', 1e9], ['M', 1e6], ['K', 1e3]] as const) if (n >= size) return `${+(n / size).toPrecision(3)}${unit}`
  return String(n)
}

function formatBytes (n: number): string {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) if (n >= size) return `${+(n / size).toPrecision(3)} ${unit}`
  return `${n} B`
}
