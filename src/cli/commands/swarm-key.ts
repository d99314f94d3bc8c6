import { formatSwarmKey, generateSwarmKey } from '../../net/swarm-key.ts'
import { writeFileExclusive } from '../../util/fs.ts'
import { parse, str, UsageError } from '../args.ts'
import { emit } from '../output.ts'
import { resolve } from 'node:path'

export const usage = 'bizra swarm-key generate [--out FILE]   new pre-shared swarm key (IPFS format); stdout unless --out'

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' } }, 'swarm-key')
  if (positionals[0] !== 'generate' || positionals.length > 1) throw new UsageError(`usage: ${usage}`)
  const text = formatSwarmKey(generateSwarmKey())
  const out = str(values, 'out')
  if (out === undefined) {
    if (values.json === true) emit(true, { swarmKey: text }, '')
    else process.stdout.write(text)
    return 0
  }
  const path = resolve(out)
  writeFileExclusive(path, text, 0o600)
  emit(values.json === true, { file: path }, `Wrote swarm key to ${path} (mode 0600)`)
  return 0
}
