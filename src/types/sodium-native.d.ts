// The part of sodium-native (libsodium bindings) that the node uses: XSalsa20 as a stream.
declare module 'sodium-native' {
  interface Sodium {
    crypto_stream_PRIMITIVE: string
    crypto_stream_xor_STATEBYTES: number
    crypto_stream_xor_init: (state: Buffer, nonce: Buffer, key: Buffer) => void
    crypto_stream_xor_update: (state: Buffer, output: Buffer, input: Buffer) => void
  }
  const sodium: Sodium
  export default sodium
}
