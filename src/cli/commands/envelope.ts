import { openIdentity, resolveHome } from '../../node/home.ts'
import { AGENTS, createEnvelope, EnvelopeError, verifyEnvelope, type Agent } from '../../pci/envelope.ts'
import { REJECT_NAMES } from '../../pci/codes.ts'
import { numberOption, parse, parseJson, readInput, required, str, UsageError } from '../args.ts'
import { emit, passphrase } from '../output.ts'

export const usage = [
  'bizra envelope create --payload JSON [--type T] [--agent USER|MODEL|SOVEREIGN] [--ttl S] [--ihsan X] [--snr X]',
  'bizra envelope verify FILE|-      prints { ok, code?, reason? }; exit 0 valid, 1 rejected (needs no home)'
].join('\n')

const OPTIONS = {
  payload: { type: 'string', short: 'p' },
  type: { type: 'string' },
  agent: { type: 'string' },
  ttl: { type: 'string' },
  ihsan: { type: 'string' },
  snr: { type: 'string' }
} as const

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'envelope')
  const [sub, ...rest] = positionals
  if (sub === 'create') {
    const payload = parseJson(required(str(values, 'payload'), 'payload', 'envelope create'), '--payload')
    const agent = str(values, 'agent') ?? 'USER'
    if (!(AGENTS as readonly string[]).includes(agent)) throw new UsageError(`--agent must be one of ${AGENTS.join(', ')}`)
    const ttl = numberOption(str(values, 'ttl'), 'ttl', 1, 3600, true)
    const ihsan = numberOption(str(values, 'ihsan'), 'ihsan', 0, 1)
    const snr = numberOption(str(values, 'snr'), 'snr', 0, 1)
    const identity = await openIdentity(resolveHome(str(values, 'home')), passphrase())
    let envelope
    try {
      envelope = createEnvelope(identity, { payload, type: str(values, 'type'), agent: agent as Agent, ttl, ihsan, snr })
    } catch (err) {
      if (err instanceof EnvelopeError) throw new UsageError(`envelope create: ${err.message}`)
      throw err
    }
    process.stdout.write(JSON.stringify(envelope) + '\n')
    return 0
  }
  if (sub === 'verify') {
    const source = rest[0]
    if (source === undefined || rest.length > 1) throw new UsageError('envelope verify: give one FILE (or - for stdin)')
    const input = parseJson(readInput(source, 'envelope'), source === '-' ? 'stdin' : source)
    const result = verifyEnvelope(input)
    if (result.ok) {
      emit(values.json === true, { ok: true }, () => JSON.stringify({ ok: true }))
      return 0
    }
    const out = { ok: false, code: result.code, reason: result.reason }
    emit(values.json === true, out, () => JSON.stringify({ ...out, name: REJECT_NAMES[result.code] }))
    return 1
  }
  throw new UsageError(`usage:\n${usage}`)
}
