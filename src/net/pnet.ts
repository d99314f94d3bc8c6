import { preSharedKey } from '@libp2p/pnet'
import type { ConnectionProtector } from '@libp2p/interface'
import { formatSwarmKey } from './swarm-key.ts'

/**
 * The private-network connection protector: XSalsa20 with a 24-byte nonce exchange under the
 * federation's pre-shared key, the wire format of go-libp2p and @libp2p/pnet.
 */
export function privateNetwork (init: { psk: Uint8Array }): (components: any) => ConnectionProtector {
  return preSharedKey({ psk: new TextEncoder().encode(formatSwarmKey(init.psk)) })
}
