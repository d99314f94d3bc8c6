import { describe, test, before } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readGgufFileInfo } from 'node-llama-cpp'
import { makeTinyLlama, TINY_LLAMA_DIMS, tinyVocab, writeTinyLlama } from '../../native/gguf/tiny-llama.ts'
import { readGgufHeader, readGgufInfo, GgufError } from '../../native/gguf/reader.ts'
import { array, bool, encodeGguf, f32, str, u32 } from '../../native/gguf/writer.ts'
import { GgufType } from '../../native/gguf/format.ts'
import { FileError } from '../../src/util/fs.ts'
import { tempDir } from '../helpers/nodes.ts'
import { mulberry32 } from '../helpers/random.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** parameters of the tiny model, counted from its dimensions */
function expectedParameters (): number {
  const d = TINY_LLAMA_DIMS
  const vocab = tinyVocab().tokens.length
  const kv = d.embedding / d.heads * d.kvHeads
  const block = 2 * d.embedding + 2 * d.embedding * d.embedding + 2 * d.embedding * kv + 3 * d.embedding * d.feedForward
  return 2 * vocab * d.embedding + d.embedding + d.blocks * block
}

describe('tiny GGUF writer', () => {
  test('same seed gives the same bytes; another seed gives other bytes', () => {
    const a = makeTinyLlama({ seed: 1 })
    assert.equal(sha(makeTinyLlama({ seed: 1 })), sha(a))
    assert.notEqual(sha(makeTinyLlama({ seed: 2 })), sha(a))
    // only the name and the weights depend on the seed: same length, same layout
    assert.equal(makeTinyLlama({ seed: 2, name: 'x' }).length, makeTinyLlama({ seed: 3, name: 'x' }).length)
  })

  test('is about half a megabyte', () => {
    const size = makeTinyLlama().length
    assert.ok(size > 300_000 && size < 800_000, `${size} bytes`)
  })

  test('refuses a seed that is not a uint32', () => {
    for (const seed of [-1, 1.5, 2 ** 32]) assert.throws(() => makeTinyLlama({ seed }), RangeError)
  })

  test('vocabulary: <unk>, <s>, </s>, 256 byte tokens of type 6, then plain pieces', () => {
    const v = tinyVocab()
    assert.deepEqual(v.tokens.slice(0, 3), ['<unk>', '<s>', '</s>'])
    assert.equal(v.tokens[3], '<0x00>')
    assert.equal(v.tokens[3 + 0x41], '<0x41>')
    assert.equal(v.tokens[258], '<0xFF>')
    assert.ok(v.types.slice(3, 259).every(t => t === 6))
    assert.ok(v.types.slice(259).every(t => t === 1))
    assert.equal(v.scores.length, v.tokens.length)
    assert.equal(new Set(v.tokens).size, v.tokens.length, 'tokens are unique')
  })
})

describe('GGUF header reader', () => {
  let dir: string
  let file: string
  before(() => {
    dir = tempDir('bz-gguf-')
    file = join(dir, 'tiny.gguf')
    writeTinyLlama(file, { seed: 7 })
  })

  test('readGgufInfo: architecture, parameters, file type, size, context, name', () => {
    const info = readGgufInfo(file)
    assert.deepEqual(info, {
      file,
      name: 'tiny-llama-7',
      architecture: 'llama',
      parameterCount: expectedParameters(),
      fileType: 'F32',
      sizeBytes: readFileSync(file).length,
      contextLength: TINY_LLAMA_DIMS.contextLength,
      tensorCount: 3 + 9 * TINY_LLAMA_DIMS.blocks,
      version: 3
    })
  })

  test('agrees with node-llama-cpp\'s own GGUF parser on every key, array and tensor', async () => {
    const theirs = await readGgufFileInfo(file, { logWarnings: false })
    const ours = readGgufHeader(file, { arrays: true })
    const m = theirs.metadata
    assert.equal(theirs.version, 3)
    assert.equal(m.general.architecture, 'llama')
    assert.equal(m.general.file_type, 0)
    const llama = m.llama!
    assert.equal(llama.context_length, TINY_LLAMA_DIMS.contextLength)
    assert.equal(llama.embedding_length, TINY_LLAMA_DIMS.embedding)
    assert.equal(llama.block_count, TINY_LLAMA_DIMS.blocks)
    assert.equal(llama.feed_forward_length, TINY_LLAMA_DIMS.feedForward)
    assert.equal(llama.attention.head_count, TINY_LLAMA_DIMS.heads)
    assert.equal(llama.attention.head_count_kv, TINY_LLAMA_DIMS.kvHeads)
    assert.equal(llama.rope?.dimension_count, TINY_LLAMA_DIMS.embedding / TINY_LLAMA_DIMS.heads)
    assert.ok(Math.abs(llama.attention.layer_norm_rms_epsilon! - 1e-5) < 1e-9)
    const tok = m.tokenizer!.ggml
    assert.equal(tok.model, 'llama')
    assert.deepEqual(tok.tokens, tinyVocab().tokens)
    assert.deepEqual(tok.token_type, tinyVocab().types)
    assert.equal(tok.bos_token_id, 1)
    assert.equal(tok.eos_token_id, 2)

    // our reader gives the same values for every key
    const flat = (o: object, prefix = ''): Array<[string, unknown]> => Object.entries(o).flatMap(([k, v]) =>
      v !== null && typeof v === 'object' && !Array.isArray(v) ? flat(v, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]])
    const theirKeys = flat(m)
    assert.equal(theirKeys.length, ours.metadata.size)
    for (const [key, value] of theirKeys) {
      const mine = ours.metadata.get(key)
      assert.notEqual(mine, undefined, key)
      assert.deepEqual(typeof mine === 'object' && mine !== null ? (mine as { items: unknown[] }).items : mine, value, key)
    }
    assert.equal(theirs.tensorInfo!.length, ours.tensors.length)
    for (const [i, t] of theirs.tensorInfo!.entries()) {
      const mine = ours.tensors[i]!
      assert.equal(mine.name, t.name)
      assert.deepEqual(mine.dims, t.dimensions.map(Number))
      assert.equal(mine.type, t.ggmlType)
      assert.equal(ours.dataOffset + mine.offset, Number(t.fileOffset))
    }
  })

  test('tensor data is F32, 32-byte aligned, and starts with the seeded PRNG stream', () => {
    const h = readGgufHeader(file)
    const bytes = readFileSync(file)
    assert.equal(h.dataOffset % 32, 0)
    for (const t of h.tensors) {
      assert.equal(t.type, 0, t.name)
      assert.equal(t.offset % 32, 0, t.name)
    }
    const embd = h.tensors.find(t => t.name === 'token_embd.weight')!
    const random = mulberry32(7) // the generator the writer uses, from the test helper
    for (let i = 0; i < 16; i++) {
      assert.equal(bytes.readFloatLE(h.dataOffset + embd.offset + 4 * i), Math.fround(random() * 2 - 1))
    }
  })

  test('metadata of every value type round-trips', () => {
    const out = join(dir, 'types.gguf')
    const data = new Float32Array([1.5, -2, 0, 3.25, 4, 5])
    writeFileSync(out, encodeGguf({
      metadata: [
        ['general.architecture', str('test')],
        ['a.u8', { type: GgufType.UINT8, value: 255 }],
        ['a.i8', { type: GgufType.INT8, value: -128 }],
        ['a.u16', { type: GgufType.UINT16, value: 65535 }],
        ['a.i16', { type: GgufType.INT16, value: -32768 }],
        ['a.u32', u32(4294967295)],
        ['a.i32', { type: GgufType.INT32, value: -2147483648 }],
        ['a.f32', f32(0.5)],
        ['a.f64', { type: GgufType.FLOAT64, value: Math.PI }],
        ['a.u64', { type: GgufType.UINT64, value: 2n ** 64n - 1n }],
        ['a.i64', { type: GgufType.INT64, value: -(2n ** 63n) }],
        ['a.bool', bool(true)],
        ['a.str', str('naïve ✓ 𝄞')],
        ['a.empty', str('')],
        ['a.strs', array(GgufType.STRING, ['x', '', 'yz'])],
        ['a.i32s', array(GgufType.INT32, [1, -2, 3])],
        ['a.none', array(GgufType.UINT8, [])]
      ],
      tensors: [{ name: 'w', dims: [3, 2], data }, { name: 'v', dims: [1], data: new Float32Array([9]) }]
    }))
    const h = readGgufHeader(out, { arrays: true })
    const get = (k: string): unknown => h.metadata.get(k)
    assert.equal(get('a.u8'), 255)
    assert.equal(get('a.i8'), -128)
    assert.equal(get('a.u16'), 65535)
    assert.equal(get('a.i16'), -32768)
    assert.equal(get('a.u32'), 4294967295)
    assert.equal(get('a.i32'), -2147483648)
    assert.equal(get('a.f32'), 0.5)
    assert.equal(get('a.f64'), Math.PI)
    assert.equal(get('a.u64'), 2n ** 64n - 1n)
    assert.equal(get('a.i64'), -(2n ** 63n))
    assert.equal(get('a.bool'), true)
    assert.equal(get('a.str'), 'naïve ✓ 𝄞')
    assert.equal(get('a.empty'), '')
    assert.deepEqual(get('a.strs'), { itemType: GgufType.STRING, length: 3, items: ['x', '', 'yz'] })
    assert.deepEqual(get('a.i32s'), { itemType: GgufType.INT32, length: 3, items: [1, -2, 3] })
    assert.deepEqual(readGgufHeader(out).metadata.get('a.strs'), { itemType: GgufType.STRING, length: 3 }, 'items only on request')
    assert.deepEqual(h.tensors.map(t => [t.name, t.dims, t.offset]), [['w', [3, 2], 0], ['v', [1], 32]])
    const info = readGgufInfo(out)
    assert.equal(info.parameterCount, 7)
    assert.equal(info.contextLength, undefined)
    assert.equal(info.name, undefined)
    assert.equal(info.fileType, 'F32', 'without general.file_type: the commonest tensor type')
  })

  test('the writer refuses a spec that would make a bad file', () => {
    const t = (dims: number[], n: number) => ({ metadata: [], tensors: [{ name: 't', dims, data: new Float32Array(n) }] })
    assert.throws(() => encodeGguf(t([2, 2], 3)), /dims hold 4 elements, data has 3/)
    assert.throws(() => encodeGguf(t([0], 0)), /positive integers/)
    assert.throws(() => encodeGguf(t([1, 1, 1, 1, 1], 1)), /1 to 4/)
    assert.throws(() => encodeGguf({ metadata: [['general.alignment', u32(24)]], tensors: [] }), /power of two/)
    assert.throws(() => encodeGguf({ metadata: [['k', u32(-1)]], tensors: [] }), RangeError)
    assert.throws(() => encodeGguf({ metadata: [['k', array(GgufType.INT32, ['x'])]], tensors: [] }), /does not fit/)
  })
})

describe('GGUF reader on bad files: a GgufError (a FileError) that names the file', () => {
  let dir: string
  let good: Buffer
  before(() => {
    dir = tempDir('bz-gguf-bad-')
    good = makeTinyLlama({ seed: 3 })
  })

  const expectError = (file: string, problem: RegExp): void => {
    assert.throws(() => readGgufInfo(file), (err: unknown) => {
      assert.ok(err instanceof GgufError)
      assert.ok(err instanceof FileError)
      assert.equal(err.path, file)
      assert.ok(err.message.startsWith(`${file}: `), err.message)
      assert.match(err.message, problem)
      return true
    })
  }

  const write = (name: string, bytes: Uint8Array): string => {
    const f = join(dir, name)
    writeFileSync(f, bytes)
    return f
  }

  test('missing file, directory, empty file, not GGUF', () => {
    expectError(join(dir, 'nope.gguf'), /not found/)
    const sub = join(dir, 'sub.gguf')
    mkdirSync(sub)
    expectError(sub, /not a regular file/)
    expectError(write('empty.gguf', new Uint8Array(0)), /not a GGUF file/)
    expectError(write('text.gguf', Buffer.from('hello, this is not a model\n')), /not a GGUF file \(bad magic\)/)
  })

  test('an unsupported version', () => {
    const b = Buffer.from(good)
    b.writeUInt32LE(99, 4)
    expectError(write('v99.gguf', b), /unsupported GGUF version 99/)
  })

  test('truncated anywhere: in the header, in the tensor infos, in the weights', () => {
    for (const length of [3, 7, 20, 200, 5000, good.length / 2, good.length - 1]) {
      expectError(write(`cut-${length}.gguf`, good.subarray(0, length)), /truncated|not a GGUF file/)
    }
  })

  test('corrupt lengths and types do not allocate or loop: they end in an error', () => {
    // the first key's string length (offset 24) and its value type (after the 20-byte key)
    const hugeString = Buffer.from(good)
    hugeString.writeBigUInt64LE(2n ** 40n, 24)
    expectError(write('huge-string.gguf', hugeString), /corrupt header: a string of/)
    const badType = Buffer.from(good)
    badType.writeUInt32LE(77, 24 + 8 + 'general.architecture'.length)
    expectError(write('bad-type.gguf', badType), /unknown value type 77/)
    const hugeCount = Buffer.from(good)
    hugeCount.writeBigUInt64LE(2n ** 63n, 16) // metadata count
    expectError(write('huge-count.gguf', hugeCount), /corrupt header/)
    // an array of 2^50 bytes in a small file: refused up front, not read item by item
    const arrayFile = encodeGguf({ metadata: [['a', array(GgufType.UINT8, [1, 2, 3])]], tensors: [] })
    arrayFile.writeBigUInt64LE(2n ** 50n, 24 + 8 + 1 + 4 + 4)
    const started = performance.now()
    expectError(write('huge-array.gguf', arrayFile), /truncated: metadata a has 1125899906842624 items/)
    assert.ok(performance.now() - started < 100)
  })

  test('seeded random byte corruption of the header never escapes as anything but a GgufError', () => {
    const h = readGgufHeader(write('ok.gguf', good))
    const random = mulberry32(0xbadf00d)
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(good.subarray(0, h.dataOffset + 64))
      const flips = 1 + Math.floor(random() * 4)
      for (let j = 0; j < flips; j++) b[Math.floor(random() * h.dataOffset)] = Math.floor(random() * 256)
      const f = write('fuzz.gguf', b)
      try {
        readGgufInfo(f)
      } catch (err) {
        assert.ok(err instanceof GgufError, `case ${i}: ${(err as Error).stack}`)
        assert.ok((err as Error).message.startsWith(f))
      }
    }
  })
})
