/**
 * A2A shapes shared by the skill registry, the router, the stream handler, the CLI and the
 * HTTP endpoint. Task states are A2A's, spelled as in the spec's JSON (v0.3) form.
 */

export const TASK_STATES = ['submitted', 'working', 'input-required', 'completed', 'canceled', 'failed', 'rejected'] as const
export type TaskState = typeof TASK_STATES[number]
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(['completed', 'canceled', 'failed', 'rejected'])

/** One part of a message: text or structured data (A2A TextPart / DataPart). */
export type TaskPart = { text: string } | { data: unknown }

/** What a skill advertises (A2A AgentSkill fields). */
export interface SkillSpec {
  id: string
  name: string
  description: string
  tags: string[]
  inputModes: string[]
  outputModes: string[]
}

/** A node's agent card: A2A AgentCard fields plus the libp2p PeerId that serves it. */
export interface AgentCard {
  name: string
  description: string
  version: string
  /** the node's A2A HTTP endpoint, or `libp2p://<peerId>` when its API is off */
  url: string
  capabilities: { streaming: boolean, pushNotifications: boolean }
  defaultInputModes: string[]
  defaultOutputModes: string[]
  skills: SkillSpec[]
  peerId: string
}

/** The task card that travels in a PCI envelope on /bizra/a2a/1.0.0 (DESIGN.md "A2A"). */
export interface TaskCard {
  id: string
  skill: string
  message: { parts: TaskPart[] }
  requester: string
  /** epoch ms after which the requester no longer wants the result */
  deadline: number
  tier?: string
}

export interface SkillContext {
  taskId: string
  requester: string
  deadline: number
  /** aborted on cancel, deadline or node stop */
  signal: AbortSignal
  /** reports partial output while the skill works (streamed to A2A clients as status updates) */
  progress: (parts: TaskPart[]) => void
}

export type SkillHandler = (message: { parts: TaskPart[] }, ctx: SkillContext) => Promise<{ parts: TaskPart[] }>

/** A skill's refusal that the requester should not fail over from (e.g. input it cannot take). */
export class SkillRejection extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'SkillRejection'
    this.code = code
  }
}

export interface TaskAttempt {
  provider: string
  state: TaskState
  error?: string
  ms?: number
}

/** The requester's view of a task (what `bizra task status` and the HTTP endpoint show). */
export interface TaskRecord {
  id: string
  skill: string
  state: TaskState
  /** the peer that ran (or is running) it */
  provider: string | null
  attempts: TaskAttempt[]
  /** output parts once completed */
  result: TaskPart[] | null
  /** last partial output reported while working */
  progress: TaskPart[] | null
  /** why it failed, was rejected or canceled */
  error: { code: string, message: string } | null
  /** the executor's Merkle proof of the result (`bizra proof verify` checks it offline) */
  proof: unknown
  /** hash of the executor's DAG head the result is proven against */
  proofHead: string | null
  createdAt: number
  updatedAt: number
  deadline: number
}

export interface SendTaskOptions {
  skill: string
  message: { parts: TaskPart[] }
  /** a PeerId: run it there and nowhere else */
  to?: string
  /** seconds from now (default 60) */
  deadlineS?: number
  /** caller-chosen id (the A2A endpoint passes its task id) */
  id?: string
}

/** What the node offers for tasks; the CLI (over IPC) and the A2A HTTP endpoint use only this. */
export interface TaskControl {
  /** this node's agent card */
  agentCard (): AgentCard
  /** cards known from gossip, this node's own first */
  agents (): AgentCard[]
  /** starts routing a task; resolves with its record in state `submitted` (or already terminal) */
  sendTask (options: SendTaskOptions): Promise<TaskRecord>
  getTask (id: string): TaskRecord | undefined
  /** resolves once the task is terminal (or the signal aborts) */
  waitTask (id: string, signal?: AbortSignal): Promise<TaskRecord>
  /** asks the provider to stop; resolves with the record once it is terminal */
  cancelTask (id: string): Promise<TaskRecord>
  /** every change of a task's record (state, progress); returns an unsubscribe function */
  onTask (listener: (task: TaskRecord) => void): () => void
  /** the node's default skill id (`echo` unless configured) */
  readonly defaultSkill: string
}
