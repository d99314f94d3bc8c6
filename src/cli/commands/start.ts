import { initHome, resolveHome } from '../../node/home.ts'
import { parse, str } from '../args.ts'
import { emit, passphrase } from '../output.ts'

export const usage = 'bizra start [--home DIR] [--json]   start the node (for now: set up the home and print the identity)'

export async function run (argv: string[]): Promise<number> {
  const { values } = parse(argv, {}, 'start')
  const home = resolveHome(str(values, 'home'))
  const { identity, created } = await initHome(home, passphrase())
  emit(values.json === true, { home, peerId: identity.id, created }, () =>
    `BIZRA node ${identity.id}\nhome: ${home}${created.length > 0 ? ` (created ${created.join(', ')})` : ''}\n` +
    'Networking arrives with the next release; this node has its identity and keys ready.')
  return 0
}
