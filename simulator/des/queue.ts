/**
 * The event queue of the discrete-event simulator: a binary min-heap on event time, fed from
 * a calendar of 1 ms buckets. Every event's fields live in a pool of typed-array slots (no
 * object per event: a million pending events cost ~40 MB).
 *
 * Why the calendar: a gossip flood through 10^6 nodes keeps a few million deliveries pending,
 * and a plain binary heap of that size spends most of its pops on cache misses (it was ~30%
 * of the run time on planet-1m). Here the heap holds only the events of the current
 * millisecond (tens of thousands at most, so it stays in cache); later events wait in their
 * bucket as a linked list through the slots (O(1) push), and events more than BUCKETS ms
 * ahead wait in a second binary heap. Order is exact: the heap holds every pending event with
 * time < (cur + 1) ms, and pops in time order.
 *
 * Determinism: events with the same time pop in an order fixed by the heap's own operations,
 * which are a pure function of the sequence of pushes and pops, so a run is a pure function of
 * its seed.
 */

const BUCKETS = 1 << 16
const MASK = BUCKETS - 1
const WIDTH_MS = 1

/** A binary min-heap of (time, slot) pairs in one Float64Array. */
class TimeHeap {
  size = 0
  h: Float64Array

  constructor (capacity: number) {
    this.h = new Float64Array(capacity * 2)
  }

  push (time: number, slot: number): void {
    if (2 * this.size === this.h.length) {
      const h = new Float64Array(this.h.length * 2)
      h.set(this.h)
      this.h = h
    }
    const h = this.h
    let i = this.size++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pt = h[2 * parent]!
      if (pt <= time) break
      h[2 * i] = pt
      h[2 * i + 1] = h[2 * parent + 1]!
      i = parent
    }
    h[2 * i] = time
    h[2 * i + 1] = slot
  }

  /** removes the top; returns its slot */
  pop (): number {
    const h = this.h
    const top = h[1]!
    const n = --this.size
    if (n > 0) {
      const lt = h[2 * n]!
      const ls = h[2 * n + 1]!
      let i = 0
      for (;;) {
        let c = 2 * i + 1
        if (c >= n) break
        let ct = h[2 * c]!
        if (c + 1 < n) {
          const rt = h[2 * c + 2]!
          if (rt < ct) { c++; ct = rt }
        }
        if (lt <= ct) break
        h[2 * i] = ct
        h[2 * i + 1] = h[2 * c + 1]!
        i = c
      }
      h[2 * i] = lt
      h[2 * i + 1] = ls
    }
    return top
  }
}

/** one event record: 48 bytes, so an event's fields share a cache line */
const REC_BYTES = 48
const F = REC_BYTES / 8 // float64 fields: time, t0
const I = REC_BYTES / 4 // int32 fields from 4: type, node, a, b, next

export class EventQueue {
  size = 0
  #cap: number
  #f64: Float64Array
  #i32: Int32Array
  #free: Int32Array
  #freeTop = 0
  /** events with time < (cur + 1) * WIDTH_MS */
  readonly #now = new TimeHeap(1 << 12)
  /** events more than BUCKETS ahead of cur */
  readonly #far = new TimeHeap(1 << 8)
  readonly #head = new Int32Array(BUCKETS).fill(-1)
  /** events in buckets */
  #inBuckets = 0
  /** the current bucket (absolute index) */
  #cur = 0
  // the fields of the event pop() took
  type = 0
  node = 0
  a = 0
  b = 0
  t0 = 0

  constructor (capacity = 1 << 16) {
    this.#cap = capacity
    const buf = new ArrayBuffer(capacity * REC_BYTES)
    this.#f64 = new Float64Array(buf)
    this.#i32 = new Int32Array(buf)
    this.#free = new Int32Array(capacity)
    for (let i = 0; i < capacity; i++) this.#free[i] = capacity - 1 - i
    this.#freeTop = capacity
  }

  get capacity (): number {
    return this.#cap
  }

  #grow (): void {
    const old = this.#cap
    const cap = old * 2
    const buf = new ArrayBuffer(cap * REC_BYTES)
    const f64 = new Float64Array(buf)
    f64.set(this.#f64)
    this.#f64 = f64
    this.#i32 = new Int32Array(buf)
    // every old slot is in use (that is why we grow): the free ones are the new ones
    const free = new Int32Array(cap)
    let top = 0
    for (let i = cap - 1; i >= old; i--) free[top++] = i
    this.#free = free
    this.#freeTop = top
    this.#cap = cap
  }

  push (time: number, type: number, node: number, a: number, b: number, t0 = 0): void {
    if (this.#freeTop === 0) this.#grow()
    const slot = this.#free[--this.#freeTop]!
    const f = slot * F
    const i = slot * I
    const f64 = this.#f64
    const i32 = this.#i32
    f64[f] = time
    f64[f + 1] = t0
    i32[i + 4] = type
    i32[i + 5] = node
    i32[i + 6] = a
    i32[i + 7] = b
    this.size++
    const bucket = Math.floor(time / WIDTH_MS)
    if (bucket <= this.#cur) {
      this.#now.push(time, slot)
    } else if (bucket - this.#cur < BUCKETS) {
      const k = bucket & MASK
      i32[i + 8] = this.#head[k]!
      this.#head[k] = slot
      this.#inBuckets++
    } else {
      this.#far.push(time, slot)
    }
  }

  /** moves on to the next bucket that holds events, loading them into the heap */
  #advance (): boolean {
    while (this.#now.size === 0) {
      if (this.#inBuckets === 0) {
        if (this.#far.size === 0) return false
        // nothing in the calendar: jump to the far heap's first bucket
        this.#cur = Math.floor(this.#far.h[0]! / WIDTH_MS) - 1
      }
      this.#cur++
      // far events whose bucket has come
      const far = this.#far
      while (far.size > 0 && Math.floor(far.h[0]! / WIDTH_MS) <= this.#cur) {
        const t = far.h[0]!
        this.#now.push(t, far.pop())
      }
      const k = this.#cur & MASK
      let s = this.#head[k]!
      if (s >= 0) {
        this.#head[k] = -1
        const f64 = this.#f64
        const i32 = this.#i32
        while (s >= 0) {
          const after = i32[s * I + 8]!
          this.#now.push(f64[s * F]!, s)
          this.#inBuckets--
          s = after
        }
      }
    }
    return true
  }

  /** time of the earliest event (Infinity when empty) */
  peekTime (): number {
    if (this.#now.size === 0 && !this.#advance()) return Infinity
    return this.#now.h[0]!
  }

  /**
   * Removes the earliest event into `type`, `node`, `a`, `b`, `t0`; false when empty.
   */
  pop (): boolean {
    if (this.#now.size === 0 && !this.#advance()) return false
    this.size--
    const slot = this.#now.pop()
    const f = slot * F
    const i = slot * I
    const i32 = this.#i32
    this.t0 = this.#f64[f + 1]!
    this.type = i32[i + 4]!
    this.node = i32[i + 5]!
    this.a = i32[i + 6]!
    this.b = i32[i + 7]!
    this.#free[this.#freeTop++] = slot
    return true
  }
}
