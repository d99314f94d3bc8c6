import { DEFAULT_CONSTITUTION, type Constitution } from './constitution.ts'
import { fateCheck, type FateCode, type FateFinding, type FateScores } from './fate.ts'
import { RejectCode } from '../pci/codes.ts'
import type { Envelope } from '../pci/envelope.ts'

/** A request put to the gate chain: a tool (or task/message type), its input and declared scores. */
export interface GateRequest {
  tool: string
  input: unknown
  ihsan: number
  snr: number
}

export type GateName = 'SCHEMA' | 'SNR' | 'IHSAN' | 'FATE'
export type GateCode = typeof RejectCode.MALFORMED_ENVELOPE | typeof RejectCode.SNR_BELOW_THRESHOLD |
  typeof RejectCode.IHSAN_BELOW_THRESHOLD | FateCode

export interface GateScores {
  snr?: number
  ihsan?: number
  fate?: FateScores
}

export interface GateResult {
  passed: boolean
  /** first failing gate's code; null when every gate passed */
  code: GateCode | null
  /** first failing gate; null when every gate passed */
  gate: GateName | null
  reason?: string
  scores: GateScores
  findings?: FateFinding[]
}

const TOOL_RE = /^[A-Za-z][\w.:/-]{0,63}$/

function fail (gate: GateName, code: GateCode, reason: string, scores: GateScores, findings?: FateFinding[]): GateResult {
  return findings === undefined ? { passed: false, code, gate, reason, scores } : { passed: false, code, gate, reason, scores, findings }
}

/**
 * Runs Schema -> SNR -> Ihsan -> FATE and reports the first failure with its code. Pure and
 * synchronous: the gossip validators call it for every message.
 */
export function checkGates (request: unknown, constitution: Constitution = DEFAULT_CONSTITUTION): GateResult {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    return fail('SCHEMA', RejectCode.MALFORMED_ENVELOPE, 'request must be an object { tool, input, ihsan, snr }', {})
  }
  const r = request as Partial<GateRequest>
  if (typeof r.tool !== 'string' || !TOOL_RE.test(r.tool)) {
    return fail('SCHEMA', RejectCode.MALFORMED_ENVELOPE, 'tool must be a name of 1-64 characters [A-Za-z0-9_.:/-]', {})
  }
  if (r.input === undefined) return fail('SCHEMA', RejectCode.MALFORMED_ENVELOPE, 'input is required', {})
  if (typeof r.snr !== 'number' || !(r.snr >= 0 && r.snr <= 1)) {
    return fail('SCHEMA', RejectCode.MALFORMED_ENVELOPE, 'snr must be a number from 0 to 1', {})
  }
  if (typeof r.ihsan !== 'number' || !(r.ihsan >= 0 && r.ihsan <= 1)) {
    return fail('SCHEMA', RejectCode.MALFORMED_ENVELOPE, 'ihsan must be a number from 0 to 1', {})
  }
  const scores: GateScores = { snr: r.snr, ihsan: r.ihsan }
  if (r.snr < constitution.snr) {
    return fail('SNR', RejectCode.SNR_BELOW_THRESHOLD, `snr ${r.snr} < ${constitution.snr}`, scores)
  }
  if (r.ihsan < constitution.ihsan) {
    return fail('IHSAN', RejectCode.IHSAN_BELOW_THRESHOLD, `ihsan ${r.ihsan} < ${constitution.ihsan}`, scores)
  }
  const fate = fateCheck(r.tool, r.input, constitution)
  scores.fate = fate.scores
  if (!fate.passed) {
    const rules = [...new Set(fate.findings.map(f => f.rule))].join(', ')
    return fail('FATE', fate.code!, `FATE score ${round(fate.scores.score)} < ${fate.scores.threshold} for ${r.tool} (${rules})`, scores, fate.findings)
  }
  return fate.findings.length > 0
    ? { passed: true, code: null, gate: null, scores, findings: fate.findings }
    : { passed: true, code: null, gate: null, scores }
}

/** Gates a verified envelope: its type is the tool, its payload the input. */
export function checkEnvelopeGates (envelope: Envelope, constitution: Constitution = DEFAULT_CONSTITUTION): GateResult {
  return checkGates({ tool: envelope.type, input: envelope.payload, ihsan: envelope.ihsan, snr: envelope.snr }, constitution)
}

function round (n: number): number {
  return Math.round(n * 1000) / 1000
}
