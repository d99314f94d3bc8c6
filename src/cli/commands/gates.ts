import { checkGates } from '../../governance/gates.ts'
import { DEFAULT_CONSTITUTION } from '../../governance/constitution.ts'
import { numberOption, parse, parseJson, required, str, UsageError } from '../args.ts'
import { emit } from '../output.ts'

export const usage = 'bizra gates check --tool NAME --input JSON [--ihsan X] [--snr X]   run Schema -> SNR -> Ihsan -> FATE; exit 0 passed, 1 blocked'

const OPTIONS = {
  tool: { type: 'string' },
  input: { type: 'string' },
  ihsan: { type: 'string' },
  snr: { type: 'string' }
} as const

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'gates')
  if (positionals[0] !== 'check' || positionals.length > 1) throw new UsageError(`usage: ${usage}`)
  const tool = required(str(values, 'tool'), 'tool', 'gates check')
  const input = parseJson(required(str(values, 'input'), 'input', 'gates check'), '--input')
  const ihsan = numberOption(str(values, 'ihsan'), 'ihsan', 0, 1) ?? DEFAULT_CONSTITUTION.ihsan
  const snr = numberOption(str(values, 'snr'), 'snr', 0, 1) ?? DEFAULT_CONSTITUTION.snr
  const result = checkGates({ tool, input, ihsan, snr })
  emit(values.json === true, result, () => {
    const f = result.scores.fate
    const scores = f === undefined ? '' : `\nFATE ${f.score.toFixed(3)} (threshold ${f.threshold}): fidelity ${f.fidelity}, accountability ${f.accountability}, transparency ${f.transparency}, ethics ${f.ethics}`
    const findings = (result.findings ?? []).map(x => `\n  - ${x.rule} (${x.dimension}, ${x.severity}) at ${x.at}`).join('')
    return (result.passed ? `PASSED ${tool}` : `BLOCKED ${tool} at ${result.gate} gate: ${result.code} ${result.reason}`) + scores + findings
  })
  return result.passed ? 0 : 1
}
