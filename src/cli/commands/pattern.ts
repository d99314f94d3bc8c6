import { resolve } from 'node:path'
import { loadGenesis } from '../../node/genesis.ts'
import { homePaths, resolveHome } from '../../node/home.ts'
import { ipcRequest } from '../../node/ipc.ts'
import type { CommittedPattern } from '../../consensus/store.ts'
import type { ProposeResult } from '../../consensus/service.ts'
import { verifyCertificate } from '../../consensus/crypto.ts'
import { numberOption, parse, parseJson, readInput, required, str, UsageError } from '../args.ts'
import { emit } from '../output.ts'

export const usage = [
  'bizra pattern propose --id ID --content JSON --snr X --ihsan X [--wait]   put a pattern to the federation\'s vote',
  'bizra pattern list                    committed patterns (accepted and rejected) with their certificates',
  'bizra pattern show ID                 the latest commit of one pattern',
  'bizra pattern verify CERT_FILE|- --genesis FILE   check a commit certificate offline; exit 0 valid, 1 invalid'
].join('\n')

const OPTIONS = {
  genesis: { type: 'string' },
  id: { type: 'string' },
  content: { type: 'string' },
  snr: { type: 'string' },
  ihsan: { type: 'string' },
  wait: { type: 'boolean', default: false }
} as const

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, 'pattern')
  const [sub, file] = positionals
  const json = values.json === true
  const socket = (): string => homePaths(resolveHome(str(values, 'home'))).socket
  if (sub === 'propose') {
    const id = required(str(values, 'id'), 'id', 'pattern propose')
    const content = parseJson(required(str(values, 'content'), 'content', 'pattern propose'), '--content')
    const snr = numberOption(required(str(values, 'snr'), 'snr', 'pattern propose'), 'snr', 0, 1)!
    const ihsan = numberOption(required(str(values, 'ihsan'), 'ihsan', 'pattern propose'), 'ihsan', 0, 1)!
    const wait = values.wait === true
    const r = await ipcRequest(socket(), 'pattern.propose', { id, content, snr, ihsan, wait }, { timeoutMs: wait ? 3_700_000 : 20_000 }) as ProposeResult
    emit(json, r, () => r.status === 'committed'
      ? `pattern ${id} ${r.decision.toUpperCase()}ED by ${r.certificate.votes.length} validators in ${r.latencyMs} ms\ncertificate: ${JSON.stringify(r.certificate)}`
      : r.status === 'expired' ? `pattern ${id} EXPIRED without a quorum (digest ${r.digest})` : `pattern ${id} proposed (digest ${r.digest}); votes are being gathered`)
    return r.status === 'expired' ? 1 : 0
  }
  if (sub === 'list') {
    const list = await ipcRequest(socket(), 'pattern.list', {}, { timeoutMs: 20_000 }) as CommittedPattern[]
    emit(json, list, () => list.length === 0 ? 'no committed patterns yet' : list.map(p => `${p.id}  ${p.decision.padEnd(6)}  ${p.certificate.votes.length} votes  ${new Date(p.committedAt).toISOString()}  ${p.digest.slice(0, 16)}`).join('\n'))
    return 0
  }
  if (sub === 'show') {
    if (file === undefined || positionals.length > 2) throw new UsageError('pattern show: give one pattern ID')
    const p = await ipcRequest(socket(), 'pattern.show', { id: file }, { timeoutMs: 20_000 }) as CommittedPattern | null
    if (p === null) throw new UsageError(`no committed pattern with id ${JSON.stringify(file)}`)
    emit(json, p, () => `${p.id}: ${p.decision} (${p.certificate.votes.length} votes, committed ${new Date(p.committedAt).toISOString()})\ncontent: ${JSON.stringify(p.certificate.proposal.content)}\ncertificate: ${JSON.stringify(p.certificate)}`)
    return 0
  }
  if (sub === 'verify') {
    if (file === undefined || positionals.length > 2) throw new UsageError('pattern verify: give one CERT_FILE (or - for stdin)')
    const genesisFile = str(values, 'genesis')
    if (genesisFile === undefined) throw new UsageError('pattern verify: --genesis FILE is required (the validator set)')
    const genesis = loadGenesis(resolve(genesisFile))
    const input = parseJson(readInput(file, 'certificate'), file === '-' ? 'stdin' : file)
    // accept a bare certificate or a stored record / API answer that carries one
    const cert = (input !== null && typeof input === 'object' && 'certificate' in input) ? (input as { certificate: unknown }).certificate : input
    const check = verifyCertificate(cert, genesis.validators)
    if (check.ok) {
      const c = cert as { proposal: { id: string }, votes: unknown[] }
      emit(values.json === true, { ok: true, id: c.proposal.id, decision: check.decision, digest: check.digest, votes: c.votes.length, validators: genesis.validators.length },
        `valid certificate: pattern ${c.proposal.id} ${check.decision}ed by ${c.votes.length} of ${genesis.validators.length} validators (${genesis.federationId})`)
      return 0
    }
    emit(values.json === true, { ok: false, reason: check.reason }, `INVALID certificate: ${check.reason}`)
    return 1
  }
  throw new UsageError(`usage:\n${usage}`)
}
