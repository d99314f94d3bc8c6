import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/**
 * Yamux receive-window updates once half the window is used, as go-yamux and rust-yamux send
 * them (and as yamux's flow control intends: an update is credit, not an acknowledgement).
 *
 * @chainsafe/libp2p-yamux 8 sends a window-update frame after every data frame it receives. On
 * gossip that doubles the frames a node writes: each 500-byte message costs a 12-byte update
 * back, with its own Noise frame, private-network pass and socket write (16% of all CPU in
 * bench:gossip). With this rule a stream sends one update per half window (128 KiB at first)
 * instead. Frames with flags (SYN/ACK) and the window growth on a fast reader are unchanged: the
 * original method still runs whenever an update is due.
 *
 * Applied once per process, when this module is first imported (the host imports it).
 */
interface WindowFields {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}

type SendWindowUpdate = (this: YamuxStream) => void

const PATCHED = Symbol.for('bizra.yamux.halfWindowUpdates')
const proto = YamuxStream.prototype as unknown as { sendWindowUpdate: SendWindowUpdate, [PATCHED]?: true }

/** true when an update now would carry no flags and less than half the window: skip it */
export function windowUpdateCanWait (s: WindowFields): boolean {
  // Init and SYNReceived send SYN/ACK flags with the update; Paused is handled by the original
  if (s.state !== StreamState.Established && s.state !== StreamState.SYNSent && s.state !== StreamState.Finished) return false
  return s.recvWindow - s.recvWindowCapacity < s.recvWindow / 2
}

/** window updates this process's streams were due to consider, and how many of them waited */
export const yamuxWindowUpdates = { considered: 0, waited: 0 }

if (proto[PATCHED] !== true) {
  const original = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: YamuxStream): void {
    yamuxWindowUpdates.considered++
    if (windowUpdateCanWait(this as unknown as WindowFields)) {
      yamuxWindowUpdates.waited++
      return
    }
    original.call(this)
  }
  proto[PATCHED] = true
}
