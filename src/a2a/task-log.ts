import type { SessionDag } from '../state/store.ts'
import { payloadHash } from '../state/dag.ts'
import { verifyProof, type Proof } from '../state/proof.ts'
import type { TaskLog } from './executor.ts'
import type { TaskCard, TaskPart } from './types.ts'

/**
 * Records each completed task as one session of the executor's Merkle DAG, written in one
 * atomic batch: init (the task envelope's digest) -> active (who asked for which skill) ->
 * computing -> validated -> committed (the output). The proof from the init node to the
 * committed head ties the requester's envelope to the output the executor signed.
 */
export class DagTaskLog implements TaskLog {
  readonly #dag: SessionDag

  constructor (dag: SessionDag) {
    this.#dag = dag
  }

  async recordCompleted (entry: { taskDigest: string, card: TaskCard, parts: TaskPart[] }): Promise<Proof> {
    const { taskDigest, card, parts } = entry
    const session = `task/${taskDigest}`
    const nodes = await this.#dag.appendMany([
      { session, state: 'init', payloadHash: initPayloadHash(taskDigest) },
      { session, state: 'active', payload: { taskId: card.id, skill: card.skill, requester: card.requester } },
      { session, state: 'computing', payload: { taskId: card.id, deadline: card.deadline } },
      { session, state: 'validated', payload: { taskId: card.id, output: 'parts' } },
      { session, state: 'committed', payloadHash: committedPayloadHash(card, parts) }
    ])
    return { v: 1, nodes, head: nodes[nodes.length - 1]!.hash }
  }
}

export function initPayloadHash (taskDigest: string): string {
  return payloadHash({ task: taskDigest })
}

export function committedPayloadHash (card: TaskCard, parts: TaskPart[]): string {
  return payloadHash({ taskId: card.id, skill: card.skill, result: parts })
}

/**
 * The requester's check of a result's proof: a valid path that starts at the init node of
 * this very task envelope and ends, at its head, in a committed node carrying this output.
 */
export function verifyTaskProof (proof: unknown, expected: { taskDigest: string, card: TaskCard, parts: TaskPart[] }): { ok: true, head: string } | { ok: false, reason: string } {
  const check = verifyProof(proof, { payloadHash: initPayloadHash(expected.taskDigest) })
  if (!check.ok) return check
  const nodes = (proof as Proof).nodes
  const first = nodes[0]!
  const last = nodes[nodes.length - 1]!
  if (first.state !== 'init') return { ok: false, reason: 'the proof does not start at the task\'s init node' }
  if (last.state !== 'committed') return { ok: false, reason: 'the proof does not end in a committed node' }
  if (last.payloadHash !== committedPayloadHash(expected.card, expected.parts)) return { ok: false, reason: 'the committed node does not carry this output' }
  return check
}
