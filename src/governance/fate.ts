import { fateThreshold, type Constitution } from './constitution.ts'

/**
 * FATE: scores a tool/task request on Fidelity (no secrets), Accountability (no erasing the
 * audit trail, no silent privilege escalation), Transparency (no obfuscated or unseen code)
 * and Ethics (no destructive commands). Each dimension starts at 1 and loses a penalty per
 * finding; the request passes when the mean reaches the tool's threshold (Bash 0.98,
 * Write/Edit 0.96, default 0.95). One critical or high finding fails every tool; a medium
 * one fails only the stricter tools.
 */

export type FateDimension = 'fidelity' | 'accountability' | 'transparency' | 'ethics'
export type Severity = 'critical' | 'high' | 'medium' | 'low'

export const FATE_CODES: Record<FateDimension, 'F001' | 'F002' | 'F003' | 'F004'> = {
  fidelity: 'F001',
  accountability: 'F002',
  transparency: 'F003',
  ethics: 'F004'
}
export type FateCode = typeof FATE_CODES[FateDimension]

const PENALTY: Record<Severity, number> = { critical: 1, high: 0.5, medium: 0.15, low: 0.05 }

export interface FateFinding {
  rule: string
  dimension: FateDimension
  severity: Severity
  /** where in the input (JSON path) */
  at: string
}

export interface FateScores {
  fidelity: number
  accountability: number
  transparency: number
  ethics: number
  score: number
  threshold: number
}

export interface FateResult {
  passed: boolean
  code: FateCode | null
  scores: FateScores
  findings: FateFinding[]
}

interface Rule {
  id: string
  dimension: FateDimension
  severity: Severity
  pattern: RegExp
  /** extra check on the match, for rules a regex alone cannot express */
  accept?: (match: RegExpExecArray) => boolean
}

const SHELL = '(?:ba|z|k|da|fi)?sh'
// a shell at the receiving end of a pipe: `sh`, `sudo bash`, `sudo -E bash`, `/bin/bash`, `/usr/bin/env bash`
const SHELL_SINK = `(?:sudo\\s+(?:-\\S+\\s+)*)?(?:\\S{0,64}\\/)?(?:env\\s+)?${SHELL}\\b`
const TOKEN_END = '(?=[\\s;&|)"\'`]|$)'
const SYSTEM_DIRS = 'bin|boot|dev|etc|home|lib|lib64|opt|proc|root|sbin|srv|sys|usr|var'

function hasRecursiveFlag (flags: string): boolean {
  return flags.split(/\s+/).some(f => f === '--recursive' || /^-[a-zA-Z]*[rR][a-zA-Z]*$/.test(f))
}

export const RULES: readonly Rule[] = [
  // Fidelity: secrets that must never travel in a request
  { id: 'private-key', dimension: 'fidelity', severity: 'critical', pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { id: 'aws-access-key', dimension: 'fidelity', severity: 'critical', pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { id: 'github-token', dimension: 'fidelity', severity: 'critical', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/ },
  { id: 'openai-anthropic-key', dimension: 'fidelity', severity: 'critical', pattern: /\bsk-(?:proj-|ant-(?:api\d+-)?)?[A-Za-z0-9_-]{20,}/ },
  { id: 'slack-token', dimension: 'fidelity', severity: 'critical', pattern: /\bxox[abprs]-[A-Za-z0-9-]{10,}/ },
  { id: 'google-api-key', dimension: 'fidelity', severity: 'critical', pattern: /\bAIza[0-9A-Za-z_-]{35}/ },
  { id: 'stripe-key', dimension: 'fidelity', severity: 'critical', pattern: /\b[sr]k_live_[0-9A-Za-z]{20,}/ },
  { id: 'jwt', dimension: 'fidelity', severity: 'high', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  {
    id: 'credential-assignment',
    dimension: 'fidelity',
    severity: 'high',
    pattern: /(?:api[_-]?key|secret|token|passw(?:or)?d|pwd|credential)s?["']?\s*[:=]\s*["']?([^\s"',;]{8,})/i,
    // a placeholder, a variable reference or an environment lookup is not a leaked secret
    accept: m => !/^(?:\$\{?\w+\}?|<[^>]*>|\*+|x+|\.{3,}|changeme|redacted|example\w*|(?:process\.env|import\.meta\.env)\.\w+|os\.(?:environ|getenv)\b\S*)$/i.test(m[1] ?? '')
  },

  // Transparency: code the user cannot see before it runs
  { id: 'pipe-to-shell', dimension: 'transparency', severity: 'critical', pattern: new RegExp(`\\b(?:curl|wget|fetch)\\b[^\\n|;]{0,512}\\|\\s*${SHELL_SINK}`) },
  { id: 'remote-subshell', dimension: 'transparency', severity: 'critical', pattern: new RegExp(`\\b(?:${SHELL}|source)\\s+(?:-c\\s+)?["']?(?:\\$\\(|<\\()\\s*(?:curl|wget)\\b`) },
  { id: 'base64-to-shell', dimension: 'transparency', severity: 'critical', pattern: new RegExp(`\\bbase64\\s+(?:-\\w+\\s+)*(?:-d|--decode|-D)\\b[^\\n;]{0,512}\\|\\s*${SHELL_SINK}`) },
  { id: 'base64-herestring-shell', dimension: 'transparency', severity: 'critical', pattern: new RegExp(`\\b${SHELL}\\b[^\\n]{0,512}<<<\\s*["']?\\$\\([^)]{0,512}base64\\s+(?:-d|--decode|-D)\\b`) },
  { id: 'eval-decoded', dimension: 'transparency', severity: 'high', pattern: /\beval\s*\(?\s*["'`]?\$?\(?[^\n;)]{0,256}?(?:atob|base64_decode|Buffer\.from|b64decode|base64\s+(?:-\w+\s+)*(?:-d|--decode|-D)\b)/ },
  { id: 'hex-escaped-code', dimension: 'transparency', severity: 'medium', pattern: /(?:\\x[0-9a-fA-F]{2}){8,}/ },

  // Ethics: destructive commands
  {
    id: 'rm-rf-root',
    dimension: 'ethics',
    severity: 'critical',
    pattern: new RegExp(`\\brm\\s+((?:-{1,2}[\\w-]+\\s+)+)["']?(?:\\/\\*?|~\\/?\\*?|\\$\\{?HOME\\}?\\/?\\*?|\\/(?:${SYSTEM_DIRS})\\/?\\*?)${TOKEN_END}`),
    accept: m => hasRecursiveFlag(m[1] ?? '')
  },
  { id: 'no-preserve-root', dimension: 'ethics', severity: 'critical', pattern: /--no-preserve-root\b/ },
  { id: 'fork-bomb', dimension: 'ethics', severity: 'critical', pattern: /(?:^|[\s;&])([\w:.]+)\s*\(\)\s*\{\s*\1\s*\|\s*\1\s*&\s*\}\s*;\s*\1(?=[\s;]|$)|\bfork\s+while\s+fork\b/ },
  {
    id: 'chmod-777-root',
    dimension: 'ethics',
    severity: 'critical',
    pattern: new RegExp(`\\bchmod\\s+((?:(?:-[\\w-]+|0?777|[augo]+\\+rwx)\\s+)+)\\/(?:(?:${SYSTEM_DIRS})\\/?)?${TOKEN_END}`),
    accept: m => hasRecursiveFlag(m[1] ?? '') && /(?:^|\s)(?:0?777|[augo]+\+rwx)(?=\s)/.test(m[1] ?? '')
  },
  { id: 'write-etc', dimension: 'ethics', severity: 'high', pattern: /(?:>>?\s*|\btee\s+(?:-[a-z]+\s+)*|\bof=|\bsed\s+(?:-\w+\s+)*-i\S*\s+(?:'[^']*'|"[^"]*"|\S+)\s+|\b(?:cp|mv|install|ln|rsync)\s+(?:-[\w-]+\s+)*\S+\s+)\/etc\// },
  { id: 'disk-wipe', dimension: 'ethics', severity: 'critical', pattern: /\bmkfs(?:\.\w+)?\s+(?:-\S+\s+)*\/dev\/|\bdd\b[^;&|\n]{0,512}\bof=\/dev\/(?:sd|nvme|hd|vd|xvd|mmcblk)|>\s*\/dev\/(?:sd|nvme|hd|vd)[a-z]\b/ },

  // Accountability: erasing the audit trail, silent privilege escalation, history rewrites
  { id: 'clear-history', dimension: 'accountability', severity: 'high', pattern: /\bhistory\s+-c\b|\bunset\s+HISTFILE\b|\bHISTFILE=\/dev\/null|\bHISTSIZE=0\b/ },
  { id: 'wipe-logs', dimension: 'accountability', severity: 'high', pattern: /(?:\brm\s+(?:-\S+\s+)*|\bshred\s+(?:-\S+\s+)*|(?:^|[\s;&])>\s*|\btruncate\s+-s\s*0\s+)\/var\/log\b/ },
  { id: 'privilege-escalation', dimension: 'accountability', severity: 'medium', pattern: /(?:^|[\s;&|(`])(?:sudo\s+\S|su\s+(?:-\s|-$|root\b))/ },
  { id: 'force-push', dimension: 'accountability', severity: 'medium', pattern: /\bgit\s+push\b[^;&|\n]{0,512}\s(?:--force(?:-with-lease)?|-f)\b/ }
]

// Cheap prefilters: every rule above needs one of these characters or words to match, so
// clean text (the common case) is cleared by two fast scans instead of twenty regexes.
const TRIGGER_CHARS = /[/|><\\=`$~*_]/
// Word triggers. Tokens (AKIA ASIA AIza HISTFILE xox? ----- sk- reserve-root eyJ) are written
// to start at a character that is rare in prose (A H x - J), with look-behinds for the rest:
// V8 scans for the leading character set, so clean text is cleared about four times faster
// than with the plain alternation. Shell words follow at a word boundary.
const TRIGGER_TOKENS = /A(?:KIA|SIA|Iza)|HISTFILE|xox[abprs]|-(?:----|(?<=sk-)|(?<=reserve-)root)|J(?<=eyJ)/
const TRIGGER_WORDS = /\b(?:sudo|su |history|fork|push|eval)/
const CREDENTIAL_KEY = /(?:key|secret|token|passw(?:or)?d|pwd|credential)s?["']?\s*$/i

function mayMatch (s: string): boolean {
  if (TRIGGER_CHARS.test(s) || TRIGGER_TOKENS.test(s) || TRIGGER_WORDS.test(s)) return true
  for (let i = s.indexOf(':'); i >= 0; i = s.indexOf(':', i + 1)) {
    if (CREDENTIAL_KEY.test(s.slice(Math.max(0, i - 16), i))) return true
  }
  return false
}

const WRITING_TOOLS = new Set(['Write', 'Edit', 'MultiEdit', 'NotebookEdit'])
const PATH_FIELDS = new Set(['file_path', 'filePath', 'path', 'notebook_path', 'target'])
const MAX_DEPTH = 32

// The JSON path of a finding is built only when there is one: clean input allocates nothing.
type PathStack = Array<string | number>

function pathOf (stack: PathStack): string {
  let at = '$'
  for (const p of stack) at += typeof p === 'number' ? `[${p}]` : `.${p}`
  return at
}

function scanString (s: string, stack: PathStack, findings: FateFinding[]): void {
  if (!mayMatch(s)) return
  for (const rule of RULES) {
    const m = rule.pattern.exec(s)
    if (m !== null && (rule.accept === undefined || rule.accept(m))) {
      findings.push({ rule: rule.id, dimension: rule.dimension, severity: rule.severity, at: pathOf(stack) })
    }
  }
}

function walk (value: unknown, stack: PathStack, key: string, writer: boolean, findings: FateFinding[]): void {
  if (typeof value === 'string') {
    scanString(value, stack, findings)
    if (writer && PATH_FIELDS.has(key) && /^\s*\/etc(?:\/|\s*$)/.test(value)) {
      findings.push({ rule: 'write-etc', dimension: 'ethics', severity: 'high', at: pathOf(stack) })
    }
    return
  }
  if (value === null || typeof value !== 'object') return
  if (stack.length > MAX_DEPTH) {
    // fail closed: what cannot be scanned cannot be cleared
    findings.push({ rule: 'nesting-too-deep', dimension: 'transparency', severity: 'high', at: pathOf(stack) })
    return
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      stack.push(i)
      walk(value[i], stack, key, writer, findings)
      stack.pop()
    }
    return
  }
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue
    stack.push(k)
    walk((value as Record<string, unknown>)[k], stack, k, writer, findings)
    stack.pop()
  }
}

/** True when any string in the input trips the prefilter. */
function anySuspicious (value: unknown, depth: number): boolean {
  if (typeof value === 'string') return mayMatch(value)
  if (value === null || typeof value !== 'object') return false
  if (depth > MAX_DEPTH) return true
  if (Array.isArray(value)) {
    for (const v of value) if (anySuspicious(v, depth + 1)) return true
    return false
  }
  const obj = value as Record<string, unknown>
  for (const k in obj) if (Object.hasOwn(obj, k) && anySuspicious(obj[k], depth + 1)) return true
  return false
}

/** Scores a request of `tool` with the given input (any JSON). Pure; never throws on JSON input. */
export function fateCheck (tool: string, input: unknown, constitution: Constitution): FateResult {
  const findings: FateFinding[] = []
  const writer = WRITING_TOOLS.has(tool)
  // Clean input (the common case) is cleared by one prefilter pass over its strings;
  // only input that trips it is walked rule by rule, with JSON paths for the findings.
  if (writer || anySuspicious(input, 0)) walk(input, [], '', writer, findings)
  const threshold = fateThreshold(constitution, tool)
  if (findings.length === 0) {
    return { passed: 1 >= threshold, code: null, scores: { fidelity: 1, accountability: 1, transparency: 1, ethics: 1, score: 1, threshold }, findings }
  }
  const dims = { fidelity: 1, accountability: 1, transparency: 1, ethics: 1 }
  for (const f of findings) dims[f.dimension] = Math.max(0, dims[f.dimension] - PENALTY[f.severity])
  const score = (dims.fidelity + dims.accountability + dims.transparency + dims.ethics) / 4
  const passed = score >= threshold
  let code: FateCode | null = null
  if (!passed) {
    let worst: FateDimension = 'fidelity'
    for (const d of ['accountability', 'transparency', 'ethics'] as const) if (dims[d] < dims[worst]) worst = d
    code = FATE_CODES[worst]
  }
  return { passed, code, scores: { ...dims, score, threshold }, findings }
}
