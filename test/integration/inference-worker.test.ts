import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { InferenceError, InferenceWorkerClient, WORKER_PATH, type WorkerClientOptions, type WorkerEvent } from '../../src/inference/worker-client.ts'
import { encodeFrame, FrameDecoder } from '../../src/node/ipc-codec.ts'
import { readGgufInfo } from '../../native/gguf/reader.ts'
import { makeTinyLlama } from '../../native/gguf/tiny-llama.ts'
import { BIN, tempDir } from '../helpers/nodes.ts'

/** Runs the real CLI; bad input must be one stderr line and exit 2. */
function bizra (args: string[]): { code: number | null, stdout: string, stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.BIZRA_HOME
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, timeout: 30_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

let home: string
let model: string

before(() => {
  home = tempDir('bz-inf-')
  const r = bizra(['models', 'make-tiny', '--home', home, '--seed', '9', '--json'])
  assert.equal(r.code, 0, r.stderr)
  model = join(home, 'models', 'tiny-9.gguf')
  assert.equal(JSON.parse(r.stdout).file, model)
})

/** A CPU client whose health checks stay out of the way unless a test wants them. */
async function client (options: WorkerClientOptions = {}): Promise<InferenceWorkerClient> {
  return InferenceWorkerClient.start({ gpu: false, healthIntervalMs: 60_000, startTimeoutMs: 60_000, ...options })
}

const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function rejectsWith (p: Promise<unknown>, code: string, message?: RegExp): Promise<InferenceError> {
  const err = await p.then(() => assert.fail(`expected an InferenceError ${code}`), (e: unknown) => e)
  assert.ok(err instanceof InferenceError, String(err))
  assert.equal(err.code, code, err.message)
  if (message !== undefined) assert.match(err.message, message)
  return err
}

describe('bizra models (CLI)', () => {
  test('make-tiny: default file under <home>/models, the same bytes for the same seed, metadata in --json', () => {
    const out = JSON.parse(bizra(['models', 'make-tiny', '--home', home, '--seed', '9', '--json']).stdout)
    assert.equal(out.created, false, 'same seed, same bytes: left as it is')
    assert.equal(out.architecture, 'llama')
    assert.equal(out.tier, 'NANO')
    assert.equal(out.fileType, 'F32')
    assert.equal(out.parameterCount, readGgufInfo(model).parameterCount)
    assert.ok(readFileSync(model).equals(makeTinyLlama({ seed: 9 })))

    const other = join(tempDir('bz-inf-out-'), 'sub', 'm.gguf')
    const human = bizra(['models', 'make-tiny', '--out', other, '--seed', '10'])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /^wrote .*m\.gguf: llama F32, .* parameters \(NANO\), .* KiB, seed 10\n$/)
    assert.ok(readFileSync(other).equals(makeTinyLlama({ seed: 10 })))
  })

  test('list: every GGUF file with tier and metadata; unreadable files are listed, not fatal', () => {
    const r = bizra(['models', 'list', '--home', home, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const list = JSON.parse(r.stdout)
    assert.deepEqual(list.map((m: { file: string, ok: boolean, tier: string }) => [m.file, m.ok, m.tier]), [[model, true, 'NANO']])
    const human = bizra(['models', 'list', '--home', home])
    assert.match(human.stdout, /tiny-9\.gguf {2}NANO {2}llama {2}\d+K params {2}F32/)
  })

  test('bad input: one line on stderr, exit 2', () => {
    const other = join(tempDir('bz-inf-x-'), 'taken.gguf')
    assert.equal(bizra(['models', 'make-tiny', '--out', other, '--seed', '1']).code, 0)
    for (const [args, mentions] of [
      [['models', 'make-tiny', '--home', home, '--seed', 'ten'], /--seed must be an integer/],
      [['models', 'make-tiny', '--home', home, '--seed=-1'], /--seed must be an integer from 0 to 4294967295/],
      [['models', 'make-tiny', '--out', other, '--seed', '2'], /taken\.gguf: already exists with other contents/],
      [['models', 'frobnicate', '--home', home], /usage/],
      [['models', 'list', 'extra', '--home', home], /takes no arguments/]
    ] as const) {
      const r = bizra([...args])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
      assert.match(r.stderr, /^bizra: /)
      assert.match(r.stderr, mentions)
    }
  })
})

describe('inference worker: raw protocol', () => {
  test('ready frame, then answers by id; bad requests get error frames and the worker carries on', async () => {
    const child = spawn(process.execPath, [WORKER_PATH, '--cpu'], { stdio: ['pipe', 'pipe', 'pipe'] })
    const frames: Array<Record<string, unknown>> = []
    const decoder = new FrameDecoder()
    let wake: (() => void) | undefined
    child.stdout.on('data', (d: Buffer) => { frames.push(...decoder.push(d) as Array<Record<string, unknown>>); wake?.() })
    const waitFor = async (pred: (f: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
      for (;;) {
        const f = frames.find(pred)
        if (f !== undefined) return f
        await new Promise<void>(resolve => { wake = resolve })
      }
    }
    try {
      const ready = await waitFor(f => f.event === 'ready')
      assert.equal(ready.pid, child.pid)
      assert.equal(ready.gpu, false)
      for (const f of [
        { id: 1, op: 'fly' },
        { id: 2, op: 'infer', model: 'x', maxTokens: 5 },
        { id: 3, op: 'infer', model: 'x', prompt: 'p', maxTokens: 0 },
        { id: 4, op: 'load' },
        { op: 'health' },
        [1, 2],
        { id: 5, op: 'infer', model: 'x', prompt: 'p', maxTokens: 5 },
        { id: 6, op: 'load', path: join(home, 'nope.gguf') },
        { id: 7, op: 'health' }
      ]) child.stdin.write(encodeFrame(f))
      const health = await waitFor(f => f.id === 7)
      assert.equal((health.result as { ok: boolean }).ok, true)
      const errorOf = async (id: number | null): Promise<{ code: string, message: string }> => (await waitFor(f => f.id === id && f.error !== undefined)).error as { code: string, message: string }
      assert.equal((await errorOf(1)).code, 'unknown_op')
      assert.match((await errorOf(2)).message, /exactly one of prompt or messages/)
      assert.match((await errorOf(3)).message, /maxTokens must be an integer from 1/)
      assert.match((await errorOf(4)).message, /path must be a non-empty string/)
      assert.equal((await errorOf(5)).code, 'model_not_loaded')
      const notFound = await errorOf(6)
      assert.equal(notFound.code, 'model_not_found')
      assert.match(notFound.message, /nope\.gguf: model file not found/)
      assert.equal(frames.filter(f => f.id === null).length, 2, 'no usable id: answered with id null')
    } finally {
      child.stdin.end()
      await new Promise(resolve => child.on('close', resolve))
    }
  })

  test('exits when its stdin closes (the parent is gone)', async () => {
    const child = spawn(process.execPath, [WORKER_PATH, '--cpu'], { stdio: ['pipe', 'pipe', 'ignore'] })
    await new Promise(resolve => child.stdout.once('data', resolve))
    child.stdin.end()
    const code = await new Promise(resolve => child.on('close', resolve))
    assert.equal(code, 0)
  })
})

describe('inference worker client', () => {
  let c: InferenceWorkerClient
  before(async () => { c = await client() })
  after(async () => { await c.close() })

  test('load and list: metadata from the GGUF header; loading again is a no-op', async () => {
    const [info, twin] = await Promise.all([c.load(model), c.load(model)])
    assert.deepEqual(twin, info, 'two loads of one file at once: one model')
    const gguf = readGgufInfo(model)
    assert.equal(info.model, 'tiny-9')
    assert.equal(info.path, model)
    assert.equal(info.name, 'tiny-llama-9')
    assert.equal(info.architecture, 'llama')
    assert.equal(info.parameterCount, gguf.parameterCount)
    assert.equal(info.fileType, 'F32')
    assert.equal(info.sizeBytes, gguf.sizeBytes)
    assert.equal(info.contextLength, 2048)
    assert.equal(info.contextSize, 2048)
    assert.equal(info.threads, 1, 'a tiny model runs on one thread')
    assert.ok(info.loadMs >= 0)
    assert.deepEqual(await c.list(), [info])
    assert.deepEqual(await c.load(model), info)
    await rejectsWith(c.load(join(home, 'models', 'missing.gguf')), 'model_not_found', /missing\.gguf: model file not found/)
    const corrupt = join(tempDir('bz-inf-bad-'), 'corrupt.gguf')
    writeFileSync(corrupt, makeTinyLlama().subarray(0, 4096))
    await rejectsWith(c.load(corrupt), 'bad_model', /corrupt\.gguf: truncated/)
  })

  test('a fixed seed gives the same text twice; another seed other text; greedy is repeatable too', async () => {
    const req = { model: 'tiny-9', prompt: 'the mesh', maxTokens: 24, temperature: 0.9 }
    const a = await c.infer({ ...req, seed: 5 })
    const b = await c.infer({ ...req, seed: 5 })
    const other = await c.infer({ ...req, seed: 6 })
    assert.equal(a.tokens, 24)
    assert.equal(a.stopReason, 'maxTokens')
    assert.ok(a.text.length > 0)
    assert.equal(b.text, a.text)
    assert.notEqual(other.text, a.text)
    const g1 = await c.infer({ model: 'tiny-9', prompt: 'hello', maxTokens: 16 })
    const g2 = await c.infer({ model: 'tiny-9', prompt: 'hello', maxTokens: 16 })
    assert.equal(g2.text, g1.text)
  })

  test('tokens stream before the result; together they are the text', async () => {
    const events: string[] = []
    const pieces: string[] = []
    const pending = c.infer({ model: 'tiny-9', prompt: 'a quiet river', maxTokens: 40, seed: 1, temperature: 0.7 }, {
      onToken: t => { pieces.push(t); events.push('token') }
    }).then(r => { events.push('done'); return r })
    const r = await pending
    // a piece is a token's text, or several tokens' text when they were ready together
    assert.ok(pieces.length >= 2, `${pieces.length} pieces`)
    assert.equal(events.at(-1), 'done')
    assert.equal(events.indexOf('done'), pieces.length)
    assert.equal(pieces.join(''), r.text)
    assert.ok(r.firstTokenMs >= 0 && r.firstTokenMs <= r.totalMs, JSON.stringify(r))

    const it = c.stream({ model: 'tiny-9', prompt: 'a quiet river', maxTokens: 40, seed: 1, temperature: 0.7 })
    const streamed: string[] = []
    let step = await it.next()
    while (step.done !== true) {
      streamed.push(step.value)
      step = await it.next()
    }
    assert.ok(streamed.length >= 2, `${streamed.length} pieces`)
    assert.equal(streamed.join(''), r.text)
    assert.equal(step.value.text, r.text)
  })

  test('breaking off a stream cancels the generation in the worker', async () => {
    // 6000 tokens take seconds even here; canceled, the next request on the model starts at once
    const it = c.stream({ model: 'tiny-9', prompt: 'endless', maxTokens: 6000 })
    for await (const _piece of it) break
    const next = await c.infer({ model: 'tiny-9', prompt: 'next', maxTokens: 5 })
    assert.equal(next.tokens, 5)
    assert.ok(next.firstTokenMs < 1000, `the next request waited ${next.firstTokenMs} ms for the model`)
    assert.equal((await c.health()).active, 0)
  })

  test('an AbortSignal cancels a request', async () => {
    const abort = new AbortController()
    const pending = c.infer({ model: 'tiny-9', prompt: 'endless', maxTokens: 6000 }, { signal: abort.signal, onToken: () => abort.abort() })
    await rejectsWith(pending, 'canceled', /canceled/)
    await rejectsWith(c.infer({ model: 'tiny-9', prompt: 'x', maxTokens: 5 }, { signal: abort.signal }), 'canceled')
    assert.equal((await c.infer({ model: 'tiny-9', prompt: 'next', maxTokens: 5 })).tokens, 5)
  })

  test('chat messages go through the chat template', async () => {
    const r = await c.infer({ model: 'tiny-9', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }], maxTokens: 12 })
    assert.equal(r.tokens, 12)
    assert.ok(r.text.length > 0)
  })

  test('maxTokens outside the client\'s limit is refused before it reaches the worker', async () => {
    await rejectsWith(c.infer({ model: 'tiny-9', prompt: 'x', maxTokens: 100_000 }), 'bad_request', /maxTokens must be an integer from 1 to 8192/)
    await rejectsWith(c.infer({ model: 'tiny-9', prompt: 'x', maxTokens: 0 }), 'bad_request')
  })

  test('unload: gone from the list; inference on it is model_not_loaded', async () => {
    await c.unload('tiny-9')
    assert.deepEqual(await c.list(), [])
    await rejectsWith(c.infer({ model: 'tiny-9', prompt: 'x', maxTokens: 4 }), 'model_not_loaded', /no model named tiny-9/)
    await rejectsWith(c.unload('tiny-9'), 'model_not_loaded')
  })
})

describe('inference worker client: failures', () => {
  test('SIGKILL mid-request: those requests fail with worker_crashed, the worker restarts with its models, the next succeeds', async () => {
    const events: WorkerEvent[] = []
    const c = await client({ onEvent: e => events.push(e) })
    try {
      await c.load(model, { model: 'm' })
      const expected = await c.infer({ model: 'm', prompt: 'stone', maxTokens: 20, seed: 3, temperature: 0.8 })
      const firstPid = c.pid!
      let killed = false
      const long = c.infer({ model: 'm', prompt: 'the long one', maxTokens: 2000 }, {
        onToken: () => {
          if (!killed) {
            killed = true
            process.kill(firstPid, 'SIGKILL')
          }
        }
      })
      const queued = c.infer({ model: 'm', prompt: 'queued behind it', maxTokens: 10 })
      const err = await rejectsWith(long, 'worker_crashed', /signal SIGKILL.*in flight.*restarted/)
      assert.ok(killed)
      await rejectsWith(queued, 'worker_crashed')
      assert.ok(!err.message.includes('\n'))

      const after = await c.infer({ model: 'm', prompt: 'stone', maxTokens: 20, seed: 3, temperature: 0.8 })
      assert.equal(after.text, expected.text, 'same seed, same text, in the new worker')
      assert.equal(c.restarts, 1)
      assert.notEqual(c.pid, firstPid)
      assert.deepEqual((await c.list()).map(m => m.model), ['m'], 'the model was loaded again')
      const exit = events.find(e => e.type === 'exit')
      assert.deepEqual(exit, { type: 'exit', pid: firstPid, reason: 'inference worker exited (signal SIGKILL)', failed: 2 })
      assert.equal(events.filter(e => e.type === 'ready').length, 2)
    } finally {
      await c.close()
    }
  })

  test('a full queue answers busy at once; the admitted requests still complete', async () => {
    const c = await client({ maxPending: 2 })
    try {
      await c.load(model)
      const a = c.infer({ model: 'tiny-9', prompt: 'one', maxTokens: 50 })
      const b = c.infer({ model: 'tiny-9', prompt: 'two', maxTokens: 50 })
      assert.equal(c.pending, 2)
      const started = performance.now()
      await rejectsWith(c.infer({ model: 'tiny-9', prompt: 'three', maxTokens: 50 }), 'busy', /queue is full \(2 requests outstanding\)/)
      await rejectsWith(c.health(), 'busy')
      assert.ok(performance.now() - started < 50, 'busy is immediate')
      assert.equal((await a).tokens, 50)
      assert.equal((await b).tokens, 50)
      assert.equal(c.pending, 0)
      assert.equal((await c.infer({ model: 'tiny-9', prompt: 'four', maxTokens: 5 })).tokens, 5)
    } finally {
      await c.close()
    }
  })

  test('a request with no answer in time fails with timeout; the worker is not blamed', async () => {
    const c = await client()
    try {
      await c.load(model)
      const pid = c.pid!
      process.kill(pid, 'SIGSTOP') // a worker that cannot answer at all
      try {
        await rejectsWith(c.infer({ model: 'tiny-9', prompt: 'x', maxTokens: 5 }, { timeoutMs: 300 }), 'timeout', /infer request got no answer within 300 ms/)
        assert.equal(c.pending, 0)
      } finally {
        process.kill(pid, 'SIGCONT')
      }
      assert.equal((await c.infer({ model: 'tiny-9', prompt: 'y', maxTokens: 5 })).tokens, 5)
      assert.equal(c.pid, pid)
      assert.equal(c.restarts, 0)
    } finally {
      await c.close()
    }
  })

  test('a hung worker (no health reply) is killed and restarted; its in-flight request fails with worker_crashed', async () => {
    const c = await client({ healthIntervalMs: 100, healthTimeoutMs: 1000 })
    try {
      await c.load(model)
      const pid = c.pid!
      process.kill(pid, 'SIGSTOP')
      await rejectsWith(c.infer({ model: 'tiny-9', prompt: 'x', maxTokens: 5 }), 'worker_crashed', /stopped answering \(no health reply within 1000 ms\)/)
      assert.equal((await c.infer({ model: 'tiny-9', prompt: 'y', maxTokens: 5 })).tokens, 5)
      assert.notEqual(c.pid, pid)
      assert.ok(!processAlive(pid), 'the hung worker was killed')
    } finally {
      await c.close()
    }
  })

  test('close() stops the worker and fails later requests with closed', async () => {
    const c = await client()
    const pid = c.pid!
    assert.ok(processAlive(pid))
    await c.close()
    assert.ok(!processAlive(pid))
    await rejectsWith(c.infer({ model: 'tiny-9', prompt: 'x', maxTokens: 5 }), 'closed')
  })

  test('a worker that cannot start is worker_unavailable, with its stderr in the message', async () => {
    const bogus = join(tempDir('bz-inf-bogus-'), 'worker.ts')
    assert.ok(!existsSync(bogus))
    await rejectsWith(InferenceWorkerClient.start({ workerPath: bogus }), 'worker_unavailable', /did not start: inference worker exited \(code 1\) \(worker stderr: Error: Cannot find module '.*worker\.ts'/)
  })
})
