import type { Envelope } from '../pci/envelope.ts'
import type { TaskPart, TaskState } from './types.ts'

/**
 * `/bizra/a2a/1.0.0`: a long-lived stream from a requester to an executor carrying any number
 * of tasks, as length-prefixed (varint) JSON frames. `n` is a number the requester picks per
 * task on that stream; the executor's frames for the task echo it.
 *   requester -> executor: `{ kind: 'task', n, envelope }` (type `a2a.task`, payload a TaskCard)
 *                          `{ kind: 'cancel', n }`
 *                          `{ kind: 'card', of? }` (asks for the executor's agent card, or for
 *                          the signed card it holds of peer `of`: a relay, so that a node needs
 *                          no connection of its own to every peer whose card it wants)
 *   executor -> requester: `{ kind: 'status', n, state, progress? }` while a task runs (only
 *                          past 10 ms), then `{ kind: 'result', n, envelope }` (type
 *                          `a2a.result`, signed by the executor, with the output and the Merkle
 *                          proof); `{ kind: 'card', envelope }` (type `a2a.card`);
 *                          `{ kind: 'error', n?, code, message }` for a frame it cannot read.
 * Closing or resetting the stream cancels every task still running on it. Frames that become
 * ready in the same turn of the event loop travel in one stream write (frames.ts FrameWriter).
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
  | { kind: 'status', n?: number, state: 'working' | 'input-required', progress?: TaskPart[] }
  | { kind: 'result', n: number, envelope: Envelope<TaskResult> }
  | { kind: 'card', envelope: Envelope }
  | { kind: 'error', n?: number, code: string, message: string }

export type RequesterFrame = { kind: 'task', n: number, envelope: unknown } | { kind: 'cancel', n: number } | { kind: 'card', of?: string }

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
