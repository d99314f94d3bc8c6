import { canonicalize } from '../pci/canonical.ts'
import { blake3Text } from '../pci/digest.ts'
import { SkillRejection, type SkillHandler, type SkillSpec, type TaskPart } from './types.ts'
import { skillSpecProblem } from './cards.ts'

interface Registered {
  spec: SkillSpec
  handler: SkillHandler
}

/** The skills this node offers. Registering or removing one changes the node's agent card. */
export class SkillRegistry {
  readonly #skills = new Map<string, Registered>()
  readonly #listeners = new Set<() => void>()

  /** Adds a skill; returns a function that removes it. Throws for a bad spec or a taken id. */
  register (spec: SkillSpec, handler: SkillHandler): () => void {
    const problem = skillSpecProblem(spec)
    if (problem !== undefined) throw new TypeError(`skill: ${problem}`)
    if (typeof handler !== 'function') throw new TypeError('skill: handler must be a function')
    if (this.#skills.has(spec.id)) throw new Error(`skill "${spec.id}" is already registered`)
    const entry = { spec: structuredClone(spec), handler }
    this.#skills.set(spec.id, entry)
    this.#changed()
    return () => {
      if (this.#skills.get(spec.id) === entry) {
        this.#skills.delete(spec.id)
        this.#changed()
      }
    }
  }

  get (id: string): Registered | undefined {
    return this.#skills.get(id)
  }

  has (id: string): boolean {
    return this.#skills.has(id)
  }

  list (): SkillSpec[] {
    return [...this.#skills.values()].map(s => s.spec)
  }

  onChange (listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  #changed (): void {
    for (const l of this.#listeners) l()
  }
}

export const ECHO_SKILL: SkillSpec = {
  id: 'echo',
  name: 'Echo',
  description: 'Returns the message it was given, part for part.',
  tags: ['builtin', 'test'],
  inputModes: ['text/plain', 'application/json'],
  outputModes: ['text/plain', 'application/json']
}

export const HASH_SKILL: SkillSpec = {
  id: 'hash',
  name: 'BLAKE3 hash',
  description: 'Returns the BLAKE3-256 hash (hex) of the message: its text parts joined, or the canonical JSON of a data part.',
  tags: ['builtin', 'crypto'],
  inputModes: ['text/plain', 'application/json'],
  outputModes: ['text/plain']
}

const echo: SkillHandler = async (message) => ({ parts: message.parts })

/** The bytes `hash` hashes: text parts concatenated, or one data part's canonical JSON. */
export function hashInput (parts: TaskPart[]): string {
  const only = parts.length === 1 ? parts[0] : undefined
  if (only !== undefined && 'data' in only) return canonicalize(only.data)
  if (parts.some(p => !('text' in p))) throw new SkillRejection('BAD_INPUT', 'hash takes text parts or a single data part')
  return parts.map(p => (p as { text: string }).text).join('')
}

const hash: SkillHandler = async (message) => ({
  parts: [{ text: Buffer.from(blake3Text(hashInput(message.parts))).toString('hex') }]
})

/** echo and hash: enough to try routing without a model. */
export function registerBuiltinSkills (registry: SkillRegistry): void {
  registry.register(ECHO_SKILL, echo)
  registry.register(HASH_SKILL, hash)
}
