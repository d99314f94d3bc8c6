import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createConnection } from 'node:net'
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  IpcClient, IpcClosedError, IpcRemoteError, IpcTimeoutError, ipcRequest, NodeAlreadyRunningError, NodeNotRunningError,
  startIpcServer, type IpcHandlers, type IpcServer
} from '../../src/node/ipc.ts'
import { encodeFrame, FrameDecoder } from '../../src/node/ipc-codec.ts'
import { FileError } from '../../src/util/fs.ts'

let dir: string
let n = 0
const sockPath = (): string => join(dir, `${++n}.sock`)

before(() => { dir = mkdtempSync(join(tmpdir(), 'bz-ipc-')) })
after(() => rmSync(dir, { recursive: true, force: true }))

const handlers: IpcHandlers = {
  echo: params => params,
  add: (params) => {
    const { a, b } = params as { a: number, b: number }
    return a + b
  },
  slow: async (params) => {
    const { ms, v } = params as { ms: number, v: unknown }
    await sleep(ms)
    return v
  },
  nothing: () => undefined,
  boom: () => { throw new Error('handler exploded') },
  reject: async () => { throw new Error('async handler failed') },
  bigint: () => 1n
}

/** Writes `bytes` on a raw connection; collects decoded frames until the server closes it or `until` frames arrive. */
async function rawExchange (path: string, bytes: Buffer, until = Infinity): Promise<{ frames: unknown[], closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path)
    const d = new FrameDecoder()
    const frames: unknown[] = []
    let done = false
    const finish = (closedByServer: boolean): void => {
      if (done) return
      done = true
      s.destroy()
      resolve({ frames, closedByServer })
    }
    s.once('connect', () => s.write(bytes))
    s.on('data', c => {
      frames.push(...d.push(c))
      if (frames.length >= until) finish(false)
    })
    s.on('end', () => finish(true))
    s.on('close', () => finish(true))
    s.on('error', reject)
  })
}

async function withServer (fn: (path: string, server: IpcServer) => Promise<void>, h: IpcHandlers = handlers): Promise<void> {
  const path = sockPath()
  const server = await startIpcServer(path, h)
  try {
    await fn(path, server)
  } finally {
    await server.close()
  }
}

/** A socket file whose listener died without cleaning up (a node killed with SIGKILL). */
async function makeStaleSocket (path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' })
  await new Promise(resolve => child.once('exit', resolve))
  assert.ok(lstatSync(path).isSocket(), 'the killed listener left its socket file')
}

describe('IPC server and client over a Unix socket', () => {
  test('a request gets its result; undefined results come back as null', async () => {
    await withServer(async path => {
      assert.deepEqual(await ipcRequest(path, 'echo', { hello: 'world', n: [1, 2] }), { hello: 'world', n: [1, 2] })
      assert.equal(await ipcRequest(path, 'add', { a: 2, b: 40 }), 42)
      assert.equal(await ipcRequest(path, 'nothing'), null)
      assert.equal(await ipcRequest(path, 'echo'), null) // no params
    })
  })

  test('progress frames reach onProgress in order before the answer; none after it', async () => {
    let late: ((v: unknown) => void) | undefined
    const h: IpcHandlers = {
      count: async (params, _signal, progress) => {
        const n = (params as { n: number }).n
        for (let i = 1; i <= n; i++) progress({ i })
        late = progress
        return 'done'
      }
    }
    await withServer(async path => {
      const client = new IpcClient(path)
      try {
        const seen: unknown[] = []
        assert.equal(await client.request('count', { n: 50 }, { onProgress: v => seen.push(v) }), 'done')
        assert.deepEqual(seen, Array.from({ length: 50 }, (_, k) => ({ i: k + 1 })))
        late!({ i: 'late' }) // after the answer: dropped by the server
        assert.equal(await client.request('count', { n: 0 }), 'done', 'the connection is still in step')
        await assert.rejects(client.request('count', { n: 3 }, { onProgress: () => { throw new Error('the listener broke') } }), /the listener broke/)
      } finally {
        await client.close()
      }
    }, h)
  })

  test('pipelined requests on one connection each get their own answer', async () => {
    await withServer(async path => {
      const client = new IpcClient(path)
      try {
        // later requests finish first: answers must be matched by id, not by order
        const slow = Array.from({ length: 20 }, (_, i) => client.request('slow', { ms: 40 - 2 * i, v: `s${i}` }))
        const fast = Array.from({ length: 500 }, (_, i) => client.request('add', { a: i, b: 1000 }))
        assert.deepEqual(await Promise.all(fast), Array.from({ length: 500 }, (_, i) => i + 1000))
        assert.deepEqual(await Promise.all(slow), Array.from({ length: 20 }, (_, i) => `s${i}`))
        // a failing request in the middle fails alone
        const mixed = await Promise.allSettled([client.request('echo', 1), client.request('boom'), client.request('echo', 3)])
        assert.deepEqual(mixed.map(r => r.status), ['fulfilled', 'rejected', 'fulfilled'])
      } finally {
        await client.close()
      }
    })
  })

  test('pipelined frames in one write on a raw socket are all answered', async () => {
    await withServer(async path => {
      const bytes = Buffer.concat([
        encodeFrame({ id: 'a', method: 'slow', params: { ms: 30, v: 'A' } }),
        encodeFrame({ id: 'b', method: 'echo', params: 'B' }),
        encodeFrame({ id: 3, method: 'nope' })
      ])
      const { frames } = await rawExchange(path, bytes, 3)
      const byId = new Map((frames as Array<{ id: unknown }>).map(f => [f.id, f]))
      assert.deepEqual(byId.get('a'), { id: 'a', result: 'A' })
      assert.deepEqual(byId.get('b'), { id: 'b', result: 'B' })
      assert.deepEqual(byId.get(3), { id: 3, error: { code: 'UNKNOWN_METHOD', message: 'unknown method "nope"' } })
      assert.equal((frames[0] as { id: unknown }).id, 'b', 'the fast answer is not held behind the slow one')
    })
  })

  test('unknown method -> UNKNOWN_METHOD; inherited names are not methods', async () => {
    await withServer(async path => {
      for (const method of ['nope', 'toString', '__proto__', 'constructor']) {
        await assert.rejects(ipcRequest(path, method), (err: unknown) => err instanceof IpcRemoteError && err.code === 'UNKNOWN_METHOD', method)
      }
    })
  })

  test('a handler that throws, rejects or returns what JSON cannot carry -> FAILED; the server carries on', async () => {
    await withServer(async path => {
      const client = new IpcClient(path)
      try {
        await assert.rejects(client.request('boom'), (err: unknown) => err instanceof IpcRemoteError && err.code === 'FAILED' && err.message === 'handler exploded')
        await assert.rejects(client.request('reject'), (err: unknown) => err instanceof IpcRemoteError && err.code === 'FAILED' && err.message === 'async handler failed')
        await assert.rejects(client.request('bigint'), (err: unknown) => err instanceof IpcRemoteError && err.code === 'FAILED')
        assert.equal(await client.request('echo', 'still here'), 'still here')
      } finally {
        await client.close()
      }
    })
  })

  test('a request of the wrong shape -> BAD_REQUEST, and the connection stays usable', async () => {
    await withServer(async path => {
      const bytes = Buffer.concat([
        encodeFrame({ id: 1 }),
        encodeFrame([1, 2, 3]),
        encodeFrame({ id: { x: 1 }, method: 'echo' }),
        encodeFrame({ id: 4, method: 'echo', params: 'ok' })
      ])
      const { frames, closedByServer } = await rawExchange(path, bytes, 4)
      assert.equal(closedByServer, false)
      assert.deepEqual(frames.map(f => (f as { error?: { code: string } }).error?.code ?? 'ok'), ['BAD_REQUEST', 'BAD_REQUEST', 'BAD_REQUEST', 'ok'])
      assert.deepEqual(frames.map(f => (f as { id: unknown }).id), [1, null, null, 4])
    })
  })

  test('garbage gets an error frame and the connection closes; the server serves the next client', async () => {
    await withServer(async path => {
      const garbage = Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.from('{{{{{')])
      const r = await rawExchange(path, garbage)
      assert.equal(r.closedByServer, true)
      assert.equal(r.frames.length, 1)
      const f = r.frames[0] as { id: unknown, error: { code: string, message: string } }
      assert.equal(f.id, null)
      assert.equal(f.error.code, 'BAD_REQUEST')
      assert.match(f.error.message, /not valid JSON/)

      // HTTP spoken at the socket: the first four bytes read as a huge length
      const http = await rawExchange(path, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
      assert.equal(http.closedByServer, true)
      assert.match((http.frames[0] as { error: { message: string } }).error.message, /exceeds the 4194304-byte limit/)

      assert.equal(await ipcRequest(path, 'echo', 'next'), 'next')
    })
  })

  test('an oversized length is refused before the body is sent', async () => {
    await withServer(async path => {
      const hdr = Buffer.alloc(4)
      hdr.writeUInt32LE(64 * 1024 * 1024, 0)
      const r = await rawExchange(path, hdr)
      assert.equal(r.closedByServer, true)
      assert.equal((r.frames[0] as { error: { code: string } }).error.code, 'BAD_REQUEST')
      assert.equal(await ipcRequest(path, 'echo', 1), 1)
    })
  })

  test('the IPC client rejects a server that sends garbage instead of hanging', async () => {
    const path = sockPath()
    const { createServer } = await import('node:net')
    const bogus = createServer(s => s.on('data', () => s.write(Buffer.from([2, 0, 0, 0, 0x7b, 0x7b]))))
    await new Promise<void>(resolve => bogus.listen(path, resolve))
    try {
      await assert.rejects(ipcRequest(path, 'status', undefined, { timeoutMs: 2000 }), { name: 'FrameError' })
    } finally {
      await new Promise(resolve => bogus.close(resolve))
    }
  })

  test('the socket file is mode 0600 even under a permissive umask', async () => {
    const old = process.umask(0)
    try {
      await withServer(async path => {
        assert.equal(process.umask(0), 0, 'the process umask is restored after listen')
        const st = lstatSync(path)
        assert.ok(st.isSocket())
        assert.equal((st.mode & 0o777).toString(8), '600')
      })
    } finally {
      process.umask(old)
    }
  })

  test('a stale socket file from a crashed node is replaced', async () => {
    const path = sockPath()
    await makeStaleSocket(path)
    await assert.rejects(ipcRequest(path, 'echo', 1), NodeNotRunningError)
    const server = await startIpcServer(path, handlers)
    try {
      assert.equal(await ipcRequest(path, 'echo', 'fresh'), 'fresh')
      assert.equal((lstatSync(path).mode & 0o777).toString(8), '600')
    } finally {
      await server.close()
    }
  })

  test('a second server on a live path fails clearly and leaves the first one serving', async () => {
    await withServer(async path => {
      await assert.rejects(startIpcServer(path, handlers), (err: unknown) => {
        assert.ok(err instanceof NodeAlreadyRunningError)
        assert.ok(err instanceof FileError, 'the CLI prints it as a one-line user error')
        assert.equal(err.message, `another node is running on ${path}`)
        return true
      })
      assert.equal(await ipcRequest(path, 'echo', 'first'), 'first')
      assert.ok(existsSync(path))
    })
  })

  test('a path that is not a socket is never replaced', async () => {
    const path = sockPath()
    writeFileSync(path, 'precious')
    await assert.rejects(startIpcServer(path, handlers), (err: unknown) => err instanceof FileError && /not a socket/.test(err.message))
    assert.ok(lstatSync(path).isFile())
  })

  test('a socket path too long for a Unix socket is a clear error', async () => {
    const path = join(dir, 'x'.repeat(120) + '.sock')
    await assert.rejects(startIpcServer(path, handlers), (err: unknown) => err instanceof FileError && /too long for a Unix socket/.test(err.message))
    await assert.rejects(ipcRequest(path, 'status'), (err: unknown) => err instanceof FileError && /too long/.test(err.message))
  })

  test('NodeNotRunningError when nothing listens (no file, or a stale file)', async () => {
    const home = join(dir, 'home-none')
    const path = join(home, 'node.sock')
    await assert.rejects(ipcRequest(path, 'status'), (err: unknown) => {
      assert.ok(err instanceof NodeNotRunningError)
      assert.equal(err.name, 'NodeNotRunningError')
      assert.equal(err.message, `no node is running at ${path} (start one with: bizra start --home ${home})`)
      assert.equal(err.message.includes('\n'), false)
      assert.equal(err.socketPath, path)
      assert.equal(err.home, home)
      return true
    })
    const stale = sockPath()
    await makeStaleSocket(stale)
    await assert.rejects(new IpcClient(stale, { home: '/my home' }).request('status'), (err: unknown) =>
      err instanceof NodeNotRunningError && err.message === `no node is running at ${stale} (start one with: bizra start --home '/my home')`)
  })

  test('timeoutMs bounds a request that gets no answer', async () => {
    await withServer(async path => {
      const client = new IpcClient(path)
      try {
        await assert.rejects(client.request('slow', { ms: 500, v: 1 }, { timeoutMs: 50 }), IpcTimeoutError)
        assert.equal(await client.request('echo', 'after'), 'after', 'a late answer does not confuse the next request')
      } finally {
        await client.close()
      }
    })
  })

  test('an AbortSignal abandons a request', async () => {
    await withServer(async path => {
      const client = new IpcClient(path)
      try {
        await assert.rejects(client.request('slow', { ms: 500, v: 1 }, { signal: AbortSignal.timeout(30) }), { name: 'TimeoutError' })
        assert.equal(await client.request('echo', 2), 2)
      } finally {
        await client.close()
      }
    })
  })

  test('a client that disconnects aborts its in-flight handlers', async () => {
    let aborted: Promise<unknown> | undefined
    const h: IpcHandlers = {
      wait: (_params, signal) => {
        aborted = new Promise(resolve => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }))
        return new Promise(() => {})
      }
    }
    await withServer(async path => {
      const client = new IpcClient(path)
      const pending = assert.rejects(client.request('wait'), IpcClosedError)
      while (aborted === undefined) await sleep(5)
      await client.close()
      await pending
      assert.ok(await aborted instanceof IpcClosedError)
    }, h)
  })

  test('close() stops accepting, ends connections, aborts in-flight handlers and unlinks the socket', async () => {
    const path = sockPath()
    let sawAbort = false
    const server = await startIpcServer(path, {
      hang: async (_params, signal) => {
        await new Promise<void>(resolve => signal.addEventListener('abort', () => resolve(), { once: true }))
        sawAbort = true
        throw signal.reason
      },
      echo: p => p
    })
    const client = new IpcClient(path)
    assert.equal(await client.request('echo', 1), 1)
    const hanging = client.request('hang')
    await sleep(20)
    await server.close()
    await assert.rejects(hanging, IpcClosedError)
    assert.equal(sawAbort, true)
    assert.equal(existsSync(path), false, 'the socket file is gone')
    await assert.rejects(client.request('echo', 2), NodeNotRunningError)
    await client.close()
    await server.close() // idempotent
  })

  test('a client reconnects after the node restarts', async () => {
    const path = sockPath()
    let server = await startIpcServer(path, { who: () => 'first' })
    const client = new IpcClient(path)
    try {
      assert.equal(await client.request('who'), 'first')
      await server.close()
      await sleep(20) // let the client see the old connection close
      server = await startIpcServer(path, { who: () => 'second' })
      assert.equal(await client.request('who'), 'second')
    } finally {
      await client.close()
      await server.close()
    }
    await assert.rejects(client.request('who'), IpcClosedError, 'a closed client stays closed')
  })
})
