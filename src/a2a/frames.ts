import { Uint8ArrayList } from 'uint8arraylist'

/**
 * Length-prefixed frames on a libp2p stream (unsigned varint length, then the bytes): the
 * framing `lpStream` from @libp2p/utils reads and writes. This reader is push-based, so a
 * long-lived stream carrying many frames is decoded from its 'message' events without a
 * read loop per frame.
 */

export class FrameTooLargeError extends Error {
  static override readonly name: string = 'FrameTooLargeError'
  override readonly name: string = 'FrameTooLargeError'
}

export class FrameReader {
  readonly #buffer = new Uint8ArrayList()
  readonly #maxLength: number

  constructor (maxLength: number) {
    this.#maxLength = maxLength
  }

  /**
   * Adds received bytes; returns every frame now complete, in order. A returned frame may be
   * a view of `chunk`: read it before the chunk's owner reuses the memory.
   */
  push (chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    // the common case, nothing held over: cut the frames straight out of the chunk (one copy at
    // most, to join a list of buffers) and keep only an incomplete tail
    if (this.#buffer.byteLength === 0) return this.#pushBytes(chunk instanceof Uint8Array ? chunk : chunk.subarray())
    this.#buffer.append(chunk)
    const out: Uint8Array[] = []
    for (;;) {
      const header = readVarint(this.#buffer)
      if (header === undefined) return out
      const { value: length, bytes } = header
      if (length > this.#maxLength) throw new FrameTooLargeError(`frame of ${length} bytes exceeds ${this.#maxLength}`)
      if (this.#buffer.byteLength < bytes + length) return out
      out.push(this.#buffer.subarray(bytes, bytes + length))
      this.#buffer.consume(bytes + length)
    }
  }

  #pushBytes (chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    let at = 0
    while (at < chunk.byteLength) {
      // varint at `at` (at most 5 bytes: 32-bit lengths)
      let length = 0
      let i = 0
      for (;;) {
        if (at + i >= chunk.byteLength) {
          if (i >= 5) throw new FrameTooLargeError('frame length varint longer than 5 bytes')
          this.#buffer.append(chunk.subarray(at))
          return out
        }
        if (i >= 5) throw new FrameTooLargeError('frame length varint longer than 5 bytes')
        const b = chunk[at + i]!
        length += (b & 0x7f) * 2 ** (7 * i)
        i++
        if ((b & 0x80) === 0) break
      }
      if (length > this.#maxLength) throw new FrameTooLargeError(`frame of ${length} bytes exceeds ${this.#maxLength}`)
      if (at + i + length > chunk.byteLength) {
        this.#buffer.append(chunk.subarray(at))
        return out
      }
      out.push(chunk.subarray(at + i, at + i + length))
      at += i + length
    }
    return out
  }
}

/** The bytes of one frame: varint length + data. */
export function frame (data: Uint8Array): Uint8Array {
  let n = data.byteLength
  const header: number[] = []
  while (n >= 0x80) {
    header.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  header.push(n)
  const out = new Uint8Array(header.length + data.byteLength)
  out.set(header, 0)
  out.set(data, header.length)
  return out
}

/** An unsigned varint at the buffer's start, or undefined while incomplete (max 5 bytes: 32-bit lengths). */
function readVarint (buf: Uint8ArrayList): { value: number, bytes: number } | undefined {
  let value = 0
  for (let i = 0; i < Math.min(buf.byteLength, 5); i++) {
    const b = buf.get(i)
    value += (b & 0x7f) * 2 ** (7 * i)
    if ((b & 0x80) === 0) return { value, bytes: i + 1 }
  }
  if (buf.byteLength >= 5) throw new FrameTooLargeError('frame length varint longer than 5 bytes')
  return undefined
}

function varintLength (n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}

/** pending text past which a writer sends at once instead of waiting for the end of the turn */
const FLUSH_AT_CHARS = 64 * 1024

/**
 * Coalesces the frames written to one stream during a turn of the event loop into a single
 * `send`. Each `send` on a libp2p stream is a muxer frame, an encryption and a socket write of
 * its own, and the receiving muxer answers each data frame with a window update: frames that
 * become ready together (results of tasks that finished in the same tick, tasks started by the
 * same batch of results) cost one of each instead of one per frame. Frames go out in the order
 * written, at the end of the current turn (setImmediate: after the I/O callbacks of this loop
 * iteration, so frames produced by several incoming chunks share one write), or at once past
 * FLUSH_AT_CHARS of pending text. `flush()` sends what is pending now (before a close).
 */
export class FrameWriter {
  readonly #send: (bytes: Uint8Array) => void
  readonly #onError: (err: Error) => void
  #pending: string[] = []
  #chars = 0
  #scheduled = false

  /**
   * `send` gets the bytes of one or more whole frames; when it throws (the stream is going
   * away) those frames are lost, and a deferred flush reports the error to `onError`.
   */
  constructor (send: (bytes: Uint8Array) => void, onError: (err: Error) => void = () => {}) {
    this.#send = send
    this.#onError = onError
  }

  /** Queues one frame holding the UTF-8 of `json`. */
  write (json: string): void {
    this.#pending.push(json)
    this.#chars += json.length
    if (this.#chars >= FLUSH_AT_CHARS) {
      this.flush()
    } else if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#onTurnEnd)
    }
  }

  /** Drops what is pending (the stream is gone). */
  discard (): void {
    this.#pending = []
    this.#chars = 0
  }

  /** Sends every pending frame now, in one `send`; throws what `send` throws. */
  flush (): void {
    const parts = this.#pending
    if (parts.length === 0) return
    this.#pending = []
    this.#chars = 0
    const lengths = new Array<number>(parts.length)
    let total = 0
    for (let i = 0; i < parts.length; i++) {
      const n = Buffer.byteLength(parts[i]!, 'utf8')
      lengths[i] = n
      total += varintLength(n) + n
    }
    const out = Buffer.allocUnsafe(total)
    let at = 0
    for (let i = 0; i < parts.length; i++) {
      let n = lengths[i]!
      while (n >= 0x80) {
        out[at++] = (n & 0x7f) | 0x80
        n = Math.floor(n / 128)
      }
      out[at++] = n
      at += out.write(parts[i]!, at, 'utf8')
    }
    this.#send(out)
  }

  readonly #onTurnEnd = (): void => {
    this.#scheduled = false
    try {
      this.flush()
    } catch (err) {
      this.#onError(err as Error)
    }
  }
}
