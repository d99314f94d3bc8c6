/**
 * Serialises a GGUF v3 file: header, metadata key/values, tensor infos, then the tensor data,
 * each tensor aligned to `general.alignment`. Only F32 tensors: this writer exists to make small
 * test and demo models, never to quantise.
 */
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_SCALAR_BYTES, GGUF_VERSION, GgmlType, GgufType } from './format.ts'

type NumberType = typeof GgufType.UINT8 | typeof GgufType.INT8 | typeof GgufType.UINT16 | typeof GgufType.INT16 |
  typeof GgufType.UINT32 | typeof GgufType.INT32 | typeof GgufType.FLOAT32 | typeof GgufType.FLOAT64
type BigIntType = typeof GgufType.UINT64 | typeof GgufType.INT64
type ItemType = NumberType | BigIntType | typeof GgufType.BOOL | typeof GgufType.STRING

export type GgufValue =
  | { type: NumberType, value: number }
  | { type: BigIntType, value: bigint }
  | { type: typeof GgufType.BOOL, value: boolean }
  | { type: typeof GgufType.STRING, value: string }
  | { type: typeof GgufType.ARRAY, itemType: ItemType, items: ReadonlyArray<number | bigint | boolean | string> }

export const u32 = (value: number): GgufValue => ({ type: GgufType.UINT32, value })
export const f32 = (value: number): GgufValue => ({ type: GgufType.FLOAT32, value })
export const bool = (value: boolean): GgufValue => ({ type: GgufType.BOOL, value })
export const str = (value: string): GgufValue => ({ type: GgufType.STRING, value })
export const array = (itemType: ItemType, items: ReadonlyArray<number | bigint | boolean | string>): GgufValue => ({ type: GgufType.ARRAY, itemType, items })

export interface F32Tensor {
  name: string
  /** GGML order: dims[0] (ne0) varies fastest, so a [cols, rows] matrix is stored row by row */
  dims: readonly number[]
  data: Float32Array
}

export interface GgufSpec {
  /** in file order; `general.alignment`, when given, must be a u32 power of two */
  metadata: ReadonlyArray<readonly [string, GgufValue]>
  tensors: readonly F32Tensor[]
}

/** Encodes a GGUF v3 file. Throws RangeError for a spec that would not make a valid file. */
export function encodeGguf (spec: GgufSpec): Buffer {
  const alignment = alignmentOf(spec.metadata)
  const names = new Set<string>()
  for (const t of spec.tensors) {
    if (names.has(t.name)) throw new RangeError(`duplicate tensor name ${t.name}`)
    names.add(t.name)
    const elements = t.dims.reduce((a, b) => a * b, 1)
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some(d => !Number.isInteger(d) || d < 1)) throw new RangeError(`tensor ${t.name}: dims must be 1 to 4 positive integers`)
    if (elements !== t.data.length) throw new RangeError(`tensor ${t.name}: dims hold ${elements} elements, data has ${t.data.length}`)
  }

  const out = new ByteWriter()
  out.u32(GGUF_MAGIC)
  out.u32(GGUF_VERSION)
  out.u64(BigInt(spec.tensors.length))
  out.u64(BigInt(spec.metadata.length))
  for (const [key, value] of spec.metadata) {
    out.string(key)
    out.u32(value.type)
    writeValue(out, value)
  }
  let offset = 0
  const offsets: number[] = []
  for (const t of spec.tensors) {
    offset = alignUp(offset, alignment)
    offsets.push(offset)
    out.string(t.name)
    out.u32(t.dims.length)
    for (const d of t.dims) out.u64(BigInt(d))
    out.u32(GgmlType.F32)
    out.u64(BigInt(offset))
    offset += t.data.byteLength
  }
  out.padTo(alignment)
  const dataStart = out.length
  for (const [i, t] of spec.tensors.entries()) {
    out.padTo(alignment, dataStart + offsets[i]!)
    out.f32s(t.data)
  }
  return out.toBuffer()
}

function alignmentOf (metadata: GgufSpec['metadata']): number {
  const entry = metadata.find(([k]) => k === 'general.alignment')
  if (entry === undefined) return GGUF_DEFAULT_ALIGNMENT
  const v = entry[1]
  if (v.type !== GgufType.UINT32 || v.value < 1 || (v.value & (v.value - 1)) !== 0) throw new RangeError('general.alignment must be a u32 power of two')
  return v.value
}

const alignUp = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment

function writeValue (out: ByteWriter, v: GgufValue): void {
  if (v.type === GgufType.ARRAY) {
    out.u32(v.itemType)
    out.u64(BigInt(v.items.length))
    for (const item of v.items) writeScalar(out, v.itemType, item)
  } else {
    writeScalar(out, v.type, v.value)
  }
}

function writeScalar (out: ByteWriter, type: ItemType, value: number | bigint | boolean | string): void {
  const mismatch = (): RangeError => new RangeError(`metadata value ${String(value)} does not fit type ${type}`)
  if (type === GgufType.STRING) {
    if (typeof value !== 'string') throw mismatch()
    out.string(value)
  } else if (type === GgufType.BOOL) {
    if (typeof value !== 'boolean') throw mismatch()
    out.scalar(1, b => b.writeUInt8(value ? 1 : 0))
  } else if (type === GgufType.UINT64 || type === GgufType.INT64) {
    if (typeof value !== 'bigint') throw mismatch()
    out.scalar(8, b => type === GgufType.UINT64 ? b.writeBigUInt64LE(value) : b.writeBigInt64LE(value))
  } else {
    if (typeof value !== 'number') throw mismatch()
    const size = GGUF_SCALAR_BYTES[type]!
    out.scalar(size, b => {
      // Buffer's writers throw RangeError for out-of-range integers
      switch (type) {
        case GgufType.UINT8: b.writeUInt8(value); break
        case GgufType.INT8: b.writeInt8(value); break
        case GgufType.UINT16: b.writeUInt16LE(value); break
        case GgufType.INT16: b.writeInt16LE(value); break
        case GgufType.UINT32: b.writeUInt32LE(value); break
        case GgufType.INT32: b.writeInt32LE(value); break
        case GgufType.FLOAT32: b.writeFloatLE(value); break
        case GgufType.FLOAT64: b.writeDoubleLE(value); break
      }
    })
  }
}

/** An append-only little-endian byte buffer that grows by doubling. */
class ByteWriter {
  #buf = Buffer.alloc(64 * 1024)
  #len = 0

  get length (): number {
    return this.#len
  }

  #reserve (n: number): number {
    if (this.#len + n > this.#buf.length) {
      const next = Buffer.alloc(Math.max(this.#buf.length * 2, this.#len + n))
      this.#buf.copy(next, 0, 0, this.#len)
      this.#buf = next
    }
    const at = this.#len
    this.#len += n
    return at
  }

  scalar (size: number, write: (b: Buffer) => void): void {
    const at = this.#reserve(size)
    write(this.#buf.subarray(at, at + size))
  }

  u32 (v: number): void {
    this.scalar(4, b => b.writeUInt32LE(v))
  }

  u64 (v: bigint): void {
    this.scalar(8, b => b.writeBigUInt64LE(v))
  }

  string (s: string): void {
    const bytes = Buffer.from(s, 'utf8')
    this.u64(BigInt(bytes.length))
    bytes.copy(this.#buf, this.#reserve(bytes.length))
  }

  f32s (data: Float32Array): void {
    const at = this.#reserve(data.byteLength)
    for (let i = 0; i < data.length; i++) this.#buf.writeFloatLE(data[i]!, at + i * 4)
  }

  /** zero bytes up to the next multiple of `alignment`, or up to `target` when given */
  padTo (alignment: number, target = alignUp(this.#len, alignment)): void {
    this.#reserve(target - this.#len) // Buffer.alloc zero-fills, so the padding is zeros
  }

  toBuffer (): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#len))
  }
}
