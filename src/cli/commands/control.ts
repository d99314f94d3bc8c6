import { homePaths, resolveHome } from '../../node/home.ts'
import { ipcRequest } from '../../node/ipc.ts'
import type { NodeStatus, PeerView } from '../../node/types.ts'
import { parse, str, UsageError } from '../args.ts'
import { emit } from '../output.ts'

/** `status`, `peers` and `dial` talk to the running node over its IPC socket. */

async function call<T> (argv: string[], command: string, method: string, params?: (positionals: string[]) => unknown): Promise<{ json: boolean, result: T }> {
  const { values, positionals } = parse(argv, {}, command)
  const home = resolveHome(str(values, 'home'))
  const p = params?.(positionals)
  if (params === undefined && positionals.length > 0) throw new UsageError(`${command} takes no arguments`)
  const result = await ipcRequest(homePaths(home).socket, method, p, { timeoutMs: 20_000 }) as T
  return { json: values.json === true, result }
}

export const status = {
  usage: 'bizra status                          the running node: PeerId, addresses, API, state, peers',
  async run (argv: string[]): Promise<number> {
    const { json, result: s } = await call<NodeStatus>(argv, 'status', 'status')
    emit(json, s, () => `PeerId:     ${s.peerId}\nState:      ${s.state}\nFederation: ${s.federationId}\nPeers:      ${s.peers} (${s.connections} connections)\nAPI:        ${s.api ?? 'off'}\nUptime:     ${s.uptimeS} s\n` +
      s.addresses.map(a => `Listening:  ${a}`).join('\n'))
    return 0
  }
}

export const peers = {
  usage: 'bizra peers                           peers the running node knows, with membership state',
  async run (argv: string[]): Promise<number> {
    const { json, result } = await call<PeerView[]>(argv, 'peers', 'peers')
    emit(json, result.map(p => ({ peerId: p.peerId, state: p.state, addresses: p.addresses, belief: p.belief, connected: p.connected })), () =>
      result.length === 0
        ? 'no peers yet'
        : result.map(p => `${p.peerId}  ${p.state.padEnd(7)}  belief ${p.belief.toFixed(2)}  ${p.connected ? 'connected' : 'not connected'}  ${p.addresses[0] ?? ''}`).join('\n'))
    return 0
  }
}

export const dial = {
  usage: 'bizra dial MULTIADDR                  ask the running node to connect to a peer (/…/p2p/<PeerId>)',
  async run (argv: string[]): Promise<number> {
    const { json, result } = await call<{ peerId: string }>(argv, 'dial', 'dial', positionals => {
      if (positionals.length !== 1 || !positionals[0]!.startsWith('/')) throw new UsageError('dial: give one multiaddr, e.g. /ip4/127.0.0.1/tcp/9000/p2p/12D3KooW…')
      return { multiaddr: positionals[0] }
    })
    emit(json, result, `connected to ${result.peerId}`)
    return 0
  }
}
