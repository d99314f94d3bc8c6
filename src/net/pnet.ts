import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { xsalsa20 } from '@noble/ciphers/salsa.js'
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import type { AbortOptions, ConnectionProtector, Logger, MultiaddrConnection } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
import { SWARM_KEY_LENGTH } from './swarm-key.ts'

/**
 * The private-network connection protector (the "dark mesh"), with the wire format of
 * go-libp2p's pnet and @libp2p/pnet: each side first sends a random 24-byte nonce, then every
 * byte in each direction is XSalsa20 under the 32-byte swarm key and the nonce its sender chose,
 * the keystream running on across chunks. A peer without the key gets a nonce and noise back;
 * the layers above fail on garbage and the connection dies.
 *
 * Why not @libp2p/pnet 3.0.27: its `xsalsa20` WASM re-grows one shared WebAssembly memory each
 * time another cipher instance has grown it, so on Node 24 a single 64 MiB stream already aborts
 * the connection ("WebAssembly.Memory.grow(): Maximum memory size exceeded"). Here XSalsa20 runs
 * in libsodium (sodium-native: ~2.6 GB/s, 64-bit block counter); inbound bytes are decrypted where
 * they lie, outbound bytes go into fresh buffers of at most 64 KiB. @noble/ciphers is the fallback
 * where sodium-native cannot load (same bytes, about a fifth of the speed).
 */

export const NONCE_LENGTH = 24
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000
/** most bytes encrypted and handed to the transport in one piece */
const SEND_CHUNK = 64 * 1024

/** The nonce exchange failed: the peer closed early, timed out, or the dial was aborted. */
export class PrivateNetworkError extends Error {
  static override readonly name: string = 'PrivateNetworkError'
  override readonly name: string = 'PrivateNetworkError'
}

export type XSalsa20Backend = 'libsodium' | 'noble'

/** One direction's XSalsa20 keystream; each call continues where the previous one stopped. */
export interface XSalsa20Stream {
  /** XORs the keystream into `input`'s bytes and writes them to `output` (which may be `input`). */
  update: (input: Uint8Array, output: Uint8Array) => void
}

/** The part of sodium-native used here: libsodium's XSalsa20 with a stream state. */
interface SodiumStreamApi {
  crypto_stream_xor_STATEBYTES: number
  crypto_stream_xor_init: (state: Uint8Array, nonce: Uint8Array, key: Uint8Array) => void
  crypto_stream_xor_update: (state: Uint8Array, output: Uint8Array, input: Uint8Array) => void
}

function loadSodium (): SodiumStreamApi | undefined {
  try {
    const sodium = createRequire(import.meta.url)('sodium-native') as SodiumStreamApi & { crypto_stream_PRIMITIVE?: string }
    return sodium.crypto_stream_PRIMITIVE === 'xsalsa20' && typeof sodium.crypto_stream_xor_update === 'function' ? sodium : undefined
  } catch {
    return undefined
  }
}

const sodium = loadSodium()
if (sodium === undefined) {
  process.emitWarning('sodium-native could not be loaded: the private network falls back to @noble/ciphers XSalsa20 (about a fifth of the speed)', { code: 'BIZRA_PNET_NOBLE' })
}

/** The backend `privateNetwork()` uses unless told otherwise. */
export const DEFAULT_XSALSA20_BACKEND: XSalsa20Backend = sodium !== undefined ? 'libsodium' : 'noble'

class SodiumXSalsa20 implements XSalsa20Stream {
  readonly #api: SodiumStreamApi
  readonly #state: Uint8Array

  constructor (api: SodiumStreamApi, nonce: Uint8Array, key: Uint8Array) {
    this.#api = api
    this.#state = new Uint8Array(api.crypto_stream_xor_STATEBYTES)
    api.crypto_stream_xor_init(this.#state, nonce, key)
  }

  update (input: Uint8Array, output: Uint8Array): void {
    this.#api.crypto_stream_xor_update(this.#state, output, input)
  }
}

/**
 * XSalsa20 on @noble/ciphers, which takes a starting block counter but no partial block: whole
 * blocks go straight through noble, a trailing partial block's keystream is kept for the next
 * call. noble's counter is 32 bits, so one direction stops (throws) after 256 GiB.
 */
class NobleXSalsa20 implements XSalsa20Stream {
  readonly #key: Uint8Array
  readonly #nonce: Uint8Array
  readonly #block = new Uint8Array(64)
  #used = 64 // keystream bytes of #block already consumed
  #counter = 0 // next block number

  constructor (nonce: Uint8Array, key: Uint8Array) {
    this.#nonce = new Uint8Array(nonce)
    this.#key = new Uint8Array(key)
  }

  update (input: Uint8Array, output: Uint8Array): void {
    const n = input.length
    const block = this.#block
    let i = 0
    while (i < n && this.#used < 64) {
      output[i] = input[i]! ^ block[this.#used++]!
      i++
    }
    const rest = n - i
    const whole = rest - (rest % 64)
    if (whole > 0) {
      xsalsa20(this.#key, this.#nonce, input.subarray(i, i + whole), output.subarray(i, i + whole), this.#counter)
      this.#counter += whole / 64
      i += whole
    }
    if (i < n) {
      block.fill(0)
      xsalsa20(this.#key, this.#nonce, block, block, this.#counter)
      this.#counter++
      this.#used = 0
      while (i < n) {
        output[i] = input[i]! ^ block[this.#used++]!
        i++
      }
    }
  }
}

/** A fresh XSalsa20 keystream for (nonce, key) on the named backend (default: libsodium if it loads). */
export function createXSalsa20Stream (nonce: Uint8Array, key: Uint8Array, backend: XSalsa20Backend = DEFAULT_XSALSA20_BACKEND): XSalsa20Stream {
  if (nonce.length !== NONCE_LENGTH) throw new RangeError(`an XSalsa20 nonce is ${NONCE_LENGTH} bytes`)
  if (key.length !== SWARM_KEY_LENGTH) throw new RangeError(`an XSalsa20 key is ${SWARM_KEY_LENGTH} bytes`)
  if (backend === 'noble') return new NobleXSalsa20(nonce, key)
  if (sodium === undefined) throw new Error('sodium-native is not available; use the noble XSalsa20 backend')
  return new SodiumXSalsa20(sodium, nonce, key)
}

interface PrivateConnectionInit {
  maConn: MultiaddrConnection
  localNonce: Uint8Array
  remoteNonce: Uint8Array
  psk: Uint8Array
  backend: XSalsa20Backend
  log: Logger
}

/** The protected connection handed to the connection encrypter (what @libp2p/pnet returns too). */
class PrivateConnection extends AbstractMultiaddrConnection {
  readonly #maConn: MultiaddrConnection
  readonly #inbound: XSalsa20Stream
  readonly #outbound: XSalsa20Stream

  constructor (init: PrivateConnectionInit) {
    super({ log: init.log, remoteAddr: init.maConn.remoteAddr, direction: init.maConn.direction, maxMessageSize: SEND_CHUNK })
    this.#maConn = init.maConn
    this.#inbound = createXSalsa20Stream(init.remoteNonce, init.psk, init.backend)
    this.#outbound = createXSalsa20Stream(init.localNonce, init.psk, init.backend)

    this.#maConn.addEventListener('message', (evt) => {
      // bytes read off the transport are ours alone: decrypt them where they lie
      const data = evt.data
      if (data instanceof Uint8Array) {
        this.#inbound.update(data, data)
      } else {
        for (const buf of data) this.#inbound.update(buf, buf)
      }
      this.onData(data)
    })
    this.#maConn.addEventListener('drain', () => { this.onMuxerDrain() })
    this.#maConn.addEventListener('remoteCloseWrite', () => { this.onRemoteCloseWrite() })
    this.#maConn.addEventListener('close', (evt) => {
      // (the cipher states stay: bytes already read may still be delivered after 'close')
      if (evt.error != null) {
        if (evt.local === true) this.abort(evt.error)
        else this.onRemoteReset()
      } else {
        this.onTransportClosed()
      }
    })
  }

  sendData (data: Uint8ArrayList): SendResult {
    // the sender may still own these buffers: encrypt into one fresh buffer, in a single pass
    // (the base class hands us at most SEND_CHUNK bytes at a time, so the XOR stays cache-warm)
    const length = data.byteLength
    const boxed = Buffer.allocUnsafe(length)
    let offset = 0
    for (const buf of data) {
      const end = offset + buf.byteLength
      this.#outbound.update(buf, offset === 0 && end === length ? boxed : boxed.subarray(offset, end))
      offset = end
    }
    return { sentBytes: length, canSendMore: this.#maConn.send(boxed) }
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    await this.#maConn.close(options)
  }

  sendReset (err: Error): void {
    this.#maConn.abort(err)
  }

  sendPause (): void {
    this.#maConn.pause()
  }

  sendResume (): void {
    this.#maConn.resume()
  }
}

export interface PrivateNetworkInit {
  /** the 32 raw key bytes (parseSwarmKey / loadSwarmKey give them from a swarm.key file) */
  psk: Uint8Array
  /** limit on the nonce exchange, on top of any signal libp2p passes (default 10 s) */
  handshakeTimeoutMs?: number
  /** XSalsa20 implementation (default: libsodium, or noble where sodium-native cannot load) */
  backend?: XSalsa20Backend
}

class PrivateNetworkProtector implements ConnectionProtector {
  readonly #psk: Uint8Array
  readonly #timeoutMs: number
  readonly #backend: XSalsa20Backend
  readonly [Symbol.toStringTag] = 'bizra/pnet'

  constructor (psk: Uint8Array, timeoutMs: number, backend: XSalsa20Backend) {
    this.#psk = psk
    this.#timeoutMs = timeoutMs
    this.#backend = backend
  }

  async protect (connection: MultiaddrConnection, options?: AbortOptions): Promise<MultiaddrConnection> {
    const log = connection.log.newScope('pnet')
    const localNonce = new Uint8Array(randomBytes(NONCE_LENGTH))

    // our own limit on the exchange, plus the caller's signal (libp2p's upgrade timeout or dial)
    const controller = new AbortController()
    const timer = setTimeout(() => {
      controller.abort(new PrivateNetworkError(`no ${NONCE_LENGTH}-byte nonce from the peer within ${this.#timeoutMs} ms`))
    }, this.#timeoutMs)
    const outer = options?.signal
    const onOuterAbort = (): void => { controller.abort(new PrivateNetworkError('nonce exchange aborted', { cause: outer?.reason })) }
    if (outer?.aborted === true) onOuterAbort()
    else outer?.addEventListener('abort', onOuterAbort, { once: true })

    const bytes = byteStream(connection)
    let remoteNonce: Uint8Array
    try {
      const [remote] = await Promise.all([
        bytes.read({ bytes: NONCE_LENGTH, signal: controller.signal }),
        bytes.write(localNonce, { signal: controller.signal })
      ])
      remoteNonce = remote.subarray()
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : err
      const detail = (reason as Error | undefined)?.message ?? String(reason)
      const error = reason instanceof PrivateNetworkError
        ? reason
        : (reason as Error | undefined)?.name === 'UnexpectedEOFError'
            ? new PrivateNetworkError(`the peer closed the connection before sending its ${NONCE_LENGTH}-byte nonce (${detail})`, { cause: reason })
            : new PrivateNetworkError(`nonce exchange failed: ${detail}`, { cause: reason })
      log.error('%s', error.message)
      connection.abort(error)
      throw error
    } finally {
      clearTimeout(timer)
      outer?.removeEventListener('abort', onOuterAbort)
    }
    log('exchanged nonces')
    // unwrap hands back any bytes read past the nonce; they reach our listener once it is added
    return new PrivateConnection({ maConn: bytes.unwrap(), localNonce, remoteNonce, psk: this.#psk, backend: this.#backend, log })
  }
}

/**
 * `createLibp2p({ connectionProtector: privateNetwork({ psk }) })`, with the 32 raw key bytes.
 * Interoperates with `preSharedKey()` from @libp2p/pnet and with go-libp2p private networks
 * given the same swarm.key.
 */
export function privateNetwork (init: PrivateNetworkInit): (components?: unknown) => ConnectionProtector {
  if (init.psk.length !== SWARM_KEY_LENGTH) throw new RangeError(`a swarm key is ${SWARM_KEY_LENGTH} bytes`)
  const backend = init.backend ?? DEFAULT_XSALSA20_BACKEND
  if (backend === 'libsodium' && sodium === undefined) throw new Error('sodium-native is not available for the private network; use backend "noble"')
  const timeoutMs = init.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS
  const psk = new Uint8Array(init.psk)
  return () => new PrivateNetworkProtector(psk, timeoutMs, backend)
}
