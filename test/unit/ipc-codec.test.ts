import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_MAX_FRAME, encodeFrame, FrameDecoder, FrameError } from '../../src/node/ipc-codec.ts'

const header = (length: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(length, 0)
  return b
}
const raw = (body: string): Buffer => Buffer.concat([header(Buffer.byteLength(body)), Buffer.from(body)])

const values: unknown[] = [
  { id: 1, method: 'status' },
  { id: 'x', method: 'dial', params: { multiaddr: '/ip4/127.0.0.1/tcp/9000/p2p/12D3KooWabc' } },
  { id: 3, result: { text: 'naïve ✓ 𝄞 — مرحبا', list: [1, 2.5, null, true, false], nested: { a: { b: [] } } } },
  null,
  0,
  '',
  []
]

describe('IPC frame codec', () => {
  test('encodeFrame: 4-byte little-endian byte length, then UTF-8 JSON', () => {
    const v = { id: 7, result: 'é' }
    const f = encodeFrame(v)
    const json = JSON.stringify(v)
    assert.equal(f.readUInt32LE(0), Buffer.byteLength(json))
    assert.equal(f.length, 4 + Buffer.byteLength(json))
    assert.equal(f.subarray(4).toString('utf8'), json)
    assert.deepEqual(f, raw(json))
  })

  test('encodeFrame refuses what JSON cannot carry and bodies over the limit', () => {
    for (const bad of [undefined, () => 1, 1n]) {
      assert.throws(() => encodeFrame(bad), (err: unknown) => err instanceof FrameError && err.code === 'NOT_SERIALIZABLE')
    }
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    assert.throws(() => encodeFrame(cyclic), (err: unknown) => err instanceof FrameError && err.code === 'NOT_SERIALIZABLE')
    assert.throws(() => encodeFrame('x'.repeat(100), 50), (err: unknown) => err instanceof FrameError && err.code === 'FRAME_TOO_LARGE')
    assert.equal(encodeFrame('x'.repeat(48), 50).length, 54) // 50-byte body: exactly at the limit
  })

  test('a stream split at every byte boundary decodes to the same values', () => {
    const stream = Buffer.concat(values.map(v => encodeFrame(v)))
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder()
      const out = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))]
      assert.deepEqual(out, values, `split at byte ${cut}`)
      assert.equal(d.buffered, 0)
    }
  })

  test('a stream split at every pair of boundaries (three chunks) decodes', () => {
    const stream = Buffer.concat(values.slice(0, 3).map(v => encodeFrame(v)))
    for (let a = 0; a <= stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 5) {
        const d = new FrameDecoder()
        const out = [...d.push(stream.subarray(0, a)), ...d.push(stream.subarray(a, b)), ...d.push(stream.subarray(b))]
        assert.deepEqual(out, values.slice(0, 3), `split at ${a} and ${b}`)
      }
    }
  })

  test('one byte at a time', () => {
    const stream = Buffer.concat(values.map(v => encodeFrame(v)))
    const d = new FrameDecoder()
    const out: unknown[] = []
    for (let i = 0; i < stream.length; i++) out.push(...d.push(stream.subarray(i, i + 1)))
    assert.deepEqual(out, values)
  })

  test('many frames in one chunk come out in order', () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({ id: i, method: 'status', params: { i } }))
    const d = new FrameDecoder()
    const out = d.push(Buffer.concat(many.map(v => encodeFrame(v))))
    assert.deepEqual(out, many)
    assert.equal(d.buffered, 0)
  })

  test('a chunk that ends mid-header keeps the partial header', () => {
    const f = encodeFrame({ id: 1 })
    const d = new FrameDecoder()
    assert.deepEqual(d.push(Buffer.concat([f, f.subarray(0, 2)])), [{ id: 1 }])
    assert.equal(d.buffered, 2)
    assert.deepEqual(d.push(f.subarray(2)), [{ id: 1 }])
  })

  test('accepts plain Uint8Array chunks and empty chunks', () => {
    const f = encodeFrame({ ok: true })
    const d = new FrameDecoder()
    assert.deepEqual(d.push(new Uint8Array(0)), [])
    assert.deepEqual(d.push(new Uint8Array(f.subarray(0, 3))), [])
    assert.deepEqual(d.push(new Uint8Array(f.subarray(3))), [{ ok: true }])
  })

  test('a large frame in many small chunks decodes in linear time', () => {
    const big = { id: 1, result: 'y'.repeat(3 * 1024 * 1024) }
    const f = encodeFrame(big)
    const d = new FrameDecoder()
    const t0 = performance.now()
    let out: unknown[] = []
    for (let i = 0; i < f.length; i += 64) out = out.concat(d.push(f.subarray(i, i + 64)))
    const ms = performance.now() - t0
    assert.deepEqual(out, [big])
    // ~49k chunks: a decoder that re-joins its buffer per chunk copies ~75 GB and takes minutes
    assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`)
  })

  test('a length over the limit is refused from the header alone', () => {
    const d = new FrameDecoder(1024)
    assert.throws(() => d.push(header(1025)), (err: unknown) => err instanceof FrameError && err.code === 'FRAME_TOO_LARGE' && /1025/.test(err.message))
    assert.equal(new FrameDecoder().maxFrame, DEFAULT_MAX_FRAME)
    assert.throws(() => new FrameDecoder().push(header(DEFAULT_MAX_FRAME + 1)), FrameError)
    assert.throws(() => new FrameDecoder().push(header(0xffffffff)), FrameError)
    // exactly at the limit is fine
    const ok = new FrameDecoder(10)
    assert.deepEqual(ok.push(raw('"12345678"')), ['12345678'])
  })

  test('a body that is not JSON is a FrameError; the decoder stays failed', () => {
    const d = new FrameDecoder()
    const good = encodeFrame({ id: 1 })
    let caught: unknown
    try {
      d.push(Buffer.concat([good, raw('{not json'), good]))
    } catch (err) {
      caught = err
    }
    assert.ok(caught instanceof FrameError)
    assert.equal(caught.code, 'INVALID_JSON')
    assert.equal(caught.name, 'FrameError')
    assert.equal(FrameError.name, 'FrameError')
    assert.deepEqual(caught.decoded, [{ id: 1 }], 'frames before the bad one are reported')
    assert.throws(() => d.push(good), FrameError)
    assert.throws(() => new FrameDecoder().push(raw('')), FrameError) // a zero-length body is not JSON
    assert.throws(() => new FrameDecoder().push(Buffer.concat([header(3), Buffer.from([0xff, 0xfe, 0x22])])), FrameError)
  })

  test('maxFrame must be a valid length', () => {
    assert.throws(() => new FrameDecoder(-1), RangeError)
    assert.throws(() => new FrameDecoder(1.5), RangeError)
    assert.throws(() => new FrameDecoder(2 ** 32), RangeError)
  })
})
