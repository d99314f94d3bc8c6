/** Envelope reject codes (DESIGN.md), in verification order after R005. */
export const RejectCode = {
  TTL_EXPIRED: 'R001',
  INVALID_SIGNATURE: 'R002',
  IHSAN_BELOW_THRESHOLD: 'R003',
  SNR_BELOW_THRESHOLD: 'R004',
  MALFORMED_ENVELOPE: 'R005',
  REPLAY: 'R006'
} as const

export type RejectCode = typeof RejectCode[keyof typeof RejectCode]

export const REJECT_NAMES: Record<RejectCode, string> = {
  R001: 'TTL_EXPIRED',
  R002: 'INVALID_SIGNATURE',
  R003: 'IHSAN_BELOW_THRESHOLD',
  R004: 'SNR_BELOW_THRESHOLD',
  R005: 'MALFORMED_ENVELOPE',
  R006: 'REPLAY'
}
