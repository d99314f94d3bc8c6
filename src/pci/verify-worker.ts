/**
 * The verification thread's worker: checks the envelopes of the shared ring in order with
 * verifyEnvelope (all but the replay cache), writes each verdict into its slot, and answers
 * with the ones that failed. See verify-thread.ts.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads'
import type { Constitution } from '../governance/constitution.ts'
import {
  CTL_CLOSING, CTL_DONE, CTL_TAKEN, CTL_WRITTEN, SLOTS, VERDICT_FAILED, VERDICT_PASSED,
  ringViews, verifyEnvelopeBytes, type ConstitutionMessage, type VerifyAnswer, type WorkerInit
} from './verify-thread.ts'

const init = workerData as WorkerInit
const ring = ringViews(init.ring)
const constitutions = new Map<number, Constitution>()
/** answers with failures go at least this often, so reasons do not wait for the ring to empty */
const MAX_FAILED_HELD = 32

/** a constitution is sent before the first slot that names it: it is on the port by now */
function constitution (id: number): Constitution {
  let found = constitutions.get(id)
  while (found === undefined) {
    const received = receiveMessageOnPort(init.constitutions)
    if (received === undefined) throw new Error(`constitution ${id} was never sent`)
    const { id: got, constitution } = received.message as ConstitutionMessage
    constitutions.set(got, constitution)
    found = constitutions.get(id)
  }
  return found
}

function run (): void {
  let done = Atomics.load(ring.ctl, CTL_DONE)
  let failed: VerifyAnswer['failed'] = []
  // the last `done` the node was told of
  let told = done
  const answer = (): void => {
    const message: VerifyAnswer = { failed }
    parentPort!.postMessage(message)
    failed = []
    told = done
  }
  for (;;) {
    const written = Atomics.load(ring.ctl, CTL_WRITTEN)
    if (written === done) {
      // out of work: failures need their reasons, and a node that has not taken its verdicts
      // (it may have nothing else to wake it) needs a message
      if (failed.length > 0 || (told !== done && Atomics.load(ring.ctl, CTL_TAKEN) !== done)) answer()
      if (Atomics.load(ring.ctl, CTL_CLOSING) === 1) return
      // sleep until the node writes more (the timeout only bounds a missed close)
      Atomics.wait(ring.ctl, CTL_WRITTEN, written, 1000)
      continue
    }
    const slot = done & (SLOTS - 1)
    const at = ring.spans[slot * 2]!
    const verdict = verifyEnvelopeBytes(ring.bytes.subarray(at, at + ring.spans[slot * 2 + 1]!), ring.nows[slot]!, constitution(ring.constitutions[slot]!))
    if (!verdict.ok) failed.push([done, verdict.code, verdict.reason])
    Atomics.store(ring.verdicts, slot, verdict.ok ? VERDICT_PASSED : VERDICT_FAILED)
    done = (done + 1) | 0
    Atomics.store(ring.ctl, CTL_DONE, done)
    if (failed.length >= MAX_FAILED_HELD) answer()
  }
}

// after this module (and any module importing it) has finished loading
setImmediate(run)
