/** The federation's constitution: thresholds every node enforces (DESIGN.md). */
export interface Constitution {
  /** minimum Ihsan (excellence) score an envelope or request must declare */
  ihsan: number
  /** minimum signal-to-noise ratio */
  snr: number
  /** maximum Gini coefficient of resources served across requesters */
  gini: number
  /** tolerated clock difference between peers, seconds */
  clockSkewS: number
  /** longest envelope time-to-live, seconds */
  maxTtlS: number
  /** FATE pass threshold per tool name; `default` for every other tool */
  fateThresholds: Readonly<Record<string, number>>
}

export const DEFAULT_CONSTITUTION: Readonly<Constitution> = Object.freeze({
  ihsan: 0.95,
  snr: 0.85,
  gini: 0.35,
  clockSkewS: 30,
  maxTtlS: 3600,
  fateThresholds: Object.freeze({ Bash: 0.98, Write: 0.96, Edit: 0.96, MultiEdit: 0.96, default: 0.95 })
})

export function fateThreshold (constitution: Constitution, tool: string): number {
  return constitution.fateThresholds[tool] ?? constitution.fateThresholds.default ?? DEFAULT_CONSTITUTION.fateThresholds.default!
}

export class ConstitutionError extends Error {
  static override readonly name: string = 'ConstitutionError'
  override readonly name: string = 'ConstitutionError'
}

const unit = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1

/**
 * Builds a constitution from partial JSON (e.g. genesis.json), filling defaults. Throws
 * ConstitutionError naming the first bad field.
 */
export function parseConstitution (input: unknown): Constitution {
  if (input === undefined) return { ...DEFAULT_CONSTITUTION }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConstitutionError('constitution must be a JSON object')
  }
  const c = input as Record<string, unknown>
  const out: Constitution = { ...DEFAULT_CONSTITUTION }
  for (const field of ['ihsan', 'snr', 'gini'] as const) {
    if (c[field] === undefined) continue
    if (!unit(c[field])) throw new ConstitutionError(`constitution.${field} must be a number between 0 and 1`)
    out[field] = c[field]
  }
  for (const field of ['clockSkewS', 'maxTtlS'] as const) {
    if (c[field] === undefined) continue
    const v = c[field]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 86_400) {
      throw new ConstitutionError(`constitution.${field} must be an integer number of seconds (0..86400)`)
    }
    out[field] = v
  }
  if (c.fateThresholds !== undefined) {
    const t = c.fateThresholds
    if (t === null || typeof t !== 'object' || Array.isArray(t)) throw new ConstitutionError('constitution.fateThresholds must be an object')
    const merged: Record<string, number> = { ...DEFAULT_CONSTITUTION.fateThresholds }
    for (const [tool, v] of Object.entries(t)) {
      if (!unit(v)) throw new ConstitutionError(`constitution.fateThresholds.${tool} must be a number between 0 and 1`)
      merged[tool] = v
    }
    out.fateThresholds = merged
  }
  return out
}
