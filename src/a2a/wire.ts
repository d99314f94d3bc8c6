import type { Envelope } from '../pci/envelope.ts'
import type { TaskPart, TaskState } from './types.ts'

/**
 * `/bizra/a2a/1.0.0`, one stream per task attempt, length-prefixed JSON frames:
 *   requester -> executor: the task envelope (type `a2a.task`, payload a TaskCard), then
 *                          optionally `{ kind: 'cancel' }`
 *   executor -> requester: `{ kind: 'status', state, progress? }` while it works, then
 *                          `{ kind: 'result', envelope }` (type `a2a.result`, signed by the
 *                          executor, carrying the output and the Merkle proof) and closes.
 */

export const ENVELOPE_TYPES = {
  task: 'a2a.task',
  result: 'a2a.result',
  card: 'a2a.card'
} as const

export const MAX_A2A_FRAME = 1024 * 1024 + 64 * 1024

export interface TaskResult {
  taskId: string
  state: TaskState
  parts?: TaskPart[]
  error?: { code: string, message: string }
  /** present when completed: the executor's session-DAG proof for this task */
  proof?: unknown
}

export type ExecutorFrame =
  | { kind: 'status', state: 'working' | 'input-required', progress?: TaskPart[] }
  | { kind: 'result', envelope: Envelope<TaskResult> }

export type RequesterFrame = { kind: 'cancel' } | { kind: 'card' }

/** Error codes a task can end with besides the envelope's R00x and FATE's F00x. */
export const TaskErrorCode = {
  UNKNOWN_SKILL: 'UNKNOWN_SKILL',
  BUSY: 'BUSY',
  DEADLINE: 'DEADLINE',
  SKILL_ERROR: 'SKILL_ERROR',
  BAD_OUTPUT: 'BAD_OUTPUT',
  CANCELED: 'CANCELED',
  NO_PROVIDER: 'NO_PROVIDER',
  PROVIDER_FAILED: 'PROVIDER_FAILED',
  BAD_RESULT: 'BAD_RESULT',
  LOG_ERROR: 'LOG_ERROR',
  STOPPED: 'STOPPED'
} as const

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeFrame (value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

/** Parses a frame; throws SyntaxError/TypeError for anything that is not UTF-8 JSON. */
export function decodeFrame (bytes: { subarray: () => Uint8Array }): unknown {
  return JSON.parse(decoder.decode(bytes.subarray()))
}
