// The verification worker with its answer messages lost: the caller learns verdicts only from
// the verdict bytes of the shared ring's slots.
import { parentPort } from 'node:worker_threads'

parentPort!.postMessage = () => {}
await import('../../src/pci/verify-worker.ts')
