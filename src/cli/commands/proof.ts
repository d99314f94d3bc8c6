import { isHash } from '../../state/dag.ts'
import { verifyProof } from '../../state/proof.ts'
import { parse, parseJson, readInput, str, UsageError, type Values } from '../args.ts'
import { emit } from '../output.ts'

export const usage = [
  'bizra proof verify FILE|- [--head HASH] [--payload-hash HASH]   check a session DAG proof offline; exit 0 valid, 1 invalid'
].join('\n')

const OPTIONS = {
  head: { type: 'string' },
  'payload-hash': { type: 'string' }
} as const

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'proof')
  const [sub, file] = positionals
  if (sub !== 'verify') throw new UsageError(`usage:\n${usage}`)
  if (file === undefined || positionals.length > 2) throw new UsageError('proof verify: give one FILE (or - for stdin)')
  const head = hashOption(values, 'head')
  const payloadHash = hashOption(values, 'payload-hash')
  const proof = unwrap(parseJson(readInput(file, 'proof'), file === '-' ? 'stdin' : file))
  const check = verifyProof(proof, { head, payloadHash })
  if (check.ok) {
    const nodes = (proof as { nodes: unknown[] }).nodes.length
    emit(values.json === true, { valid: true, head: check.head, nodes }, `valid: head ${check.head} (${nodes} nodes)`)
    return 0
  }
  emit(values.json === true, { valid: false, reason: check.reason }, `invalid: ${check.reason}`)
  return 1
}

/**
 * The proof in a bare proof, in anything carrying it as `proof` (an A2A task result), or in a
 * PCI envelope's payload. The envelope's signature is not checked here (bizra envelope verify).
 */
function unwrap (input: unknown): unknown {
  const field = (o: unknown, name: string): unknown =>
    o !== null && typeof o === 'object' && !Array.isArray(o) && Object.hasOwn(o, name) ? (o as Record<string, unknown>)[name] : undefined
  return field(input, 'proof') ?? field(field(input, 'payload'), 'proof') ?? input
}

function hashOption (values: Values, name: string): string | undefined {
  const v = str(values, name)
  if (v !== undefined && !isHash(v)) throw new UsageError(`--${name} must be a lowercase hex 32-byte hash, got ${JSON.stringify(v)}`)
  return v
}
