import { TopicValidatorResult, type GossipSub, type GossipsubMessage, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { createEnvelope, recordNonce, replayed, verifyEnvelope, type CreateEnvelopeOptions, type Envelope } from '../pci/envelope.ts'
import { parseEnvelopeBytes, sharedVerifyThread, type VerifyThread } from '../pci/verify-thread.ts'
import { ReplayCache } from '../pci/replay.ts'
import { RejectCode } from '../pci/codes.ts'
import { checkEnvelopeGates } from '../governance/gates.ts'
import type { Constitution } from '../governance/constitution.ts'
import type { NodeIdentity } from '../identity/identity.ts'
import { ALL_TOPICS, MAX_GOSSIP_BYTES, type Topic } from './protocols.ts'

/** A gossip message that passed envelope verification and the gate chain. */
export interface VerifiedMessage<P = unknown> {
  topic: Topic
  envelope: Envelope<P>
  /** the peer that forwarded it to us (not necessarily its author: see envelope.sender) */
  from: string
}

export interface RejectedMessage {
  topic: string
  from: string
  code: string
  reason: string
  action: 'reject' | 'ignore'
}

/** where a node verifies gossip envelopes (see SignedGossipInit.verify) */
export type GossipVerify = 'thread' | 'inline'

export interface SignedGossipInit {
  identity: NodeIdentity
  constitution: Constitution
  now?: () => number
  replayCacheSize?: number
  /**
   * Where envelopes are verified: 'thread' on the process's verification thread (a second core
   * checks signatures while this event loop moves messages), 'inline' on this thread. Default
   * 'thread' where the machine has more than one core.
   */
  verify?: GossipVerify
}

const decoder = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/**
 * Outcome of validating one gossip message. Stale (R001) and replayed (R006) envelopes are
 * IGNOREd: an honest peer can forward them late. Everything else that fails is REJECTed, so
 * gossipsub's peer score punishes whoever forwarded it.
 */
export type Validation =
  | { action: 'accept', envelope: Envelope }
  | { action: 'reject' | 'ignore', code: string, reason: string }

/** Checks one envelope type's payload beyond the envelope: returns the problem, or undefined. */
export type PayloadCheck = (envelope: Envelope) => string | undefined

export interface GossipValidationInit {
  constitution: Constitution
  replay: ReplayCache
  now: number
  payloadChecks?: ReadonlyMap<string, PayloadCheck>
}

const tooLarge: Validation = { action: 'reject', code: RejectCode.MALFORMED_ENVELOPE, reason: 'message too large' }

export function validateGossip (data: Uint8Array, init: GossipValidationInit): Validation {
  if (data.length > MAX_GOSSIP_BYTES) return tooLarge
  const parsed = parseEnvelopeBytes(data)
  return afterVerification(parsed.ok ? verifyEnvelope(parsed.value, init) : parsed, init)
}

/**
 * validateGossip with the envelope checks (all but the replay cache) run on a verification
 * thread; same verdicts. The bytes are parsed here once more when they pass.
 */
export async function validateGossipOnThread (data: Uint8Array, thread: VerifyThread, init: GossipValidationInit): Promise<Validation> {
  if (data.length > MAX_GOSSIP_BYTES) return tooLarge
  const verdict = await thread.check(data, init.now, init.constitution)
  if (!verdict.ok) return afterVerification(verdict, init)
  const envelope = JSON.parse(decoder.decode(data)) as Envelope
  return afterVerification(recordNonce(envelope, init.replay, init.constitution, init.now) ? { ok: true, envelope } : replayed(envelope), init)
}

/** the stale/invalid split, then the gate chain and the payload check of the type */
function afterVerification (verified: { ok: true, envelope: Envelope } | { ok: false, code: string, reason: string }, init: GossipValidationInit): Validation {
  if (!verified.ok) {
    const stale = verified.code === RejectCode.TTL_EXPIRED || verified.code === RejectCode.REPLAY
    return { action: stale ? 'ignore' : 'reject', code: verified.code, reason: verified.reason }
  }
  const gates = checkEnvelopeGates(verified.envelope, init.constitution)
  if (!gates.passed) return { action: 'reject', code: gates.code ?? 'GATE', reason: gates.reason ?? 'blocked by gates' }
  const problem = init.payloadChecks?.get(verified.envelope.type)?.(verified.envelope)
  if (problem !== undefined) return { action: 'reject', code: RejectCode.MALFORMED_ENVELOPE, reason: problem }
  return { action: 'accept', envelope: verified.envelope }
}

/** our own bug must never cost an honest peer its score */
const ourBug = (err: unknown): Validation => ({ action: 'ignore', code: 'INTERNAL', reason: (err as Error)?.message ?? String(err) })

/**
 * The node's side of the four federation topics: publishes envelopes and validates every
 * incoming message before gossipsub forwards it. Handlers only ever see verified messages.
 */
export class SignedGossip {
  readonly #pubsub: GossipSub
  readonly #identity: NodeIdentity
  readonly #constitution: Constitution
  readonly #now: () => number
  readonly #replay: ReplayCache
  readonly #thread: VerifyThread | undefined
  // The validator and the 'message' event see the same Message object: remember what the
  // validator verified so that nothing is parsed or verified twice.
  readonly #verified = new WeakMap<Message, Envelope>()
  readonly #messageHandlers = new Set<(m: VerifiedMessage) => void>()
  readonly #rejectHandlers = new Set<(r: RejectedMessage) => void>()
  readonly #payloadChecks = new Map<string, PayloadCheck>()
  #started = false

  constructor (pubsub: GossipSub, init: SignedGossipInit) {
    this.#pubsub = pubsub
    this.#identity = init.identity
    this.#constitution = init.constitution
    this.#now = init.now ?? Date.now
    this.#replay = new ReplayCache(init.replayCacheSize ?? 100_000)
    this.#thread = init.verify === 'inline' ? undefined : sharedVerifyThread()
  }

  start (): void {
    if (this.#started) return
    this.#started = true
    // the first envelope should not wait for the thread to load
    this.#thread?.warm()
    for (const topic of ALL_TOPICS) {
      this.#pubsub.topicValidators.set(topic, this.#validate)
      this.#pubsub.subscribe(topic)
    }
    this.#pubsub.addEventListener('gossipsub:message', this.#onMessage)
  }

  stop (): void {
    if (!this.#started) return
    this.#started = false
    this.#pubsub.removeEventListener('gossipsub:message', this.#onMessage)
    for (const topic of ALL_TOPICS) {
      this.#pubsub.topicValidators.delete(topic)
      this.#pubsub.unsubscribe(topic)
    }
  }

  /** Signs `payload` into an envelope and publishes it; resolves with the envelope and how many peers it went to. */
  async publish<P> (topic: Topic, type: string, payload: P, options: Omit<CreateEnvelopeOptions<P>, 'payload' | 'type'> = {}): Promise<{ envelope: Envelope<P>, recipients: number }> {
    const envelope = createEnvelope(this.#identity, { ...options, payload, type, now: options.now ?? this.#now() })
    const result = await this.#pubsub.publish(topic, encoder.encode(JSON.stringify(envelope)))
    return { envelope, recipients: result.recipients.length }
  }

  /** Publishes an envelope exactly as given (for relaying, tests and benchmarks). */
  async publishRaw (topic: string, data: Uint8Array): Promise<number> {
    return (await this.#pubsub.publish(topic, data)).recipients.length
  }

  /** Validates the payload of one envelope type before it is forwarded: a problem is R005, REJECT. */
  checkPayload (type: string, check: PayloadCheck): void {
    this.#payloadChecks.set(type, check)
  }

  onMessage (handler: (m: VerifiedMessage) => void): () => void {
    this.#messageHandlers.add(handler)
    return () => this.#messageHandlers.delete(handler)
  }

  onReject (handler: (r: RejectedMessage) => void): () => void {
    this.#rejectHandlers.add(handler)
    return () => this.#rejectHandlers.delete(handler)
  }

  readonly #validate = (from: PeerId, msg: Message): TopicValidatorResult | Promise<TopicValidatorResult> => {
    const init = { constitution: this.#constitution, replay: this.#replay, now: this.#now(), payloadChecks: this.#payloadChecks }
    if (this.#thread === undefined) {
      let v: Validation
      try {
        v = validateGossip(msg.data, init)
      } catch (err) {
        v = ourBug(err)
      }
      return this.#verdict(from, msg, v)
    }
    return validateGossipOnThread(msg.data, this.#thread, init).then(
      v => this.#verdict(from, msg, v),
      err => this.#verdict(from, msg, ourBug(err))
    )
  }

  #verdict (from: PeerId, msg: Message, v: Validation): TopicValidatorResult {
    if (v.action === 'accept') {
      this.#verified.set(msg, v.envelope)
      return TopicValidatorResult.Accept
    }
    const rejected: RejectedMessage = { topic: msg.topic, from: from.toString(), code: v.code, reason: v.reason, action: v.action }
    for (const h of this.#rejectHandlers) h(rejected)
    return v.action === 'reject' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
  }

  readonly #onMessage = (event: CustomEvent<GossipsubMessage>): void => {
    const { msg, propagationSource } = event.detail
    const envelope = this.#verified.get(msg)
    if (envelope === undefined) return // a topic we do not validate
    this.#verified.delete(msg)
    const verified: VerifiedMessage = { topic: msg.topic as Topic, envelope, from: propagationSource.toString() }
    for (const h of this.#messageHandlers) h(verified)
  }
}
