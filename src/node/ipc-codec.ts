/**
 * IPC frames (DESIGN.md "Defaults"): a 4-byte little-endian length, then that many bytes of
 * UTF-8 JSON. Pure encode/decode, no sockets: the decoder accepts any chunking and bounds
 * every frame, so a peer cannot make the reader buffer without limit.
 */

/** Default bound on one frame's JSON body: 4 MiB. */
export const DEFAULT_MAX_FRAME = 4 * 1024 * 1024

/** Bytes of the length prefix. */
export const FRAME_HEADER_BYTES = 4

export type FrameErrorCode = 'FRAME_TOO_LARGE' | 'INVALID_JSON' | 'NOT_SERIALIZABLE'

/**
 * A frame that cannot be encoded or decoded. After a decode error the byte stream has no
 * trustworthy frame boundary left: the reader answers an error and closes the connection.
 */
export class FrameError extends Error {
  static override readonly name: string = 'FrameError'
  override readonly name: string = 'FrameError'
  readonly code: FrameErrorCode
  /** values of whole frames decoded from the same push before the bad one, in order */
  readonly decoded: unknown[]

  constructor (code: FrameErrorCode, message: string, decoded: unknown[] = []) {
    super(message)
    this.code = code
    this.decoded = decoded
  }
}

/**
 * Encodes one value as a frame. Throws FrameError('NOT_SERIALIZABLE') for a value JSON cannot
 * carry (undefined, a function, a BigInt, a cycle) and FrameError('FRAME_TOO_LARGE') when the
 * body is over `maxFrame` bytes (the reader would refuse it).
 */
export function encodeFrame (value: unknown, maxFrame = DEFAULT_MAX_FRAME): Buffer {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    throw new FrameError('NOT_SERIALIZABLE', `value is not JSON-serializable: ${(err as Error)?.message ?? String(err)}`)
  }
  if (json === undefined) throw new FrameError('NOT_SERIALIZABLE', `value is not JSON-serializable: ${typeof value}`)
  const length = Buffer.byteLength(json, 'utf8')
  if (length > maxFrame) throw new FrameError('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the ${maxFrame}-byte limit`)
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length)
  frame.writeUInt32LE(length, 0)
  frame.write(json, FRAME_HEADER_BYTES, 'utf8')
  return frame
}

/**
 * Incremental decoder: push chunks as they arrive, get the values of the frames they complete.
 * Chunks are kept as a list and joined once per frame (only the pieces of that frame), so a
 * frame that arrives in many pieces costs one copy, not one per piece; small frames that sit
 * inside one chunk are parsed in place with no copy at all.
 */
export class FrameDecoder {
  readonly maxFrame: number
  #chunks: Buffer[] = []
  /** read offset into #chunks[0] */
  #offset = 0
  #buffered = 0
  /** body length of the frame being collected, -1 while its header is incomplete */
  #need = -1
  #failed: FrameError | undefined

  constructor (maxFrame = DEFAULT_MAX_FRAME) {
    if (!Number.isInteger(maxFrame) || maxFrame < 0 || maxFrame > 0xffffffff) throw new RangeError(`maxFrame must be an integer in 0..2^32-1, got ${maxFrame}`)
    this.maxFrame = maxFrame
  }

  /** bytes received but not yet returned as values */
  get buffered (): number {
    return this.#buffered
  }

  /**
   * Throws FrameError for a length over `maxFrame` (as soon as the header is in, before the
   * body is buffered) or a body that is not UTF-8 JSON. The decoder is then failed: every later
   * push throws the same error.
   */
  push (chunk: Uint8Array): unknown[] {
    if (this.#failed !== undefined) throw this.#failed
    const out: unknown[] = []
    if (chunk.length > 0) {
      this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))
      this.#buffered += chunk.length
    }
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < FRAME_HEADER_BYTES) break
        const length = this.#take(FRAME_HEADER_BYTES).readUInt32LE(0)
        if (length > this.maxFrame) {
          throw this.#fail(new FrameError('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the ${this.maxFrame}-byte limit`, out))
        }
        this.#need = length
      }
      if (this.#buffered < this.#need) break
      const body = this.#take(this.#need)
      this.#need = -1
      let value: unknown
      try {
        value = JSON.parse(body.toString('utf8'))
      } catch {
        throw this.#fail(new FrameError('INVALID_JSON', `frame of ${body.length} bytes is not valid JSON`, out))
      }
      out.push(value)
    }
    return out
  }

  #fail (err: FrameError): FrameError {
    this.#failed = err
    this.#chunks = []
    this.#offset = 0
    this.#buffered = 0
    return err
  }

  /** removes and returns the next n buffered bytes (n <= #buffered); copies only across chunks */
  #take (n: number): Buffer {
    if (n === 0) return Buffer.alloc(0)
    const first = this.#chunks[0]!
    const available = first.length - this.#offset
    this.#buffered -= n
    if (available >= n) {
      const out = first.subarray(this.#offset, this.#offset + n)
      if (available === n) {
        this.#chunks.shift()
        this.#offset = 0
      } else {
        this.#offset += n
      }
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    let used = 0 // whole chunks consumed, dropped with one splice (not a shift per chunk)
    while (filled < n) {
      const c = this.#chunks[used]!
      const take = Math.min(c.length - this.#offset, n - filled)
      c.copy(out, filled, this.#offset, this.#offset + take)
      filled += take
      if (this.#offset + take === c.length) {
        used++
        this.#offset = 0
      } else {
        this.#offset += take
      }
    }
    this.#chunks.splice(0, used)
    return out
  }
}
