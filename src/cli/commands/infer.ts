import { homePaths, resolveHome } from '../../node/home.ts'
import { ipcRequest } from '../../node/ipc.ts'
import { numberOption, parse, str, UsageError } from '../args.ts'

export const usage = 'bizra infer "PROMPT" [--tier T] [--max-tokens N] [--temperature X] [--seed N] [--system TEXT]   generate on this node\'s model, or a peer\'s; streams to the terminal'

const OPTIONS = {
  tier: { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  seed: { type: 'string' },
  system: { type: 'string' }
} as const

const TIERS = ['NANO', 'MICRO', 'MESO', 'MACRO', 'MEGA']

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'infer')
  if (positionals.length !== 1 || positionals[0] === '') throw new UsageError('infer: give one PROMPT (quote it)')
  const tier = str(values, 'tier')?.toUpperCase()
  if (tier !== undefined && !TIERS.includes(tier)) throw new UsageError(`infer: --tier must be one of ${TIERS.join(', ')}`)
  const maxTokens = numberOption(str(values, 'max-tokens'), 'max-tokens', 1, 8192, true) ?? 256
  const temperature = numberOption(str(values, 'temperature'), 'temperature', 0, 2)
  const seed = numberOption(str(values, 'seed'), 'seed', 0, Number.MAX_SAFE_INTEGER, true)
  const system = str(values, 'system')
  const messages = [...(system !== undefined ? [{ role: 'system', content: system }] : []), { role: 'user', content: positionals[0] }]
  const json = values.json === true
  const socket = homePaths(resolveHome(str(values, 'home'))).socket
  let streamed = false
  const result = await ipcRequest(socket, 'inference.chat', { messages, maxTokens, temperature, seed, tier }, {
    timeoutMs: 15 * 60_000,
    onProgress: json
      ? undefined
      : (v) => {
          const token = (v as { token?: unknown } | null)?.token
          if (typeof token === 'string') {
            streamed = true
            process.stdout.write(token)
          }
        }
  }) as { text: string, provider: string, model: string, tokens: number, firstTokenMs: number | null }
  if (json) {
    process.stdout.write(JSON.stringify(result) + '\n')
  } else {
    if (!streamed) process.stdout.write(result.text)
    process.stdout.write('\n')
    process.stderr.write(`(${result.tokens} tokens from ${result.model} on ${result.provider})\n`)
  }
  return 0
}
