import { initHome, resolveHome } from '../../node/home.ts'
import { parse, str } from '../args.ts'
import { emit, passphrase } from '../output.ts'

export const usage = 'bizra init [--home DIR] [--json]   create the node home: identity, swarm key, API token'

export async function run (argv: string[]): Promise<number> {
  const { values } = parse(argv, {}, 'init')
  const home = resolveHome(str(values, 'home'))
  const { identity, created, paths } = await initHome(home, passphrase())
  emit(values.json === true, { home, peerId: identity.id, created, changed: created.length > 0 }, () =>
    created.length > 0
      ? `Initialised ${home}: created ${created.join(', ')}\nPeerId: ${identity.id}\nSwarm key: ${paths.swarmKey} (share it only with nodes of your federation)`
      : `${home} is already initialised; nothing changed.\nPeerId: ${identity.id}`)
  return 0
}
