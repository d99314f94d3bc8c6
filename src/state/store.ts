import type { BatchOp, KeyValueDb } from '../util/db.ts'
import { canStart, canTransition, DagError, hashNode, isHash, isSessionName, isState, MAX_PARENTS, MAX_SESSION_LENGTH, nodeHash, nodeShapeError, payloadHash, type DagNode, type HashedNode, type SessionState } from './dag.ts'
import { MAX_PROOF_NODES, type Proof } from './proof.ts'
import { CanonicalizationError } from '../pci/canonical.ts'

// classic-level (LevelDB) honours `sync`: the batch is on disk before the call resolves.

// Keys: `dag!n!<hash>` -> node JSON (without its hash), `dag!h!<session>` -> head hash.
const NODE = 'dag!n!'
const HEAD = 'dag!h!'
const END = (prefix: string): string => prefix.slice(0, -1) + '"' // '"' sorts right after '!'

export type PayloadRef = { payload: unknown } | { payloadHash: string }

export interface AppendOptions {
  /** default: the session's head (none for a new session) */
  parents?: string[]
  /** epoch ms; default now, but never before a parent's ts */
  ts?: number
}

export type AppendEntry = { session: string, state: SessionState } & PayloadRef & AppendOptions

export interface CheckReport {
  ok: boolean
  nodes: number
  sessions: number
  problems: string[]
}

export interface SessionDagOptions {
  /**
   * fsync every batch (default true). Atomicity does not depend on it: a killed process
   * (kill -9) leaves each batch wholly written or not at all either way, because the write
   * has reached the OS. Syncing also survives power loss, at the cost of a disk flush per append.
   */
  sync?: boolean
}

/** A level database that can read many keys at once (Level and MemoryLevel can). */
type Db = KeyValueDb & { getMany?: (keys: string[]) => Promise<Array<string | undefined>> }

interface QueuedRead { key: string, resolve: (value: string | undefined) => void, reject: (err: unknown) => void }
interface QueuedWrite { ops: BatchOp[], resolve: () => void, reject: (err: unknown) => void }

/**
 * The Merkle session DAG over an abstract-level database. Every append is atomic: its nodes
 * and head updates are written in one batch, so a crash at any moment leaves the DAG as it was
 * before or after the whole append. Appends to one session are serialised; different sessions
 * run in parallel.
 *
 * Group commit: the appends that reach the database in the same turn of the event loop share
 * its round trips: their reads go out as one getMany, their writes as one batch (still atomic,
 * and each append's nodes are exactly the ones it returns). An append resolves only once its
 * batch is written, so nothing is reported before it is in the database.
 */
export class SessionDag {
  readonly #db: Db
  readonly #tails = new Map<string, Promise<void>>()
  readonly #batchOptions: { sync: boolean }
  #reads: QueuedRead[] = []
  #writes: QueuedWrite[] = []
  #flushScheduled = false
  /** nodes of appends not yet written (claimed when checked): no other append may create them meanwhile */
  readonly #unwritten = new Map<string, HashedNode>()

  constructor (db: Db, options: SessionDagOptions = {}) {
    this.#db = db
    this.#batchOptions = { sync: options.sync ?? true }
  }

  async append (session: string, state: SessionState, content: PayloadRef, options: AppendOptions = {}): Promise<HashedNode> {
    const [node] = await this.appendMany([{ session, state, ...content, ...options }])
    return node!
  }

  /**
   * Appends the entries in order, in one atomic batch: each is checked against the session's
   * head as left by the entries before it; if any is refused (DagError) nothing is written.
   */
  async appendMany (entries: AppendEntry[]): Promise<HashedNode[]> {
    if (entries.length === 0) return []
    const sessions = entries.length === 1 ? [entries[0]!.session] : [...new Set(entries.map(e => e.session))]
    return this.#exclusive(sessions, async () => {
      const now = Date.now()
      const pending = new Map<string, HashedNode>()
      const heads = new Map<string, string | undefined>()
      // every key this append reads, read once (a stored node never changes; a head only through
      // appends to its session, which wait for this one)
      const reads = new Map<string, Promise<string | undefined>>()
      const read = (key: string): Promise<string | undefined> => {
        let p = reads.get(key)
        if (p === undefined) reads.set(key, p = this.#read(key))
        return p
      }
      const lookup = async (hash: string): Promise<HashedNode | undefined> => {
        const own = pending.get(hash)
        if (own !== undefined || !isHash(hash)) return own
        const v = await read(NODE + hash)
        return v === undefined ? undefined : { ...JSON.parse(v) as DagNode, hash }
      }
      const headOf = async (session: string): Promise<string | undefined> => {
        if (!heads.has(session)) heads.set(session, await read(HEAD + session))
        return heads.get(session)
      }
      // a new session's first node is known before its head is read (none, when it is new): read
      // both at once, which saves a round trip for every task the executor records
      const first = entries[0]!
      if (first.state === 'init' && first.parents === undefined && isSessionName(first.session)) {
        read(HEAD + first.session).catch(() => {})
        const hash = 'payloadHash' in first ? first.payloadHash : undefined
        const ts = first.ts ?? now
        if (isHash(hash) && Number.isSafeInteger(ts) && ts >= 0) read(NODE + nodeHash({ state: 'init', ts, parents: [], payloadHash: hash })).catch(() => {})
      }
      const out: HashedNode[] = []
      try {
        for (const [i, entry] of entries.entries()) {
          const where = entries.length > 1 ? `entry ${i}: ` : ''
          try {
            const node = await this.#prepare(entry, now, lookup, headOf, pending)
            pending.set(node.hash, node)
            heads.set(node.session, node.hash)
            out.push(node)
          } catch (err) {
            if (err instanceof DagError) throw new DagError(where + err.message)
            throw err
          }
        }
        const ops: BatchOp[] = []
        for (const n of out) ops.push({ type: 'put', key: NODE + n.hash, value: JSON.stringify(storedForm(n)) })
        for (const s of sessions) ops.push({ type: 'put', key: HEAD + s, value: heads.get(s)! })
        await this.#write(ops)
        return out
      } finally {
        for (const n of out) if (this.#unwritten.get(n.hash) === n) this.#unwritten.delete(n.hash)
      }
    })
  }

  /** Builds one entry's node, refusing anything that would break the session's lifecycle. */
  async #prepare (
    entry: AppendEntry,
    now: number,
    lookup: (hash: string) => Promise<HashedNode | undefined>,
    headOf: (session: string) => Promise<string | undefined>,
    pendingHashes: ReadonlyMap<string, HashedNode>
  ): Promise<HashedNode> {
    const { session, state } = entry
    if (!isSessionName(session)) throw new DagError(`session must be a well-formed string of 1 to ${MAX_SESSION_LENGTH} characters`)
    if (!isState(state)) throw new DagError(`unknown state ${JSON.stringify(state)}`)
    if ('payload' in entry && 'payloadHash' in entry) throw new DagError('give payload or payloadHash, not both')
    const hash = 'payloadHash' in entry ? entry.payloadHash : hashPayload(entry.payload)
    if (!isHash(hash)) throw new DagError('payloadHash must be a lowercase hex 32-byte hash')

    const headHash = await headOf(session)
    const parentHashes = entry.parents ?? (headHash === undefined ? [] : [headHash])
    if (parentHashes.length > MAX_PARENTS) throw new DagError(`more than ${MAX_PARENTS} parents`)
    if (parentHashes.length > 1 && new Set(parentHashes).size !== parentHashes.length) throw new DagError('parents has duplicates')
    const parents: HashedNode[] = []
    for (const p of parentHashes) {
      const parent = isHash(p) ? await lookup(p) : undefined
      if (parent === undefined) throw new DagError(`unknown parent ${JSON.stringify(p)}`)
      parents.push(parent)
    }

    if (headHash === undefined) {
      if (!canStart(state, parents.map(p => p.state))) {
        throw new DagError(`session ${JSON.stringify(session)} must start with init (or branch from one node whose state ${state} follows)`)
      }
    } else {
      const head = await lookup(headHash)
      if (head === undefined) throw new DagError(`head ${headHash} of session ${JSON.stringify(session)} is missing`)
      if (!parentHashes.includes(headHash)) throw new DagError(`parents must include the head of session ${JSON.stringify(session)}`)
      if (!canTransition(head.state, state)) throw new DagError(`illegal transition ${head.state} -> ${state} in session ${JSON.stringify(session)}`)
      // a merge takes in other sessions' current heads
      for (const p of parents) {
        if (p.hash !== headHash && await headOf(p.session) !== p.hash) {
          throw new DagError(`merge parent ${p.hash} is not the head of session ${JSON.stringify(p.session)}`)
        }
      }
    }

    let latest = 0
    for (const p of parents) if (p.ts > latest) latest = p.ts
    const ts = entry.ts ?? Math.max(now, latest)
    if (!Number.isSafeInteger(ts) || ts < 0) throw new DagError('ts must be a non-negative integer (epoch ms)')
    if (ts < latest) throw new DagError(`ts ${ts} precedes a parent's ts ${latest}`)

    const node = hashNode({ session, state, ts, parents: parentHashes, payloadHash: hash })
    // node hashes leave the session out, so two sessions can produce the same node. A node
    // with a parent written in this same batch cannot exist yet (stored nodes' parents exist).
    // Nor can one that another append is about to write: each claims its nodes (#unwritten)
    // from this check until its batch is written, and the check looks there after reading too.
    const freshParent = parents.some(p => pendingHashes.has(p.hash))
    const existing = freshParent ? undefined : this.#unwritten.get(node.hash) ?? await lookup(node.hash) ?? this.#unwritten.get(node.hash)
    if (existing !== undefined) throw new DagError(`node ${node.hash} already exists (in session ${JSON.stringify(existing.session)})`)
    this.#unwritten.set(node.hash, node)
    return node
  }

  /** One read, sent with every other read queued in this turn of the event loop. */
  async #read (key: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      this.#reads.push({ key, resolve, reject })
      this.#scheduleFlush()
    })
  }

  /** Writes `ops` in the batch of this turn of the event loop; resolves once that batch is written. */
  async #write (ops: BatchOp[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#writes.push({ ops, resolve, reject })
      this.#scheduleFlush()
    })
  }

  #scheduleFlush (): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(this.#flush)
  }

  /** Sends the reads and the writes queued this turn: one getMany, one batch. */
  readonly #flush = (): void => {
    this.#flushScheduled = false
    const reads = this.#reads
    const writes = this.#writes
    this.#reads = []
    this.#writes = []
    if (reads.length === 1 || (reads.length > 1 && this.#db.getMany === undefined)) {
      for (const r of reads) settle(async () => this.#db.get(r.key), r.resolve, r.reject)
    } else if (reads.length > 1) {
      settle(async () => this.#db.getMany!(reads.map(r => r.key)),
        values => { for (let i = 0; i < reads.length; i++) reads[i]!.resolve(values[i] ?? undefined) },
        err => { for (const r of reads) r.reject(err) })
    }
    if (writes.length === 0) return
    const ops = writes.length === 1 ? writes[0]!.ops : writes.flatMap(w => w.ops)
    settle(async () => this.#db.batch(ops, this.#batchOptions),
      () => { for (const w of writes) w.resolve() },
      err => { for (const w of writes) w.reject(err) })
  }

  async get (hash: string): Promise<HashedNode | undefined> {
    if (!isHash(hash)) return undefined
    const v = await this.#db.get(NODE + hash)
    return v === undefined ? undefined : { ...JSON.parse(v) as DagNode, hash }
  }

  async head (session: string): Promise<HashedNode | undefined> {
    const h = await this.#db.get(HEAD + session)
    return h === undefined ? undefined : this.get(h)
  }

  /** Every session's name, in key order. */
  async sessions (): Promise<string[]> {
    const out: string[] = []
    for await (const key of this.#db.keys({ gt: HEAD, lt: END(HEAD) })) out.push(key.slice(HEAD.length))
    return out
  }

  /**
   * The shortest path from `fromHash` up to `toHash` (default: the head of `fromHash`'s
   * session), as a proof that `bizra proof verify` checks offline.
   */
  async proof (fromHash: string, toHash?: string): Promise<Proof> {
    const from = await this.get(fromHash)
    if (from === undefined) throw new DagError(`unknown node ${JSON.stringify(fromHash)}`)
    const to = toHash === undefined ? await this.head(from.session) : await this.get(toHash)
    if (to === undefined) throw new DagError(`unknown node ${JSON.stringify(toHash)}`)
    // breadth-first from `to` down the parent links; ts never decreases along an edge, so
    // nodes older than `from` cannot lead to it
    const child = new Map<string, HashedNode>()
    const seen = new Set([to.hash])
    let frontier = [to]
    while (frontier.length > 0 && !seen.has(from.hash)) {
      const next: HashedNode[] = []
      for (const n of frontier) {
        for (const p of n.parents) {
          if (seen.has(p)) continue
          seen.add(p)
          const parent = await this.get(p)
          if (parent === undefined || parent.ts < from.ts) continue
          child.set(p, n)
          next.push(parent)
        }
      }
      frontier = next
    }
    if (!seen.has(from.hash)) throw new DagError(`node ${from.hash} is not an ancestor of ${to.hash}`)
    const nodes = [from]
    for (let n = from; n.hash !== to.hash;) {
      n = child.get(n.hash)!
      nodes.push(n)
    }
    if (nodes.length > MAX_PROOF_NODES) throw new DagError(`the path has ${nodes.length} nodes, more than a proof may hold (${MAX_PROOF_NODES})`)
    return { v: 1, nodes, head: to.hash }
  }

  /**
   * Consistency report: every node is well formed and its hash recomputes, every parent
   * exists, every head exists and is the newest node of a linear chain holding all its
   * session's nodes, with legal transitions along it.
   */
  async check (): Promise<CheckReport> {
    const problems: string[] = []
    const nodes = new Map<string, HashedNode>()
    const bySession = new Map<string, number>()
    for await (const [key, value] of this.#db.iterator({ gt: NODE, lt: END(NODE) })) {
      const hash = key.slice(NODE.length)
      let stored: unknown
      try {
        stored = JSON.parse(value)
      } catch {
        problems.push(`node ${hash}: not JSON`)
        continue
      }
      const shape = nodeShapeError(stored, false)
      if (shape !== undefined) {
        problems.push(`node ${hash}: ${shape}`)
        continue
      }
      const node = { ...stored as DagNode, hash }
      if (nodeHash(node) !== hash) problems.push(`node ${hash}: hash does not match its content`)
      nodes.set(hash, node)
      bySession.set(node.session, (bySession.get(node.session) ?? 0) + 1)
    }
    for (const n of nodes.values()) {
      for (const p of n.parents) if (!nodes.has(p)) problems.push(`node ${n.hash}: parent ${p} is missing`)
    }
    const heads = new Map<string, string>()
    for await (const [key, value] of this.#db.iterator({ gt: HEAD, lt: END(HEAD) })) heads.set(key.slice(HEAD.length), value)
    for (const [session, headHash] of heads) {
      const where = `session ${JSON.stringify(session)}`
      const head = nodes.get(headHash)
      if (head === undefined) {
        problems.push(`${where}: head ${headHash} is missing`)
        continue
      }
      if (head.session !== session) {
        problems.push(`${where}: head ${headHash} belongs to session ${JSON.stringify(head.session)}`)
        continue
      }
      // walk back through the session's own nodes: one parent each, except the first
      const chain = new Set([head.hash])
      for (let n = head; ;) {
        const own = n.parents.map(p => nodes.get(p)).filter(p => p !== undefined && p.session === session)
        if (own.length > 1) problems.push(`${where}: node ${n.hash} has ${own.length} parents in its own session`)
        const prev = own[0]
        if (prev === undefined) break
        if (chain.has(prev.hash)) {
          problems.push(`${where}: cycle at ${prev.hash}`)
          break
        }
        if (!canTransition(prev.state, n.state)) problems.push(`${where}: illegal transition ${prev.state} -> ${n.state} at ${n.hash}`)
        chain.add(prev.hash)
        n = prev
      }
      const total = bySession.get(session) ?? 0
      if (chain.size !== total) problems.push(`${where}: the chain to its head holds ${chain.size} of its ${total} nodes`)
    }
    for (const session of bySession.keys()) {
      if (!heads.has(session)) problems.push(`session ${JSON.stringify(session)} has nodes but no head`)
    }
    return { ok: problems.length === 0, nodes: nodes.size, sessions: heads.size, problems }
  }

  /** Runs `fn` after every earlier call that named any of `sessions` has finished. */
  async #exclusive<T> (sessions: string[], fn: () => Promise<T>): Promise<T> {
    const earlier = sessions.map(s => this.#tails.get(s))
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    // registered synchronously for all sessions at once, so waits only ever point to earlier
    // calls and cannot form a cycle
    for (const s of sessions) this.#tails.set(s, mine)
    try {
      await Promise.all(earlier)
      return await fn()
    } finally {
      release()
      for (const s of sessions) if (this.#tails.get(s) === mine) this.#tails.delete(s)
    }
  }
}

/** Runs `op` and hands its outcome, a value or whatever it threw or rejected with, to one of the two. */
function settle<T> (op: () => Promise<T>, resolve: (value: T) => void, reject: (err: unknown) => void): void {
  op().then(resolve, reject)
}

function hashPayload (payload: unknown): string {
  try {
    return payloadHash(payload)
  } catch (err) {
    if (err instanceof CanonicalizationError) throw new DagError(`payload is not JSON: ${err.message}`)
    throw err
  }
}

function storedForm (n: HashedNode): DagNode {
  return { session: n.session, state: n.state, ts: n.ts, parents: n.parents, payloadHash: n.payloadHash }
}
