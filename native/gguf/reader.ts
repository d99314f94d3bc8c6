/**
 * Reads the header of a GGUF file (metadata and tensor infos) without touching the weights:
 * the file is read in chunks as the parser needs them, so a 40 GB model costs a few MB of
 * reads. Any malformed, truncated or non-GGUF file is a GgufError that names the file.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { FileError } from '../../src/util/fs.ts'
import { FILE_TYPE_NAMES, GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_SCALAR_BYTES, GgufType } from './format.ts'

/** A file that is not a readable, well-formed GGUF file; the message names the file. */
export class GgufError extends FileError {
  static override readonly name: string = 'GgufError'
  override readonly name: string = 'GgufError'
}

export type GgufScalar = number | bigint | boolean | string

/** An array value; `items` only when the header was read with `arrays: true`. */
export interface GgufArray {
  itemType: number
  length: number
  items?: GgufScalar[]
}

export interface GgufTensorInfo {
  name: string
  /** GGML order (ne0 first) */
  dims: number[]
  /** ggml_type */
  type: number
  /** from the start of the data section */
  offset: number
}

export interface GgufHeader {
  version: number
  metadata: Map<string, GgufScalar | GgufArray>
  tensors: GgufTensorInfo[]
  /** absolute file offset of the tensor data */
  dataOffset: number
  sizeBytes: number
}

/** What a model list shows about a GGUF file. */
export interface GgufInfo {
  file: string
  /** `general.name`, else undefined */
  name: string | undefined
  architecture: string
  /** the sum of every tensor's element count */
  parameterCount: number
  /** quantisation: the `general.file_type` name (F32, Q4_K_M, ...), else the commonest tensor type's */
  fileType: string
  sizeBytes: number
  /** `<arch>.context_length`, the context the model was trained for */
  contextLength: number | undefined
  tensorCount: number
  version: number
}

export interface ReadHeaderOptions {
  /** keep array items (token lists can hold 150k strings); default false: length only */
  arrays?: boolean
}

// Bounds that no real model reaches; they stop a corrupt length from allocating gigabytes.
const MAX_STRING_BYTES = 64 * 1024 * 1024
const MAX_DIMS = 4
const CHUNK = 1024 * 1024

export function readGgufInfo (file: string): GgufInfo {
  const h = readGgufHeader(file)
  const architecture = h.metadata.get('general.architecture')
  if (typeof architecture !== 'string') throw new GgufError(file, 'not a usable GGUF model: general.architecture is missing')
  const name = h.metadata.get('general.name')
  const contextLength = h.metadata.get(`${architecture}.context_length`)
  return {
    file,
    name: typeof name === 'string' ? name : undefined,
    architecture,
    parameterCount: h.tensors.reduce((sum, t) => sum + t.dims.reduce((a, b) => a * b, 1), 0),
    fileType: fileTypeName(h),
    sizeBytes: h.sizeBytes,
    contextLength: typeof contextLength === 'number' ? contextLength : typeof contextLength === 'bigint' ? Number(contextLength) : undefined,
    tensorCount: h.tensors.length,
    version: h.version
  }
}

function fileTypeName (h: GgufHeader): string {
  const ft = h.metadata.get('general.file_type')
  if (typeof ft === 'number') return FILE_TYPE_NAMES[ft] ?? `file type ${ft}`
  const counts = new Map<number, number>()
  for (const t of h.tensors) counts.set(t.type, (counts.get(t.type) ?? 0) + 1)
  const commonest = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]
  return commonest === undefined ? 'unknown' : GGML_TYPES[commonest[0]]?.name ?? `ggml type ${commonest[0]}`
}

export function readGgufHeader (file: string, options: ReadHeaderOptions = {}): GgufHeader {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new GgufError(file, code === 'ENOENT' ? 'model file not found' : code === 'EACCES' ? 'model file is not readable (permission denied)' : `cannot open model file: ${(err as Error).message}`)
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw new GgufError(file, 'not a regular file')
    return parseHeader(new ChunkReader(fd, file, stat.size), options.arrays === true)
  } catch (err) {
    if (err instanceof GgufError) throw err
    throw new GgufError(file, `cannot read model file: ${(err as Error).message}`)
  } finally {
    closeSync(fd)
  }
}

function parseHeader (r: ChunkReader, keepArrays: boolean): GgufHeader {
  if (r.size < 4 || r.u32() !== GGUF_MAGIC) throw r.error('not a GGUF file (bad magic)')
  const version = r.u32()
  if (version !== 2 && version !== 3) throw r.error(`unsupported GGUF version ${version} (supported: 2, 3)`)
  const tensorCount = r.count('tensor count')
  const kvCount = r.count('metadata count')
  const metadata = new Map<string, GgufScalar | GgufArray>()
  for (let i = 0; i < kvCount; i++) {
    const key = r.string()
    const type = r.u32()
    if (type === GgufType.ARRAY) {
      const itemType = r.u32()
      if (itemType === GgufType.ARRAY) throw r.error(`metadata ${key}: nested arrays are not supported`)
      const length = r.count(`length of ${key}`)
      const itemBytes = itemType === GgufType.STRING ? 8 : GGUF_SCALAR_BYTES[itemType] // a string is at least its length
      if (itemBytes === undefined) throw r.error(`corrupt header: metadata ${key} has unknown item type ${itemType}`)
      if (length * itemBytes > r.size - r.position) throw r.error(`truncated: metadata ${key} has ${length} items, more than the rest of the file holds`)
      if (!keepArrays && itemType !== GgufType.STRING) {
        r.skip(length * itemBytes)
        metadata.set(key, { itemType, length })
        continue
      }
      const items: GgufScalar[] = []
      for (let j = 0; j < length; j++) {
        const item = r.scalar(itemType, key)
        if (keepArrays) items.push(item)
      }
      metadata.set(key, keepArrays ? { itemType, length, items } : { itemType, length })
    } else {
      metadata.set(key, r.scalar(type, key))
    }
  }
  const tensors: GgufTensorInfo[] = []
  for (let i = 0; i < tensorCount; i++) {
    const name = r.string()
    const nDims = r.u32()
    if (nDims < 1 || nDims > MAX_DIMS) throw r.error(`tensor ${name}: ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`)
    const dims: number[] = []
    for (let d = 0; d < nDims; d++) dims.push(r.count(`tensor ${name} dimension`))
    const type = r.u32()
    const offset = r.count(`tensor ${name} offset`)
    tensors.push({ name, dims, type, offset })
  }
  const alignment = metadata.get('general.alignment') ?? GGUF_DEFAULT_ALIGNMENT
  if (typeof alignment !== 'number' || alignment < 1 || (alignment & (alignment - 1)) !== 0) throw r.error('general.alignment is not a power of two')
  const dataOffset = Math.ceil(r.position / alignment) * alignment
  for (const t of tensors) {
    const end = dataOffset + t.offset + tensorBytes(t)
    if (end > r.size) throw r.error(`truncated: tensor ${t.name} ends at byte ${end} but the file has ${r.size} bytes`)
  }
  return { version, metadata, tensors, dataOffset, sizeBytes: r.size }
}

/** Bytes of a tensor's data; 0 for a type this reader does not know (its end goes unchecked). */
function tensorBytes (t: GgufTensorInfo): number {
  const layout = GGML_TYPES[t.type]
  if (layout === undefined) return 0
  return t.dims.reduce((a, b) => a * b, 1) / layout.block * layout.bytes
}

/** Sequential little-endian reads from a file descriptor, one chunk at a time. */
class ChunkReader {
  readonly size: number
  readonly #fd: number
  readonly #file: string
  #buf = Buffer.alloc(0)
  /** file offset of #buf[0] */
  #bufStart = 0
  #pos = 0

  constructor (fd: number, file: string, size: number) {
    this.#fd = fd
    this.#file = file
    this.size = size
  }

  get position (): number {
    return this.#pos
  }

  error (problem: string): GgufError {
    return new GgufError(this.#file, problem)
  }

  /** the next n bytes, reading more of the file when the buffer runs out */
  #take (n: number): Buffer {
    if (this.#pos + n > this.size) throw this.error(`truncated: the header needs byte ${this.#pos + n} but the file has ${this.size} bytes`)
    const at = this.#pos - this.#bufStart
    if (at + n > this.#buf.length) {
      const keep = this.#buf.subarray(at)
      const next = Buffer.allocUnsafe(Math.max(n, CHUNK))
      keep.copy(next)
      let filled = keep.length
      const want = Math.min(next.length, this.size - this.#pos)
      while (filled < want) {
        const got = readSync(this.#fd, next, filled, want - filled, this.#pos + filled)
        if (got === 0) throw this.error('truncated: the file ended while it was being read')
        filled += got
      }
      this.#buf = next.subarray(0, filled)
      this.#bufStart = this.#pos
    }
    const start = this.#pos - this.#bufStart
    this.#pos += n
    return this.#buf.subarray(start, start + n)
  }

  skip (n: number): void {
    if (this.#pos + n > this.size) throw this.error(`truncated: the header needs byte ${this.#pos + n} but the file has ${this.size} bytes`)
    this.#pos += n
  }

  u32 (): number {
    return this.#take(4).readUInt32LE(0)
  }

  /** a u64 count or offset that must fit in a JS number and in the file */
  count (what: string): number {
    const v = this.#take(8).readBigUInt64LE(0)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.error(`corrupt header: ${what} is ${v}`)
    return Number(v)
  }

  string (): string {
    const length = this.count('string length')
    if (length > MAX_STRING_BYTES) throw this.error(`corrupt header: a string of ${length} bytes`)
    return this.#take(length).toString('utf8')
  }

  scalar (type: number, key: string): GgufScalar {
    if (type === GgufType.STRING) return this.string()
    const size = GGUF_SCALAR_BYTES[type]
    if (size === undefined) throw this.error(`corrupt header: metadata ${key} has unknown value type ${type}`)
    const b = this.#take(size)
    switch (type) {
      case GgufType.UINT8: return b.readUInt8(0)
      case GgufType.INT8: return b.readInt8(0)
      case GgufType.UINT16: return b.readUInt16LE(0)
      case GgufType.INT16: return b.readInt16LE(0)
      case GgufType.UINT32: return b.readUInt32LE(0)
      case GgufType.INT32: return b.readInt32LE(0)
      case GgufType.FLOAT32: return b.readFloatLE(0)
      case GgufType.BOOL: return b.readUInt8(0) !== 0
      case GgufType.UINT64: return b.readBigUInt64LE(0)
      case GgufType.INT64: return b.readBigInt64LE(0)
      default: return b.readDoubleLE(0)
    }
  }
}
