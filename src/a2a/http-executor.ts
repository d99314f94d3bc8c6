import { randomUUID } from 'node:crypto'
import { Role, TaskState as A2aTaskState, type Message, type Part } from '@a2a-js/sdk'
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server'
import { TERMINAL_STATES, type SendTaskOptions, type TaskControl, type TaskPart, type TaskRecord, type TaskState } from './types.ts'

/**
 * The A2A side of a node's tasks: an `AgentExecutor` for the SDK's `DefaultRequestHandler`
 * that hands each incoming A2A message to `TaskControl.sendTask` (which routes it to a peer
 * offering the skill) and turns the task's record updates into the A2A task lifecycle.
 */

/** Our lowercase A2A state names -> the SDK's v1.0 enum. */
export const A2A_TASK_STATE: Readonly<Record<TaskState, A2aTaskState>> = {
  submitted: A2aTaskState.TASK_STATE_SUBMITTED,
  working: A2aTaskState.TASK_STATE_WORKING,
  'input-required': A2aTaskState.TASK_STATE_INPUT_REQUIRED,
  completed: A2aTaskState.TASK_STATE_COMPLETED,
  canceled: A2aTaskState.TASK_STATE_CANCELED,
  failed: A2aTaskState.TASK_STATE_FAILED,
  rejected: A2aTaskState.TASK_STATE_REJECTED
}

/** A message part this node cannot carry (files, by bytes or by URL). */
export class UnsupportedPartError extends Error {
  static override readonly name: string = 'UnsupportedPartError'
  override readonly name: string = 'UnsupportedPartError'
}

export function toA2aPart (part: TaskPart): Part {
  return 'text' in part
    ? { content: { $case: 'text', value: part.text }, mediaType: 'text/plain', filename: '', metadata: undefined }
    : { content: { $case: 'data', value: part.data }, mediaType: 'application/json', filename: '', metadata: undefined }
}

/** An A2A part as ours: text and data only; throws UnsupportedPartError for anything else. */
export function fromA2aPart (part: Part): TaskPart {
  const c = part.content
  if (c?.$case === 'text') return { text: c.value }
  if (c?.$case === 'data') return { data: c.value ?? null }
  throw new UnsupportedPartError(`this node takes text and data parts, not ${c === undefined ? 'empty parts' : `${c.$case} parts`}`)
}

/** The skill-selecting fields an A2A message may carry in its metadata (the request's metadata is the fallback). */
export function taskOptionsOf (metadata: Record<string, unknown>, defaultSkill: string): Pick<SendTaskOptions, 'skill' | 'to' | 'deadlineS'> {
  const o: Pick<SendTaskOptions, 'skill' | 'to' | 'deadlineS'> = { skill: typeof metadata.skill === 'string' ? metadata.skill : defaultSkill }
  if (typeof metadata.to === 'string') o.to = metadata.to
  if (typeof metadata.deadlineS === 'number') o.deadlineS = metadata.deadlineS
  return o
}

function agentMessage (taskId: string, contextId: string, parts: Part[], messageId: string = randomUUID(), metadata?: Record<string, unknown>): Message {
  return { messageId, taskId, contextId, role: Role.ROLE_AGENT, parts, metadata, extensions: [], referenceTaskIds: [] }
}

type Outcome = Pick<TaskRecord, 'state' | 'result' | 'error' | 'provider' | 'proof' | 'proofHead'>

const DEFAULT_TEXT: Partial<Record<TaskState, string>> = { canceled: 'canceled', failed: 'failed', rejected: 'rejected' }

/** Errors from sendTask that mean "this request cannot be taken" rather than "routing broke". */
const INPUT_ERRORS = new Set(['TaskInputError', 'SkillRejection'])

/** One A2A task being run: publishes its lifecycle on the SDK's event bus, once per change. */
class Run {
  readonly taskId: string
  readonly contextId: string
  readonly #bus: ExecutionEventBus
  readonly #progressMs: number
  readonly #ended = new AbortController()
  readonly done: Promise<void>
  #resolve!: () => void
  #lastKey: string | undefined
  #lastAt = 0
  #pending: TaskRecord | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (taskId: string, contextId: string, bus: ExecutionEventBus, progressMs: number) {
    this.taskId = taskId
    this.contextId = contextId
    this.#bus = bus
    this.#progressMs = progressMs
    this.done = new Promise(resolve => { this.#resolve = resolve })
  }

  get ended (): boolean {
    return this.#ended.signal.aborted
  }

  /** aborted once the run has published its last event (or was stopped) */
  get signal (): AbortSignal {
    return this.#ended.signal
  }

  /** A record change from TaskControl: a status update when state or progress changed, the final events when terminal. */
  update (rec: TaskRecord): void {
    if (this.ended || rec.id !== this.taskId) return
    if (TERMINAL_STATES.has(rec.state)) return this.finish(rec)
    if (rec.state === 'submitted') return // the task event said so already
    const key = `${rec.state}\n${JSON.stringify(rec.progress)}`
    if (key === this.#lastKey) return
    // progress may come per token: while working, at most one update per interval (the latest wins)
    const wait = this.#lastAt + this.#progressMs - Date.now()
    if (rec.state === 'working' && this.#lastKey?.startsWith('working\n') === true && wait > 0) {
      this.#pending = rec
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined
        const pending = this.#pending
        this.#pending = undefined
        if (pending !== undefined) this.update(pending)
      }, wait)
      return
    }
    this.#lastKey = key
    this.#lastAt = Date.now()
    const progress = rec.progress !== null && rec.progress.length > 0 ? rec.progress.map(toA2aPart) : undefined
    this.#bus.publish(AgentEvent.statusUpdate({
      taskId: this.taskId,
      contextId: this.contextId,
      status: {
        state: A2A_TASK_STATE[rec.state],
        // one message id for every progress report of a task: the SDK keeps a status message in
        // the task's history once per id, so progress does not pile up there (status.message is
        // always the latest)
        message: progress === undefined ? undefined : agentMessage(this.taskId, this.contextId, progress, `${this.taskId}-progress`),
        timestamp: new Date().toISOString()
      },
      metadata: undefined
    }))
  }

  /** Publishes the terminal events: the output as an artifact and as the final status message, or the reason. */
  finish (o: Outcome): void {
    if (this.ended) return
    this.#stopTimer()
    const meta: Record<string, unknown> = {}
    if (o.provider !== null) meta.provider = o.provider
    if (o.proofHead !== null) meta.proofHead = o.proofHead
    if (o.error !== null) meta.errorCode = o.error.code
    const metadata = Object.keys(meta).length > 0 ? meta : undefined
    let message: Message
    if (o.state === 'completed') {
      const parts = (o.result ?? []).map(toA2aPart)
      // the artifact carries the executor's Merkle proof, for `bizra proof verify`
      const artifactMeta = o.proof === null || o.proof === undefined ? metadata : { ...metadata, proof: o.proof }
      this.#bus.publish(AgentEvent.artifactUpdate({
        taskId: this.taskId,
        contextId: this.contextId,
        artifact: { artifactId: 'result', name: 'result', description: '', parts, metadata: artifactMeta, extensions: [] },
        append: false,
        lastChunk: true,
        metadata: undefined
      }))
      message = agentMessage(this.taskId, this.contextId, parts)
    } else {
      const text = o.error?.message ?? DEFAULT_TEXT[o.state] ?? o.state
      message = agentMessage(this.taskId, this.contextId, [toA2aPart({ text })], undefined, o.error === null ? undefined : { code: o.error.code })
    }
    this.#bus.publish(AgentEvent.statusUpdate({
      taskId: this.taskId,
      contextId: this.contextId,
      status: { state: A2A_TASK_STATE[o.state], message, timestamp: new Date().toISOString() },
      metadata
    }))
    this.#end()
  }

  /** Ends the run without publishing anything more (the server is closing). */
  stop (): void {
    if (!this.ended) this.#end()
  }

  #end (): void {
    this.#stopTimer()
    this.#ended.abort()
    this.#resolve()
  }

  #stopTimer (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#pending = undefined
  }
}

export interface TaskControlExecutorOptions {
  /** least time between two progress status updates of one task, ms (default 100) */
  progressIntervalMs?: number
  /** where errors that must not reach TaskControl's listener loop are reported */
  onError?: (err: unknown, msg: string) => void
}

/**
 * Runs A2A messages as node tasks. The A2A task id is the node's task id, so `bizra task status`
 * and the A2A endpoint speak of the same task. `execute` returns once the task is terminal (or
 * the executor is stopped), which is when the SDK settles the task's event bus.
 */
export class TaskControlExecutor implements AgentExecutor {
  readonly #tasks: TaskControl
  readonly #runs = new Map<string, Run>()
  readonly #stopped = new AbortController()
  readonly #progressMs: number
  readonly #onError: (err: unknown, msg: string) => void
  readonly #off: () => void

  constructor (tasks: TaskControl, opts: TaskControlExecutorOptions = {}) {
    this.#tasks = tasks
    this.#progressMs = opts.progressIntervalMs ?? 100
    this.#onError = opts.onError ?? (() => {})
    // one listener for all tasks; it runs inside TaskControl's notify loop, so it never throws
    this.#off = tasks.onTask(rec => {
      try {
        this.#runs.get(rec.id)?.update(rec)
      } catch (err) {
        this.#onError(err, 'A2A task update failed')
      }
    })
  }

  /** tasks being run now */
  get running (): number {
    return this.#runs.size
  }

  async execute (ctx: RequestContext, bus: ExecutionEventBus): Promise<void> {
    const { taskId, contextId } = ctx
    const message = ctx.userMessage
    const options = taskOptionsOf({ ...ctx.request.metadata, ...message.metadata }, this.#tasks.defaultSkill)
    const run = new Run(taskId, contextId, bus, this.#progressMs)
    this.#runs.set(taskId, run)
    try {
      bus.publish(AgentEvent.task({
        id: taskId,
        contextId,
        status: { state: A2aTaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: new Date().toISOString() },
        artifacts: [],
        history: [message],
        metadata: { skill: options.skill }
      }))
      if (this.#stopped.signal.aborted) return run.finish(refusal('failed', 'STOPPED', 'the A2A endpoint is closing'))
      let rec: TaskRecord
      try {
        rec = await this.#tasks.sendTask({ ...options, id: taskId, message: { parts: message.parts.map(fromA2aPart) } })
      } catch (err) {
        const e = err as Error
        const input = err instanceof UnsupportedPartError || INPUT_ERRORS.has(e?.name)
        return run.finish(refusal(input ? 'rejected' : 'failed', input ? 'BAD_REQUEST' : 'NOT_ROUTED', e?.message ?? String(err)))
      }
      run.update(rec)
      if (run.ended) return
      // a backstop for a terminal update the listener could have missed; ends with the run
      this.#tasks.waitTask(taskId, AbortSignal.any([run.signal, this.#stopped.signal])).then(r => run.update(r), () => {})
      await run.done
    } finally {
      run.stop()
      this.#runs.delete(taskId)
    }
  }

  /**
   * Asks TaskControl to cancel and publishes where the task ended: canceled, or whatever it
   * reached first. The SDK waits for a terminal event on the bus, so one is always published.
   */
  async cancelTask (taskId: string, bus: ExecutionEventBus): Promise<void> {
    const run = this.#runs.get(taskId) ?? new Run(taskId, '', bus, this.#progressMs)
    try {
      const rec = await this.#tasks.cancelTask(taskId)
      run.update(rec)
      if (!run.ended) run.finish(rec.state === 'canceled' ? rec : refusal('canceled', 'CANCELED', 'canceled'))
    } catch (err) {
      // the node no longer knows the task (forgotten after it ended, or the node stopped)
      run.finish(refusal('canceled', 'CANCELED', `canceled; the node no longer tracks this task (${(err as Error)?.message ?? String(err)})`))
    }
  }

  /** Stops publishing for every task being run (their node tasks go on) and drops the listener. */
  stop (): void {
    this.#stopped.abort()
    this.#off()
    for (const run of this.#runs.values()) run.stop()
  }
}

function refusal (state: TaskState, code: string, message: string): Outcome {
  return { state, result: null, error: { code, message }, provider: null, proof: null, proofHead: null }
}
