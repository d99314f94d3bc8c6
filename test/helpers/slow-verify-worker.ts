// The verification worker, unresponsive for its first second (a worker that gets no core).
import '../../src/pci/verify-worker.ts'

Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000)
