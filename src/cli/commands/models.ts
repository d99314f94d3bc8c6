import { mkdirSync, readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { basename, dirname, join, resolve } from 'node:path'
import { homePaths, resolveHome } from '../../node/home.ts'
import { makeTinyLlama } from '../../../native/gguf/tiny-llama.ts'
import { describeModel, listModelFiles, type ModelEntry } from '../../inference/model-store.ts'
import { FileError, writeFileExclusive } from '../../util/fs.ts'
import { numberOption, parse, str, UsageError, type Parsed } from '../args.ts'
import { emit } from '../output.ts'

export const usage = [
  'bizra models list                     GGUF files in <home>/models with size, parameters, quantisation and tier',
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
  'make-tiny': makeTiny
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
  emit(values.json === true, models, () => models.length === 0 ? `no GGUF models in ${dir} (try: bizra models make-tiny)` : [`models in ${dir}:`, ...models.map(formatModel)].join('\n'))
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
