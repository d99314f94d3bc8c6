/**
 * IPC frames (DESIGN.md): a 4-byte little-endian length, then that many bytes of UTF-8 JSON.
 * Pure encode/decode; the decoder accepts arbitrary chunking and bounds every frame.
 */

export const DEFAULT_MAX_FRAME = 4 * 1024 * 1024

export class FrameError extends Error {
  static override readonly name: string = 'FrameError'
  override readonly name: string = 'FrameError'
}

export function encodeFrame (value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  const frame = Buffer.allocUnsafe(4 + body.length)
  frame.writeUInt32LE(body.length, 0)
  body.copy(frame, 4)
  return frame
}

/** Incremental decoder: push chunks as they arrive, get whole decoded values back. */
export class FrameDecoder {
  readonly #max: number
  #chunks: Buffer[] = []
  #buffered = 0

  constructor (maxFrame = DEFAULT_MAX_FRAME) {
    this.#max = maxFrame
  }

  /** Throws FrameError for an oversized frame or a body that is not JSON. */
  push (chunk: Buffer): unknown[] {
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
    const out: unknown[] = []
    while (this.#buffered >= 4) {
      const head = this.#peek(4)
      const length = head.readUInt32LE(0)
      if (length > this.#max) throw new FrameError(`frame of ${length} bytes exceeds the ${this.#max}-byte limit`)
      if (this.#buffered < 4 + length) break
      const frame = this.#take(4 + length)
      try {
        out.push(JSON.parse(frame.toString('utf8', 4)))
      } catch {
        throw new FrameError('frame is not valid JSON')
      }
    }
    return out
  }

  // Joins buffered chunks only when a frame is complete (or its header spans chunks), so a
  // large frame arriving in many pieces is copied once, not once per piece.
  #peek (n: number): Buffer {
    if (this.#chunks[0]!.length < n) this.#chunks = [Buffer.concat(this.#chunks)]
    return this.#chunks[0]!
  }

  #take (n: number): Buffer {
    const first = this.#peek(n)
    const frame = first.subarray(0, n)
    if (first.length === n) this.#chunks.shift()
    else this.#chunks[0] = first.subarray(n)
    this.#buffered -= n
    return frame
  }
}
