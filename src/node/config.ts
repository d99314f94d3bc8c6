import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { FileError, readTextFile } from '../util/fs.ts'
import { parseBootstrapList } from './genesis.ts'

/** Where and how a node runs. Flags override `<home>/config.json`, which overrides defaults. */
export interface NodeConfig {
  listen: string[]
  bootstrap: string[]
  /** `host:port` of the REST/WS API, or null for none */
  api: string | null
  /** swarm key file (default `<home>/swarm.key`) */
  swarmKey: string | null
  /** genesis file, or null for a single-node federation */
  genesis: string | null
  mdns: boolean
  heartbeatMs: number
  /** how long a pattern proposal may gather votes before it expires */
  proposalTimeoutMs: number
  /** skill an A2A message without `metadata.skill` runs */
  defaultSkill: string
  /** name on this node's agent card, or null for `bizra-<PeerId suffix>` */
  name: string | null
  /** an OpenAI-compatible server to run inference on (Ollama, LM Studio, …) instead of the local worker */
  llmUrl: string | null
  /** bearer key for llmUrl, when the server wants one (default: $BIZRA_LLM_API_KEY) */
  llmApiKey: string | null
  /** GGUF files (in `<home>/models`, or paths) the worker loads at start */
  models: string[]
  /** tokens one peer may be served per minute by this node's `infer` skill */
  inferBudgetTokens: number
  logLevel: string
}

export const DEFAULT_CONFIG: Readonly<NodeConfig> = Object.freeze({
  listen: ['/ip4/0.0.0.0/tcp/9000'],
  bootstrap: [],
  api: '127.0.0.1:3001',
  swarmKey: null,
  genesis: null,
  mdns: false,
  heartbeatMs: 10_000,
  proposalTimeoutMs: 30_000,
  defaultSkill: 'echo',
  name: null,
  llmUrl: null,
  llmApiKey: null,
  models: [],
  inferBudgetTokens: 50_000,
  logLevel: 'info'
})

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Validates a partial config (from config.json or flags); `source` is named in errors. */
export function parseConfig (input: unknown, source: string, baseDir: string): Partial<NodeConfig> {
  const bad = (why: string): FileError => new FileError(source, why)
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw bad('config must be a JSON object')
  const c = input as Record<string, unknown>
  const out: Partial<NodeConfig> = {}
  for (const key of Object.keys(c)) {
    if (!(key in DEFAULT_CONFIG)) throw bad(`unknown config key "${key}"`)
  }
  if (c.listen !== undefined) {
    if (!Array.isArray(c.listen) || c.listen.length === 0 || !c.listen.every(a => typeof a === 'string' && a.startsWith('/'))) throw bad('listen must be a non-empty array of multiaddrs')
    out.listen = c.listen
  }
  if (c.bootstrap !== undefined) out.bootstrap = parseBootstrapList(c.bootstrap, bad)
  if (c.api !== undefined) {
    if (c.api !== null && (typeof c.api !== 'string' || parseHostPort(c.api) === undefined)) throw bad('api must be "host:port" or null')
    out.api = c.api as string | null
  }
  for (const key of ['swarmKey', 'genesis'] as const) {
    if (c[key] === undefined) continue
    if (c[key] !== null && typeof c[key] !== 'string') throw bad(`${key} must be a file path or null`)
    out[key] = c[key] === null ? null : resolve(baseDir, c[key] as string)
  }
  if (c.mdns !== undefined) {
    if (typeof c.mdns !== 'boolean') throw bad('mdns must be true or false')
    out.mdns = c.mdns
  }
  if (c.heartbeatMs !== undefined) {
    if (typeof c.heartbeatMs !== 'number' || !Number.isInteger(c.heartbeatMs) || c.heartbeatMs < 100 || c.heartbeatMs > 600_000) throw bad('heartbeatMs must be an integer from 100 to 600000')
    out.heartbeatMs = c.heartbeatMs
  }
  if (c.proposalTimeoutMs !== undefined) {
    if (typeof c.proposalTimeoutMs !== 'number' || !Number.isInteger(c.proposalTimeoutMs) || c.proposalTimeoutMs < 100 || c.proposalTimeoutMs > 3_600_000) throw bad('proposalTimeoutMs must be an integer from 100 to 3600000')
    out.proposalTimeoutMs = c.proposalTimeoutMs
  }
  if (c.defaultSkill !== undefined) {
    if (typeof c.defaultSkill !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(c.defaultSkill)) throw bad('defaultSkill must be a skill id (1-64 characters [a-z0-9._-])')
    out.defaultSkill = c.defaultSkill
  }
  if (c.name !== undefined) {
    if (c.name !== null && (typeof c.name !== 'string' || c.name.length === 0 || c.name.length > 128)) throw bad('name must be a string of 1-128 characters or null')
    out.name = c.name as string | null
  }
  if (c.llmUrl !== undefined) {
    if (c.llmUrl !== null && (typeof c.llmUrl !== 'string' || !/^https?:\/\/\S+$/.test(c.llmUrl))) throw bad('llmUrl must be an http(s) URL or null')
    out.llmUrl = c.llmUrl as string | null
  }
  if (c.llmApiKey !== undefined) {
    if (c.llmApiKey !== null && (typeof c.llmApiKey !== 'string' || c.llmApiKey === '')) throw bad('llmApiKey must be a non-empty string or null')
    out.llmApiKey = c.llmApiKey as string | null
  }
  if (c.models !== undefined) {
    if (!Array.isArray(c.models) || !c.models.every(m => typeof m === 'string' && m !== '')) throw bad('models must be a list of GGUF file names or paths')
    out.models = c.models as string[]
  }
  if (c.inferBudgetTokens !== undefined) {
    if (typeof c.inferBudgetTokens !== 'number' || !Number.isInteger(c.inferBudgetTokens) || c.inferBudgetTokens < 1) throw bad('inferBudgetTokens must be a positive integer')
    out.inferBudgetTokens = c.inferBudgetTokens
  }
  if (c.logLevel !== undefined) {
    if (typeof c.logLevel !== 'string' || !LOG_LEVELS.includes(c.logLevel)) throw bad(`logLevel must be one of ${LOG_LEVELS.join(', ')}`)
    out.logLevel = c.logLevel
  }
  return out
}

export function parseHostPort (s: string): { host: string, port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(s)
  if (m === null) return undefined
  const port = Number(m[2])
  if (port > 65535) return undefined
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port }
}

/** Reads `<home>/config.json` if present. */
export function loadHomeConfig (home: string): Partial<NodeConfig> {
  const path = join(home, 'config.json')
  if (!existsSync(path)) return {}
  let json: unknown
  try {
    json = JSON.parse(readTextFile(path, 'config'))
  } catch (err) {
    if (err instanceof FileError) throw err
    throw new FileError(path, 'config is not valid JSON')
  }
  return parseConfig(json, path, home)
}

export function resolveConfig (home: string, flags: Partial<NodeConfig>): NodeConfig {
  return { ...DEFAULT_CONFIG, ...loadHomeConfig(home), ...stripUndefined(flags) }
}

function stripUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
