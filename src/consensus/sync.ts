import { lpStream } from '@libp2p/utils'
import type { Stream, Connection } from '@libp2p/interface'
import { PROTOCOLS } from '../net/protocols.ts'
import type { Host } from '../net/host.ts'
import type { PatternStore } from './store.ts'

/**
 * `/bizra/sync/1.0.0`: a late joiner asks a peer for committed patterns. The request is one
 * length-prefixed JSON frame `{ "since": <epoch ms> }`; the answer is one frame per
 * certificate and a final `{ "done": true }`. The requester verifies every certificate
 * against its own validator set before storing it, so a lying peer can only waste its time.
 */

const MAX_FRAME = 1024 * 1024
const MAX_CERTIFICATES = 100_000
const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
const decode = (b: { subarray: () => Uint8Array }): unknown => JSON.parse(new TextDecoder().decode(b.subarray()))

export function registerSyncHandler (host: Host, store: PatternStore): Promise<void> {
  return host.handle(PROTOCOLS.sync, async (stream: Stream, _connection: Connection) => {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
    const signal = AbortSignal.timeout(30_000)
    try {
      const req = decode(await lp.read({ signal })) as { since?: unknown }
      const since = typeof req?.since === 'number' ? req.since : 0
      for (const c of await store.listCommitted()) {
        if (c.committedAt >= since) await lp.write(encode(c.certificate), { signal })
      }
      await lp.write(encode({ done: true }), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }, { runOnLimitedConnection: false })
}

/** Fetches certificates from one peer; the caller verifies them before storing. */
export async function fetchCertificates (host: Host, peer: Parameters<Host['dialProtocol']>[0], since = 0, signal: AbortSignal = AbortSignal.timeout(30_000)): Promise<unknown[]> {
  const stream = await host.dialProtocol(peer, PROTOCOLS.sync, { signal })
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
  try {
    await lp.write(encode({ since }), { signal })
    const out: unknown[] = []
    while (out.length < MAX_CERTIFICATES) {
      const frame = decode(await lp.read({ signal }))
      if (frame !== null && typeof frame === 'object' && (frame as { done?: unknown }).done === true) break
      out.push(frame)
    }
    await stream.close({ signal })
    return out
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
