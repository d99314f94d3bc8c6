/**
 * The verification thread's worker: checks each envelope of a batch with verifyEnvelope (all
 * but the replay cache) and answers with the ones that failed. See verify-thread.ts.
 */
import { parentPort } from 'node:worker_threads'
import { VERDICT_FAILED, VERDICT_PASSED, verifyEnvelopeBytes, type VerifyAnswer, type VerifyBatch } from './verify-thread.ts'

parentPort!.on('message', (batch: VerifyBatch) => {
  const bytes = new Uint8Array(batch.bytes)
  const ends = new Uint32Array(batch.ends)
  const nows = new Float64Array(batch.nows)
  const verdicts = new Uint8Array(batch.verdicts)
  const failed: VerifyAnswer['failed'] = []
  let start = 0
  for (let i = 0; i < ends.length; i++) {
    const verdict = verifyEnvelopeBytes(bytes.subarray(start, ends[i]), nows[i]!, batch.constitution)
    if (!verdict.ok) failed.push([i, verdict.code, verdict.reason])
    Atomics.store(verdicts, i, verdict.ok ? VERDICT_PASSED : VERDICT_FAILED)
    start = ends[i]!
  }
  const answer: VerifyAnswer = { id: batch.id, failed }
  parentPort!.postMessage(answer)
})
