import { TaskState, type ListTasksRequest, type ListTasksResponse, type Task } from '@a2a-js/sdk'
import type { ServerCallContext, TaskStore } from '@a2a-js/sdk/server'
import { RequestMalformedError } from '@a2a-js/sdk/errors'

const TERMINAL = new Set<TaskState>([TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_CANCELED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_REJECTED])

/**
 * The A2A endpoint's task store: in memory like the SDK's InMemoryTaskStore (same list
 * semantics, one namespace per tenant), but bounded. Past `max` tasks the least recently
 * updated finished task is forgotten first (an unfinished one only when none has finished).
 * The node's own record of a task (TaskControl) is kept separately, with its own limit.
 */
export class BoundedTaskStore implements TaskStore {
  readonly #max: number
  /** `<tenant>\n<id>` -> task, in order of last save */
  readonly #tasks = new Map<string, Task>()

  constructor (max = 1000) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('max must be a positive integer')
    this.#max = max
  }

  get size (): number {
    return this.#tasks.size
  }

  async load (taskId: string, context: ServerCallContext): Promise<Task | undefined> {
    const task = this.#tasks.get(keyOf(context, taskId))
    return task === undefined ? undefined : structuredClone(task)
  }

  async save (task: Task, context: ServerCallContext): Promise<void> {
    const key = keyOf(context, task.id)
    this.#tasks.delete(key)
    this.#tasks.set(key, structuredClone(task))
    while (this.#tasks.size > this.#max) this.#evictOne()
  }

  async list (params: ListTasksRequest, context: ServerCallContext): Promise<ListTasksResponse> {
    const prefix = `${context.tenant ?? ''}\n`
    const pageSize = params.pageSize ?? 50
    const after = params.statusTimestampAfter !== undefined && params.statusTimestampAfter !== '' ? Date.parse(params.statusTimestampAfter) : undefined
    let tasks = [...this.#tasks].filter(([k]) => k.startsWith(prefix)).map(([, t]) => t)
      .filter(t => params.contextId === '' || t.contextId === params.contextId)
      .filter(t => params.status === TaskState.TASK_STATE_UNSPECIFIED || t.status?.state === params.status)
      .filter(t => after === undefined || (t.status?.timestamp !== undefined && Date.parse(t.status.timestamp) > after))
    // newest first, ties by id (the SDK's order)
    tasks.sort((a, b) => (b.status?.timestamp ?? '').localeCompare(a.status?.timestamp ?? '') || b.id.localeCompare(a.id))
    const totalSize = tasks.length
    if (params.pageToken !== '') {
      const cursor = decodeCursor(params.pageToken)
      const i = tasks.findIndex(t => (t.status?.timestamp ?? '') === cursor.timestamp && t.id === cursor.id)
      tasks = i === -1 ? [] : tasks.slice(i + 1)
    }
    const page = tasks.slice(0, pageSize)
    const last = page[page.length - 1]
    return {
      tasks: page.map(t => {
        const copy = structuredClone(t)
        if (params.includeArtifacts !== true) copy.artifacts = []
        return copy
      }),
      nextPageToken: last !== undefined && tasks.length > page.length ? Buffer.from(`${last.status?.timestamp ?? ''}|${last.id}`).toString('base64url') : '',
      pageSize,
      totalSize
    }
  }

  #evictOne (): void {
    for (const [key, task] of this.#tasks) {
      if (task.status !== undefined && TERMINAL.has(task.status.state)) {
        this.#tasks.delete(key)
        return
      }
    }
    const oldest = this.#tasks.keys().next()
    if (oldest.done !== true) this.#tasks.delete(oldest.value)
  }
}

function keyOf (context: ServerCallContext, taskId: string): string {
  return `${context.tenant ?? ''}\n${taskId}`
}

function decodeCursor (token: string): { timestamp: string, id: string } {
  const text = Buffer.from(token, 'base64url').toString('utf8')
  const bar = text.indexOf('|')
  if (bar === -1) throw new RequestMalformedError('pageToken is not a token this server gave out')
  return { timestamp: text.slice(0, bar), id: text.slice(bar + 1) }
}
