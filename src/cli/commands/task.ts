import { homePaths, resolveHome } from '../../node/home.ts'
import { ipcRequest } from '../../node/ipc.ts'
import { partsText } from '../../a2a/cards.ts'
import type { AgentCard, TaskRecord } from '../../a2a/types.ts'
import { numberOption, parse, parseJson, str, UsageError, type Values } from '../args.ts'
import { emit } from '../output.ts'

export const usage = [
  'bizra task send --skill ID (--text T | --data JSON) [--to PEER] [--deadline S] [--wait]   route a task to a peer with the skill',
  'bizra task status ID                  a task this node sent: state, provider, attempts, result',
  'bizra task cancel ID                  cancel a task this node sent (on the provider too)'
].join('\n')

const OPTIONS = {
  skill: { type: 'string' },
  text: { type: 'string' },
  data: { type: 'string' },
  to: { type: 'string' },
  deadline: { type: 'string' },
  wait: { type: 'boolean', default: false }
} as const

const socket = (values: Values): string => homePaths(resolveHome(str(values, 'home'))).socket

/** One line per task for humans: `<id> <state> [on <provider>]`, then the output or the reason. */
export function describeTask (t: TaskRecord): string {
  const lines = [`task ${t.id} ${t.state}${t.provider !== null ? ` on ${t.provider}` : ''} (skill ${t.skill})`]
  if (t.result !== null) lines.push(partsText(t.result))
  if (t.error !== null) lines.push(`${t.error.code}: ${t.error.message}`)
  if (t.proofHead !== null) lines.push(`proof head ${t.proofHead}`)
  return lines.join('\n')
}

/** completed -> 0; a task that ended any other way -> 1; still running -> 0 */
function exitCode (t: TaskRecord): number {
  return t.state === 'failed' || t.state === 'rejected' || t.state === 'canceled' ? 1 : 0
}

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'task')
  const [sub, id] = positionals
  const json = values.json === true
  if (sub === 'send') {
    if (positionals.length > 1) throw new UsageError('task send: unexpected argument (quote the --text)')
    const skill = str(values, 'skill')
    if (skill === undefined) throw new UsageError('task send: --skill is required')
    const text = str(values, 'text')
    const dataRaw = str(values, 'data')
    if ((text === undefined) === (dataRaw === undefined)) throw new UsageError('task send: give exactly one of --text or --data')
    const deadline = numberOption(str(values, 'deadline'), 'deadline', 0.001, 3600)
    const wait = values.wait === true
    const params = {
      skill,
      ...(text !== undefined ? { text } : { data: parseJson(dataRaw!, '--data') }),
      to: str(values, 'to'),
      deadline,
      wait
    }
    const t = await ipcRequest(socket(values), 'task.send', params, { timeoutMs: wait ? ((deadline ?? 60) * 1000) + 30_000 : 20_000 }) as TaskRecord
    emit(json, t, () => wait ? describeTask(t) : `task ${t.id} ${t.state} (skill ${t.skill}); follow it with: bizra task status ${t.id}`)
    return exitCode(t)
  }
  if (sub === 'status' || sub === 'cancel') {
    if (id === undefined || positionals.length > 2) throw new UsageError(`task ${sub}: give one task ID`)
    const t = await ipcRequest(socket(values), `task.${sub}`, { id }, { timeoutMs: 20_000 }) as TaskRecord
    emit(json, t, () => describeTask(t))
    return sub === 'cancel' ? (t.state === 'canceled' ? 0 : 1) : exitCode(t)
  }
  throw new UsageError(`usage:\n${usage}`)
}

export const agents = {
  usage: 'bizra agents                          agent cards this node knows (its own first) and their skills',
  async run (argv: string[]): Promise<number> {
    const { values, positionals } = parse(argv, {}, 'agents')
    if (positionals.length > 0) throw new UsageError('agents takes no arguments')
    const cards = await ipcRequest(socket(values), 'a2a.agents', {}, { timeoutMs: 20_000 }) as AgentCard[]
    emit(values.json === true, cards, () => cards.map(c => `${c.peerId}  ${c.name}  ${c.url}\n  skills: ${c.skills.map(s => s.id).join(', ') || '(none)'}`).join('\n'))
    return 0
  }
}
