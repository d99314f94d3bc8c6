import { resolve } from 'node:path'
import { resolveHome } from '../../node/home.ts'
import { BizraNode } from '../../node/node.ts'
import type { NodeConfig } from '../../node/config.ts'
import { parseHostPort } from '../../node/config.ts'
import { numberOption, parse, str, UsageError, type Values } from '../args.ts'
import { emit, passphrase } from '../output.ts'

export const usage = 'bizra start [--listen MA]... [--bootstrap MA]... [--api host:port|off] [--swarm-key FILE] [--genesis FILE] [--mdns] [--heartbeat-ms N]\n' +
  '            [--model FILE]... [--llm-url URL] [--log-level L]\n' +
  '                                      run the node in the foreground until Ctrl-C (SIGINT) or SIGTERM'

const OPTIONS = {
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  api: { type: 'string' },
  'swarm-key': { type: 'string' },
  genesis: { type: 'string' },
  mdns: { type: 'boolean' },
  'heartbeat-ms': { type: 'string' },
  model: { type: 'string', multiple: true },
  'llm-url': { type: 'string' },
  'log-level': { type: 'string' }
} as const

function list (values: Values, name: string): string[] | undefined {
  const v = values[name]
  return Array.isArray(v) ? v : undefined
}

/** Command-line flags as config overrides (undefined = not given). */
export function configFromFlags (values: Values): Partial<NodeConfig> {
  const api = str(values, 'api')
  if (api !== undefined && api !== 'off' && parseHostPort(api) === undefined) throw new UsageError(`--api must be host:port or off, got ${JSON.stringify(api)}`)
  const listen = list(values, 'listen')
  if (listen?.some(a => !a.startsWith('/')) === true) throw new UsageError('--listen takes a multiaddr such as /ip4/0.0.0.0/tcp/9000')
  const bootstrap = list(values, 'bootstrap')
  if (bootstrap?.some(a => !/\/p2p\/\w+$/.test(a)) === true) throw new UsageError('--bootstrap takes a multiaddr ending in /p2p/<PeerId>')
  const swarmKey = str(values, 'swarm-key')
  const genesis = str(values, 'genesis')
  const llmUrl = str(values, 'llm-url')
  if (llmUrl !== undefined && !/^https?:\/\/\S+$/.test(llmUrl)) throw new UsageError(`--llm-url must be an http(s) URL such as http://127.0.0.1:11434, got ${JSON.stringify(llmUrl)}`)
  return {
    listen,
    bootstrap,
    api: api === undefined ? undefined : api === 'off' ? null : api,
    swarmKey: swarmKey === undefined ? undefined : resolve(swarmKey),
    genesis: genesis === undefined ? undefined : resolve(genesis),
    mdns: values.mdns === true ? true : undefined,
    heartbeatMs: numberOption(str(values, 'heartbeat-ms'), 'heartbeat-ms', 100, 600_000, true),
    llmUrl,
    // a bare name is a file in <home>/models; a path is taken from where the command runs
    models: list(values, 'model')?.map(m => m.includes('/') ? resolve(m) : m),
    logLevel: str(values, 'log-level')
  }
}

export async function run (argv: string[]): Promise<number> {
  const { values } = parse(argv, OPTIONS, 'start')
  const home = resolveHome(str(values, 'home'))
  const node = await BizraNode.start({ home, passphrase: passphrase(), config: configFromFlags(values) })
  // signal handlers go in before the node says it is up: a supervisor may stop it at once
  // the handlers stay installed while stopping: Ctrl-C under `swarm up` reaches a node twice
  // (from the terminal and from its parent), and the second must not kill it mid-stop
  let stopping = false
  const stopped = new Promise<void>(resolveStop => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) return
      stopping = true
      process.stderr.write(`bizra: ${signal} received, stopping\n`)
      node.stop().then(resolveStop, err => {
        process.stderr.write(`bizra: error while stopping: ${(err as Error).message}\n`)
        resolveStop()
      })
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  const status = node.status()
  emit(values.json === true, { event: 'started', peerId: status.peerId, addresses: status.addresses, api: status.api, home, federationId: status.federationId }, () =>
    `BIZRA node ${status.peerId}\nfederation: ${status.federationId}\nhome: ${home}\n` +
    status.addresses.map(a => `listening on ${a}`).join('\n') +
    (status.api !== null ? `\nAPI on http://${status.api}/api/v1` : '') +
    '\nCtrl-C to stop.')
  await stopped
  emit(values.json === true, { event: 'stopped', peerId: status.peerId }, 'stopped')
  return 0
}
