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

  /** Adds received bytes; returns every frame now complete, in order. */
  push (chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
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
