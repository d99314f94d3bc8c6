// The verification worker with its answer messages lost: the caller learns verdicts only from
// the batches' shared verdict bytes.
import { parentPort } from 'node:worker_threads'

parentPort!.postMessage = () => {}
await import('../../src/pci/verify-worker.ts')
