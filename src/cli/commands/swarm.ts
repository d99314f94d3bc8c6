import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { initHome } from '../../node/home.ts'
import { formatSwarmKey, generateSwarmKey } from '../../net/swarm-key.ts'
import { DEFAULT_CONSTITUTION } from '../../governance/constitution.ts'
import { writeFileExclusive } from '../../util/fs.ts'
import { numberOption, parse, str, UsageError, type Values } from '../args.ts'
import { emit } from '../output.ts'

export const usage = [
  'bizra swarm create --nodes N --out DIR [--base-port P] [--api-base-port A] [--federation ID]',
  '                                      a federation on this machine: DIR/swarm.key, DIR/genesis.json, homes DIR/node1..N',
  'bizra swarm up DIR                    start every DIR/node* as a child process; Ctrl-C stops them all'
].join('\n')

const OPTIONS = {
  nodes: { type: 'string', short: 'n' },
  out: { type: 'string', short: 'o' },
  'base-port': { type: 'string' },
  'api-base-port': { type: 'string' },
  federation: { type: 'string' }
} as const

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'swarm')
  const [sub, dirArg] = positionals
  if (sub === 'create') return create(values)
  if (sub === 'up') {
    if (dirArg === undefined || positionals.length > 2) throw new UsageError('swarm up: give the federation DIR')
    return up(resolve(dirArg), values.json === true)
  }
  throw new UsageError(`usage:\n${usage}`)
}

async function create (values: Values): Promise<number> {
  const n = numberOption(str(values, 'nodes'), 'nodes', 1, 1000, true)
  if (n === undefined) throw new UsageError('swarm create: --nodes is required')
  const outArg = str(values, 'out')
  if (outArg === undefined) throw new UsageError('swarm create: --out is required')
  const basePort = numberOption(str(values, 'base-port'), 'base-port', 1, 65535 - n, true) ?? 9000
  const apiBase = numberOption(str(values, 'api-base-port'), 'api-base-port', 1, 65535 - n, true) ?? 3001
  const federationId = str(values, 'federation') ?? 'local-federation'
  if (!/^[A-Za-z0-9][\w.-]{0,63}$/.test(federationId)) throw new UsageError('--federation must be 1-64 characters [A-Za-z0-9_.-]')
  const dir = resolve(outArg)
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new UsageError(`${dir} exists and is not empty; choose a new --out`)
  mkdirSync(dir, { recursive: true, mode: 0o700 })

  writeFileExclusive(join(dir, 'swarm.key'), formatSwarmKey(generateSwarmKey()), 0o600)
  const nodes: Array<{ name: string, peerId: string, listen: string, api: string }> = []
  for (let k = 1; k <= n; k++) {
    const home = join(dir, `node${k}`)
    const { identity } = await initHome(home)
    const node = { name: `node${k}`, peerId: identity.id, listen: `/ip4/127.0.0.1/tcp/${basePort + k - 1}`, api: `127.0.0.1:${apiBase + k - 1}` }
    nodes.push(node)
    writeFileExclusive(join(home, 'config.json'), JSON.stringify({ listen: [node.listen], api: node.api, swarmKey: '../swarm.key', genesis: '../genesis.json' }, null, 2) + '\n', 0o600)
  }
  const genesis = {
    federationId,
    validators: nodes.map(x => x.peerId),
    constitution: { ihsan: DEFAULT_CONSTITUTION.ihsan, snr: DEFAULT_CONSTITUTION.snr, gini: DEFAULT_CONSTITUTION.gini },
    bootstrap: [`${nodes[0]!.listen}/p2p/${nodes[0]!.peerId}`]
  }
  writeFileSync(join(dir, 'genesis.json'), JSON.stringify(genesis, null, 2) + '\n', { mode: 0o644 })
  emit(values.json === true, { dir, federationId, nodes }, () =>
    `Created federation ${federationId} of ${n} in ${dir}\n` + nodes.map(x => `  ${x.name}  ${x.peerId}  ${x.listen}  api ${x.api}`).join('\n') +
    `\nStart one with: bizra start --home ${join(dir, 'node1')}\nor all:         bizra swarm up ${dir}`)
  return 0
}

async function up (dir: string, json: boolean): Promise<number> {
  if (!existsSync(join(dir, 'genesis.json'))) throw new UsageError(`${dir} has no genesis.json; create it with: bizra swarm create --nodes N --out ${dir}`)
  const homes = readdirSync(dir).filter(d => /^node\d+$/.test(d)).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
  if (homes.length === 0) throw new UsageError(`${dir} has no node homes (node1, node2, ...)`)
  const bin = fileURLToPath(new URL('../../../bin/bizra.mjs', import.meta.url))
  const children: ChildProcess[] = []
  const exits: Array<Promise<number | null>> = []
  for (const h of homes) {
    const child = spawn(process.execPath, [bin, 'start', '--home', join(dir, h), '--json'], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    exits.push(new Promise(resolve => child.on('exit', code => resolve(code))))
    child.stdout!.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(l => l.length > 0)) {
        process.stdout.write(json ? `${JSON.stringify({ node: h, ...safeJson(line) })}\n` : `[${h}] ${line}\n`)
      }
    })
  }
  const stopAll = (signal: NodeJS.Signals): void => {
    for (const c of children) if (c.exitCode === null) c.kill(signal)
  }
  process.on('SIGINT', () => stopAll('SIGTERM'))
  process.on('SIGTERM', () => stopAll('SIGTERM'))
  const codes = await Promise.all(exits)
  emit(json, { event: 'stopped', codes }, `all ${homes.length} nodes stopped`)
  return codes.every(c => c === 0) ? 0 : 1
}

function safeJson (line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>
  } catch {
    return { line }
  }
}
