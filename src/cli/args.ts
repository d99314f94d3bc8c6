import { parseArgs, type ParseArgsConfig } from 'node:util'
import { readFileSync } from 'node:fs'
import { readTextFile } from '../util/fs.ts'

/** Bad command-line input: printed as one line on stderr, exit code 2. */
export class UsageError extends Error {
  static override readonly name: string = 'UsageError'
  override readonly name: string = 'UsageError'
}

export type Options = NonNullable<ParseArgsConfig['options']>

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  home: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false }
} as const satisfies Options

export type Values = Record<string, string | boolean | string[] | undefined>

export interface Parsed {
  values: Values
  positionals: string[]
}

export function parse (argv: string[], options: Options, command: string): Parsed {
  const all: Options = { ...GLOBAL_OPTIONS, ...options }
  try {
    const { values, positionals } = parseArgs({ args: attachDashValues(argv, all), options: all, allowPositionals: true, strict: true })
    return { values: values as Values, positionals }
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message.split('\n')[0]}`)
  }
}

/**
 * `--sig -Xy…` or `--seed -1`: node's parseArgs calls a value that starts with a dash
 * ambiguous. A base64url signature starts with one 1 time in 32, so a value that is not itself
 * one of the command's options is attached as `--sig=-Xy…`.
 */
function attachDashValues (argv: string[], options: Options): string[] {
  const isOption = (a: string): boolean => {
    if (a.startsWith('--')) return Object.hasOwn(options, a.slice(2).split('=')[0]!)
    return a.length === 2 && Object.values(options).some(o => (o as { short?: string }).short === a[1])
  }
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const next = argv[i + 1]
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined
    if (name !== undefined && (options[name] as { type?: string } | undefined)?.type === 'string' && next !== undefined && next.startsWith('-') && next !== '-' && !isOption(next)) {
      out.push(`${a}=${next}`)
      i++
    } else {
      out.push(a)
    }
  }
  return out
}

/** A string option's value (undefined when absent). */
export function str (values: Values, name: string): string | undefined {
  const v = values[name]
  return typeof v === 'string' ? v : undefined
}

export function parseJson (text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${what} is not valid JSON (${(err as Error).message.split('\n')[0]})`)
  }
}

/** A number option within [min, max]; `integer` forbids fractions. */
export function numberOption (raw: string | undefined, name: string, min: number, max: number, integer = false): number | undefined {
  if (raw === undefined) return undefined
  const n = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(raw.trim()) ? Number(raw) : Number.NaN
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  }
  return n
}

export function required (value: string | undefined, name: string, command: string): string {
  if (value === undefined || value === '') throw new UsageError(`${command}: --${name} is required`)
  return value
}

/** Reads a file argument as UTF-8 text, or stdin for `-`. */
export function readInput (file: string, what: string): string {
  if (file === '-') return readStdin(what).toString('utf8')
  return readTextFile(file, what)
}

/** Reads a file argument as raw bytes, or stdin for `-`. */
export function readInputBytes (file: string, what: string): Uint8Array {
  if (file === '-') return readStdin(what)
  try {
    return readFileSync(file)
  } catch {
    return Buffer.from(readTextFile(file, what)) // rethrows the same failure as a FileError
  }
}

function readStdin (what: string): Buffer {
  try {
    return readFileSync(0)
  } catch (err) {
    throw new UsageError(`cannot read ${what} from stdin: ${(err as Error).message}`)
  }
}
