import { canonicalize } from '../pci/canonical.ts'
import { blake3Text } from '../pci/digest.ts'
import type { AgentCard, SkillSpec, TaskCard, TaskPart } from './types.ts'

/**
 * Schema checks for agent cards (gossiped on /bizra/1/agents) and task cards (sent on
 * /bizra/a2a/1.0.0). Each returns the first problem as a sentence, or undefined when the
 * value is well-formed; callers turn a problem into R005.
 */

export const SKILL_ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/
const TASK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{40,128}$/
const MAX_SKILLS = 64
const MAX_TAGS = 16
const MAX_MODES = 16
const MAX_PARTS = 64
const MAX_TEXT = 256 * 1024

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

function shortString (v: unknown, max: number): boolean {
  return typeof v === 'string' && v.length > 0 && v.length <= max
}

function stringList (v: unknown, maxItems: number, maxLength: number): boolean {
  return Array.isArray(v) && v.length <= maxItems && v.every(s => shortString(s, maxLength))
}

export function skillSpecProblem (v: unknown): string | undefined {
  if (!isObject(v)) return 'must be an object'
  if (typeof v.id !== 'string' || !SKILL_ID_RE.test(v.id)) return 'id must be 1-64 characters [a-z0-9._-]'
  if (!shortString(v.name, 128)) return `${v.id}: name must be a string of 1-128 characters`
  if (typeof v.description !== 'string' || v.description.length > 1024) return `${v.id}: description must be a string of up to 1024 characters`
  if (!stringList(v.tags, MAX_TAGS, 64)) return `${v.id}: tags must be up to ${MAX_TAGS} strings`
  if (!stringList(v.inputModes, MAX_MODES, 128)) return `${v.id}: inputModes must be up to ${MAX_MODES} media types`
  if (!stringList(v.outputModes, MAX_MODES, 128)) return `${v.id}: outputModes must be up to ${MAX_MODES} media types`
  return undefined
}

export function agentCardProblem (v: unknown): string | undefined {
  if (!isObject(v)) return 'agent card must be an object'
  if (typeof v.peerId !== 'string' || !PEER_ID_RE.test(v.peerId)) return 'peerId must be a PeerId'
  if (!shortString(v.name, 128)) return 'name must be a string of 1-128 characters'
  if (typeof v.description !== 'string' || v.description.length > 1024) return 'description must be a string of up to 1024 characters'
  if (!shortString(v.version, 64)) return 'version must be a string'
  if (!shortString(v.url, 512)) return 'url must be a string'
  if (!isObject(v.capabilities) || typeof v.capabilities.streaming !== 'boolean' || typeof v.capabilities.pushNotifications !== 'boolean') {
    return 'capabilities must be { streaming, pushNotifications } booleans'
  }
  if (!stringList(v.defaultInputModes, MAX_MODES, 128) || !stringList(v.defaultOutputModes, MAX_MODES, 128)) return 'defaultInputModes/defaultOutputModes must be lists of media types'
  if (!Array.isArray(v.skills) || v.skills.length > MAX_SKILLS) return `skills must be a list of up to ${MAX_SKILLS}`
  const seen = new Set<string>()
  for (const s of v.skills) {
    const problem = skillSpecProblem(s)
    if (problem !== undefined) return `skill ${problem}`
    const id = (s as SkillSpec).id
    if (seen.has(id)) return `skill ${id} listed twice`
    seen.add(id)
  }
  return undefined
}

export function partsProblem (v: unknown): string | undefined {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_PARTS) return `parts must be a list of 1-${MAX_PARTS} parts`
  for (const p of v) {
    if (!isObject(p)) return 'each part must be an object'
    const keys = Object.keys(p)
    if (keys.length !== 1) return 'each part must be exactly { text } or { data }'
    if (keys[0] === 'text') {
      if (typeof p.text !== 'string' || p.text.length > MAX_TEXT) return `a text part must be a string of up to ${MAX_TEXT} characters`
    } else if (keys[0] !== 'data' || p.data === undefined) {
      return 'each part must be exactly { text } or { data }'
    }
  }
  return undefined
}

export function taskCardProblem (v: unknown): string | undefined {
  if (!isObject(v)) return 'task card must be an object'
  if (typeof v.id !== 'string' || !TASK_ID_RE.test(v.id)) return 'id must be 1-128 characters [A-Za-z0-9._:-]'
  if (typeof v.skill !== 'string' || !SKILL_ID_RE.test(v.skill)) return 'skill must be a skill id'
  if (!isObject(v.message)) return 'message must be { parts }'
  const parts = partsProblem(v.message.parts)
  if (parts !== undefined) return `message: ${parts}`
  if (typeof v.requester !== 'string' || !PEER_ID_RE.test(v.requester)) return 'requester must be a PeerId'
  if (typeof v.deadline !== 'number' || !Number.isSafeInteger(v.deadline) || v.deadline <= 0) return 'deadline must be epoch milliseconds'
  if (v.tier !== undefined && !shortString(v.tier, 16)) return 'tier must be a tier name'
  const extra = Object.keys(v).find(k => !['id', 'skill', 'message', 'requester', 'deadline', 'tier'].includes(k))
  if (extra !== undefined) return `unknown field ${extra}`
  return undefined
}

/** A short hex digest of a card, carried in heartbeats so peers notice a changed card. */
export function cardDigest (card: AgentCard): string {
  return Buffer.from(blake3Text(canonicalize(card), 'bizra-card-v1:')).toString('hex').slice(0, 32)
}

/** The text of a message's parts, data parts as JSON (what CLIs and A2A replies show). */
export function partsText (parts: TaskPart[]): string {
  return parts.map(p => 'text' in p ? p.text : JSON.stringify(p.data)).join('')
}
