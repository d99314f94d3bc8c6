import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { BizraNode } from '../../src/node/node.ts'
import type { NodeConfig } from '../../src/node/config.ts'
import type { NodeEvent } from '../../src/node/types.ts'
import { formatSwarmKey, generateSwarmKey } from '../../src/net/swarm-key.ts'

export const BIN = fileURLToPath(new URL('../../bin/bizra.mjs', import.meta.url))

export function tempDir (prefix = 'bizra-'): string {
  // short paths: Unix socket paths are limited to ~107 bytes
  return mkdtempSync(join(tmpdir(), prefix))
}

/** Writes a fresh swarm key file and returns its path. */
export function swarmKeyFile (dir = tempDir('bz-key-')): string {
  const file = join(dir, 'swarm.key')
  writeFileSync(file, formatSwarmKey(generateSwarmKey()), { mode: 0o600 })
  return file
}

export interface TestNodeOptions {
  swarmKey: string
  bootstrap?: string[]
  api?: boolean
  ipc?: boolean
  heartbeatMs?: number
  home?: string
  config?: Partial<NodeConfig>
}

/** A real node on 127.0.0.1, OS-chosen ports, quiet logs, fast heartbeats. */
export async function startTestNode (o: TestNodeOptions): Promise<BizraNode> {
  return BizraNode.start({
    home: o.home ?? tempDir('bz-n-'),
    logger: false,
    ipc: o.ipc ?? false,
    config: {
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: o.bootstrap ?? [],
      api: o.api === true ? '127.0.0.1:0' : null,
      swarmKey: o.swarmKey,
      heartbeatMs: o.heartbeatMs ?? 200,
      ...o.config
    }
  })
}

/**
 * Resolves when `check()` holds, re-checking on every node event (and on a slow fallback
 * tick for conditions no event announces); rejects after `timeoutMs` with `what`.
 */
export async function until (nodes: BizraNode[], check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  if (check()) return
  await new Promise<void>((resolve, reject) => {
    const offs: Array<() => void> = []
    const done = (err?: Error): void => {
      for (const off of offs) off()
      clearInterval(tick)
      clearTimeout(timer)
      if (err === undefined) resolve()
      else reject(err)
    }
    const test = (): void => { if (check()) done() }
    for (const n of nodes) offs.push(n.onEvent((_e: NodeEvent) => test()))
    const tick = setInterval(test, 100)
    const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)), timeoutMs)
  })
}

export interface ChildNode {
  child: ChildProcess
  peerId: string
  addresses: string[]
  exited: Promise<number | null>
  stderr: () => string
}

/** Runs `bizra start --json` as a child process and resolves once it reports its addresses. */
export async function spawnNode (home: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildNode> {
  const child = spawn(process.execPath, [BIN, 'start', '--home', home, '--json', ...args], {
    env: { ...process.env, BIZRA_PASSPHRASE: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  const started = await new Promise<{ peerId: string, addresses: string[] }>((resolve, reject) => {
    let out = ''
    const onData = (d: Buffer): void => {
      out += d.toString()
      const line = out.split('\n').find(l => l.includes('"event":"started"'))
      if (line !== undefined) {
        child.stdout!.off('data', onData)
        resolve(JSON.parse(line))
      }
    }
    child.stdout!.on('data', onData)
    void exited.then(code => reject(new Error(`node exited with ${code} before starting: ${err}`)))
  })
  return { child, peerId: started.peerId, addresses: started.addresses, exited, stderr: () => err }
}

export interface CliResult { code: number | null, stdout: string, stderr: string }

/**
 * Runs the CLI without blocking this process's event loop: in-process nodes must keep
 * answering while the command talks to them.
 */
export async function cliAsync (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, BIZRA_PASSPHRASE: undefined, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>(resolve => child.on('close', c => resolve(c)))
  return { code, stdout, stderr }
}
