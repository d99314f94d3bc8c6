import { test, describe } from 'node:test'
import { mulberry32 } from '../helpers/random.ts'
import assert from 'node:assert/strict'
import {
  MEMBERSHIP_DEFAULTS,
  createMembership,
  resolveMembershipConfig,
  stepMembership,
  type Membership,
  type MembershipConfig,
  type MembershipEvent,
  type MembershipInput
} from '../../src/net/membership.ts'


const I = 10_000
const SELF = 'self'
const T0 = 1_700_000_000_000 // any epoch: the machine only ever sees differences

function membership (config: Partial<MembershipConfig> = {}): Membership {
  return createMembership({ selfId: SELF, ...config })
}

/**
 * Feeds `inputs` in time order and ticks every `tickMs` from `from` to `until` (inputs at a
 * tick's instant go first). Returns every event, in order.
 */
function drive (m: Membership, inputs: MembershipInput[], opts: { from: number, until: number, tickMs: number }): MembershipEvent[] {
  const queue = [...inputs].sort((a, b) => a.now - b.now)
  const events: MembershipEvent[] = []
  let i = 0
  for (let t = opts.from; t <= opts.until; t += opts.tickMs) {
    while (i < queue.length && queue[i]!.now <= t) events.push(...stepMembership(m, queue[i++]!))
    events.push(...m.tick(t))
  }
  while (i < queue.length) events.push(...stepMembership(m, queue[i++]!))
  return events
}

/** Heartbeats from `peerId` every I (times jitter), from `from` while before `until`. */
function beats (peerId: string, from: number, until: number, jitter?: { rnd: () => number, spread: number }): MembershipInput[] {
  const out: MembershipInput[] = []
  for (let t = from; t < until; t += jitter === undefined ? I : I * (1 + jitter.spread * (2 * jitter.rnd() - 1))) {
    out.push({ type: 'heartbeat', peerId, now: t })
  }
  return out
}

const transitions = (events: MembershipEvent[], peerId?: string): string[] =>
  events.filter(e => peerId === undefined || e.peerId === peerId).map(e => e.type)

function firstAt (events: MembershipEvent[], type: MembershipEvent['type'], peerId: string): number {
  const e = events.find(e => e.type === type && e.peerId === peerId)
  assert.ok(e !== undefined, `no ${type} for ${peerId}: ${transitions(events).join(', ')}`)
  return e.ts
}

describe('membership configuration', () => {
  test('defaults: 10 s heartbeats, phi 8 / 16, DEAD after 6 silent intervals, forgotten 10 intervals later', () => {
    const c = resolveMembershipConfig({ selfId: SELF })
    assert.equal(c.heartbeatIntervalMs, 10_000)
    assert.equal(c.suspectPhi, 8)
    assert.equal(c.deadPhi, 16)
    assert.equal(c.deadAfterMs, 60_000)
    assert.equal(c.forgetAfterMs, 100_000)
    assert.equal(c.lowBeliefThreshold, 0.3)
    assert.equal(c.lone, false)
    assert.equal(MEMBERSHIP_DEFAULTS.deadAfterIntervals, 6)
    // derived bounds follow the interval
    const fast = resolveMembershipConfig({ selfId: SELF, heartbeatIntervalMs: 200 })
    assert.equal(fast.deadAfterMs, 1_200)
    assert.equal(fast.forgetAfterMs, 2_000)
  })

  test('rejects nonsense', () => {
    assert.throws(() => resolveMembershipConfig({ selfId: '' }), RangeError)
    assert.throws(() => resolveMembershipConfig({ selfId: SELF, heartbeatIntervalMs: 0 }), RangeError)
    assert.throws(() => resolveMembershipConfig({ selfId: SELF, suspectPhi: 10, deadPhi: 5 }), RangeError)
    assert.throws(() => resolveMembershipConfig({ selfId: SELF, deadAfterMs: -1 }), RangeError)
    assert.throws(() => resolveMembershipConfig({ selfId: SELF, forgetAfterMs: Number.NaN }), RangeError)
    assert.throws(() => resolveMembershipConfig({ selfId: SELF, lowBeliefThreshold: 2 }), RangeError)
    assert.throws(() => resolveMembershipConfig({ selfId: SELF, ntu: { window: 5, alpha: 0.5, beta: 0.5, gamma: 0.5 } }), RangeError)
    assert.throws(() => resolveMembershipConfig({ selfId: SELF, phi: { windowSize: 1 } }), RangeError)
  })
})

describe('membership transitions', () => {
  test('connected -> JOINING (peer:joined), first heartbeat -> ACTIVE (peer:active)', () => {
    const m = membership()
    assert.deepEqual(m.connected('a', T0), [{ type: 'peer:joined', peerId: 'a', ts: T0 }])
    assert.equal(m.view('a', T0)?.state, 'JOINING')
    assert.equal(m.view('a', T0)?.lastSeen, null)
    assert.equal(m.view('a', T0)?.connected, true)
    assert.deepEqual(m.connected('a', T0 + 1), [], 'a second connection is no news')
    assert.deepEqual(m.heartbeat('a', T0 + 5, { addresses: ['/ip4/10.0.0.1/tcp/9000'], load: 3 }), [{ type: 'peer:active', peerId: 'a', ts: T0 + 5 }])
    const v = m.view('a', T0 + 5)!
    assert.equal(v.state, 'ACTIVE')
    assert.equal(v.lastSeen, T0 + 5)
    assert.deepEqual(v.addresses, ['/ip4/10.0.0.1/tcp/9000'])
    assert.equal(v.load, 3)
    assert.deepEqual(m.heartbeat('a', T0 + I), [], 'ACTIVE stays ACTIVE quietly')
    assert.deepEqual(m.view('a', T0 + I)?.addresses, ['/ip4/10.0.0.1/tcp/9000'], 'a heartbeat without addresses keeps the old ones')
  })

  test('a heartbeat from a peer never connected directly (relayed gossip) joins and activates it', () => {
    const m = membership()
    assert.deepEqual(transitions(m.heartbeat('b', T0)), ['peer:joined', 'peer:active'])
    assert.equal(m.view('b', T0)?.connected, false)
  })

  test('regular heartbeats keep a peer ACTIVE over a long run', () => {
    const m = membership()
    const end = T0 + 10_000 * I
    const events = drive(m, [{ type: 'connected', peerId: 'a', now: T0 }, ...beats('a', T0, end)], { from: T0, until: end, tickMs: I / 2 })
    assert.deepEqual(transitions(events), ['peer:joined', 'peer:active'])
    assert.equal(m.view('a', end)?.state, 'ACTIVE')
    assert.ok(m.view('a', end)!.phi < 0.01)
  })

  test('a peer that stops is SUSPECT, then DEAD, then left, at sane multiples of the interval', () => {
    const m = membership()
    const last = T0 + 20 * I
    const events = drive(m, [{ type: 'connected', peerId: 'a', now: T0 }, ...beats('a', T0, last + 1)], { from: T0, until: last + 30 * I, tickMs: 100 })
    assert.deepEqual(transitions(events), ['peer:joined', 'peer:active', 'peer:suspect', 'peer:dead', 'peer:left'])
    const suspect = firstAt(events, 'peer:suspect', 'a') - last
    const dead = firstAt(events, 'peer:dead', 'a') - last
    const left = firstAt(events, 'peer:left', 'a') - last
    // one missed heartbeat is tolerated (acceptable pause); phi 8 comes ~3.3 intervals in,
    // phi 16 ~3.8, and never later than the hard bound of 6
    assert.ok(suspect > 2 * I && suspect < 4 * I, `SUSPECT after ${suspect / I} intervals`)
    assert.ok(dead > suspect && dead <= 6 * I, `DEAD after ${dead / I} intervals`)
    assert.equal(left, dead + 10 * I, 'forgotten 10 intervals after DEAD')
    assert.equal(m.view('a', last + 30 * I), undefined)
    assert.equal(m.size, 0)
  })

  test('the silence bound makes a peer DEAD even when phi is still low', () => {
    // a peer whose heartbeats swing widely has a wide normal: phi alone would wait > 7 intervals
    const m = membership()
    const inputs: MembershipInput[] = []
    let t = T0
    for (let i = 0; i < 200; i++) {
      inputs.push({ type: 'heartbeat', peerId: 'w', now: t })
      t += i % 2 === 0 ? 2_000 : 18_000
    }
    const last = inputs.at(-1)!.now
    const events = drive(m, inputs, { from: T0, until: last + 8 * I, tickMs: 100 })
    assert.ok(m.phi('w', last + 6 * I) < 16, 'phi has not convicted it yet')
    assert.equal(firstAt(events, 'peer:dead', 'w') - last, 6 * I)
    assert.ok(firstAt(events, 'peer:suspect', 'w') - last <= 6 * I)
  })

  test('a late tick applies every due transition, in order', () => {
    const m = membership()
    m.heartbeat('a', T0)
    m.heartbeat('a', T0 + I)
    assert.deepEqual(m.tick(T0 + 8 * I), [
      { type: 'peer:suspect', peerId: 'a', ts: T0 + 8 * I },
      { type: 'peer:dead', peerId: 'a', ts: T0 + 8 * I }
    ])
    assert.deepEqual(m.tick(T0 + 100 * I), [{ type: 'peer:left', peerId: 'a', ts: T0 + 100 * I }])
  })

  test('a returning heartbeat revives a SUSPECT or DEAD peer with peer:active', () => {
    const m = membership()
    let events = drive(m, beats('a', T0, T0 + 10 * I), { from: T0, until: T0 + 12.4 * I, tickMs: 100 })
    assert.equal(m.view('a', T0 + 12.4 * I)?.state, 'SUSPECT', transitions(events).join(', '))
    assert.deepEqual(m.heartbeat('a', T0 + 12.4 * I), [{ type: 'peer:active', peerId: 'a', ts: T0 + 12.4 * I }])
    assert.deepEqual(m.tick(T0 + 12.5 * I), [])

    events = drive(m, [], { from: T0 + 12.5 * I, until: T0 + 19 * I, tickMs: 100 })
    assert.deepEqual(transitions(events), ['peer:suspect', 'peer:dead'])
    assert.equal(m.view('a', T0 + 19 * I)?.state, 'DEAD')
    assert.deepEqual(m.heartbeat('a', T0 + 19 * I), [{ type: 'peer:active', peerId: 'a', ts: T0 + 19 * I }])
    const v = m.view('a', T0 + 19 * I)!
    assert.equal(v.state, 'ACTIVE')
    assert.equal(v.phi, 0)

    // back from the dead with a fresh history: the long silence is not held against it, so
    // it is judged exactly like a peer heard for the first time
    const fresh = membership()
    fresh.heartbeat('a', T0 + 19 * I)
    assert.equal(m.nextDeadline(T0 + 19 * I), fresh.nextDeadline(T0 + 19 * I))
  })

  test('a forgotten peer that comes back joins again', () => {
    const m = membership()
    m.heartbeat('a', T0)
    m.tick(T0 + 7 * I)
    assert.deepEqual(transitions(m.tick(T0 + 20 * I)), ['peer:left'])
    assert.deepEqual(transitions(m.heartbeat('a', T0 + 21 * I)), ['peer:joined', 'peer:active'])
  })

  test('jittery (+-30%) but live heartbeats never cause SUSPECT or DEAD over 1,000 intervals', () => {
    for (const seed of [1, 2, 3, 0xb1a2]) {
      const rnd = mulberry32(seed)
      const m = membership()
      const end = T0 + 1_000 * I
      const inputs: MembershipInput[] = []
      for (const p of ['a', 'b', 'c', 'd', 'e']) {
        inputs.push({ type: 'connected', peerId: p, now: T0 })
        inputs.push(...beats(p, T0 + rnd() * I, end, { rnd, spread: 0.3 }))
      }
      const events = drive(m, inputs, { from: T0, until: end, tickMs: I / 4 })
      const bad = events.filter(e => e.type === 'peer:suspect' || e.type === 'peer:dead' || e.type === 'peer:left')
      assert.deepEqual(bad, [], `seed ${seed}`)
      assert.ok(m.views(end).every(v => v.state === 'ACTIVE'), `seed ${seed}`)
    }
  })

  test('an isolated lost heartbeat (every 10th dropped, +-30% jitter) is tolerated', () => {
    const rnd = mulberry32(7)
    const m = membership()
    const end = T0 + 1_000 * I
    const inputs = beats('a', T0, end, { rnd, spread: 0.3 }).filter((_, i) => i % 10 !== 9)
    const events = drive(m, inputs, { from: T0, until: end, tickMs: I / 4 })
    assert.deepEqual(transitions(events), ['peer:joined', 'peer:active'])
  })

  test('deterministic: the same inputs give the same events', () => {
    const run = (): MembershipEvent[] => {
      const rnd = mulberry32(99)
      const m = membership()
      const inputs = [...beats('a', T0, T0 + 300 * I, { rnd, spread: 0.3 }), ...beats('b', T0, T0 + 150 * I, { rnd, spread: 0.3 })]
      return drive(m, inputs, { from: T0, until: T0 + 400 * I, tickMs: 250 })
    }
    const a = run()
    assert.deepEqual(a, run())
    assert.deepEqual(transitions(a, 'b'), ['peer:joined', 'peer:active', 'peer:suspect', 'peer:dead', 'peer:left'])
  })
})

describe('connections and self', () => {
  test('own heartbeats, connections and messages (selfId) are ignored', () => {
    const m = membership()
    assert.deepEqual(m.connected(SELF, T0), [])
    assert.deepEqual(m.heartbeat(SELF, T0), [])
    assert.deepEqual(m.messageValidated(SELF, false, T0), [])
    assert.deepEqual(m.tick(T0 + 100 * I), [])
    assert.equal(m.size, 0)
    assert.equal(m.view(SELF, T0), undefined)
    assert.equal(m.selfState(T0), 'JOINING', 'hearing itself does not make a node ACTIVE')
  })

  test('a JOINING peer that disconnects before any heartbeat is forgotten at once', () => {
    const m = membership()
    m.connected('a', T0)
    assert.deepEqual(m.disconnected('a', T0 + 5), [{ type: 'peer:left', peerId: 'a', ts: T0 + 5 }])
    assert.equal(m.has('a'), false)
    assert.deepEqual(m.disconnected('nobody', T0 + 6), [])
  })

  test('a peer that was heard keeps its state on disconnect and is judged by its heartbeats', () => {
    const m = membership()
    m.connected('a', T0)
    m.heartbeat('a', T0)
    assert.deepEqual(m.disconnected('a', T0 + 1), [])
    const v = m.view('a', T0 + 1)!
    assert.equal(v.state, 'ACTIVE')
    assert.equal(v.connected, false)
    assert.deepEqual(m.heartbeat('a', T0 + I), [], 'heartbeats relayed by others keep it ACTIVE')
  })

  test('selfState: JOINING until an ACTIVE peer, ACTIVE after; a lone node is ACTIVE at once', () => {
    const m = membership()
    assert.equal(m.selfState(T0), 'JOINING')
    m.connected('a', T0)
    assert.equal(m.selfState(T0, { connections: 1 }), 'JOINING', 'connected but not heard yet')
    m.heartbeat('a', T0 + 1)
    assert.equal(m.selfState(T0 + 1, { connections: 1 }), 'ACTIVE')
    assert.equal(m.selfState(T0 + 1), 'ACTIVE')
    assert.equal(m.selfState(T0 + 1, { connections: 0 }), 'JOINING', 'no connections: rejoining')
    m.tick(T0 + 8 * I)
    assert.equal(m.view('a', T0 + 8 * I)?.state, 'DEAD')
    assert.equal(m.selfState(T0 + 8 * I, { connections: 1 }), 'JOINING', 'every peer dead: rejoining')

    const lone = membership({ lone: true })
    assert.equal(lone.selfState(T0), 'ACTIVE')
    assert.equal(lone.selfState(T0, { connections: 0 }), 'ACTIVE')
  })
})

describe('NTU belief and ranking', () => {
  function threeActive (): Membership {
    const m = membership()
    for (const p of ['a', 'b', 'c']) m.heartbeat(p, T0)
    return m
  }

  test('invalid messages drive a peer below the low-belief threshold; valid ones keep it high', () => {
    const m = threeActive()
    for (let i = 0; i < 5; i++) {
      m.messageValidated('a', false, T0 + i)
      m.messageValidated('b', true, T0 + i)
    }
    assert.ok(m.trust('a') < 0.3, `trust a ${m.trust('a')}`)
    assert.ok(m.view('a', T0)!.trust < 0.3)
    assert.equal(m.isLowBelief('a'), true)
    assert.ok(m.trust('b') > 0.9, `trust b ${m.trust('b')}`)
    assert.ok(m.view('b', T0)!.belief > 0.9)
    assert.equal(m.isLowBelief('b'), false)
    assert.equal(m.isLowBelief('c'), false, 'no evidence yet: the NTU prior (0.5)')
    assert.equal(m.view('c', T0)!.trust, 0.5)
    assert.equal(m.isLowBelief('unknown'), true)
    // state is untouched: belief is about message quality, not liveness
    assert.equal(m.view('a', T0)?.state, 'ACTIVE')
  })

  test('belief falls when a good peer turns bad, and trust (not raw belief) catches a steadily bad one', () => {
    const m = threeActive()
    for (let i = 0; i < 10; i++) m.messageValidated('a', true)
    const before = m.view('a', T0)!.belief
    for (let i = 0; i < 3; i++) m.messageValidated('a', false)
    assert.ok(m.view('a', T0)!.belief < before - 0.3, `belief ${before} -> ${m.view('a', T0)!.belief}`)
    // NTU belief rewards steadiness, and a stream of rejects is steady: belief settles ~0.6,
    // while trust (belief x valid share) goes to 0
    for (let i = 0; i < 50; i++) m.messageValidated('a', false)
    assert.ok(m.view('a', T0)!.belief > 0.3)
    assert.equal(m.trust('a'), 0)
  })

  test('a single bad message among good ones is not enough for low belief, and belief recovers', () => {
    const m = threeActive()
    for (let i = 0; i < 10; i++) m.messageValidated('a', true)
    m.messageValidated('a', false)
    assert.equal(m.isLowBelief('a'), false, `trust ${m.trust('a')}`)
    for (let i = 0; i < 5; i++) m.messageValidated('a', false)
    assert.equal(m.isLowBelief('a'), true)
    for (let i = 0; i < 5; i++) m.messageValidated('a', true)
    assert.equal(m.isLowBelief('a'), false, `recovered trust ${m.trust('a')}`)
  })

  test('rankPeers: ACTIVE > JOINING > SUSPECT > DEAD > unknown; low belief last among equals', () => {
    const m = threeActive()
    for (let i = 0; i < 5; i++) {
      m.messageValidated('a', false)
      m.messageValidated('b', true)
    }
    assert.deepEqual(m.rankPeers(['a', 'b', 'c']), ['b', 'c', 'a'])
    assert.deepEqual(m.rankPeers(['a', 'c', 'b']), ['b', 'c', 'a'], 'order of the input does not matter')

    m.connected('j', T0) // JOINING, with the best trust of all
    for (let i = 0; i < 5; i++) m.messageValidated('j', true)
    m.heartbeat('d', T0 - 20 * I) // silent for 20 intervals: DEAD at the next tick
    m.heartbeat('s2', T0 - 2.3 * I) // silent for 3.5 intervals by T0 + 1.2 I: SUSPECT, not DEAD
    for (let i = 0; i < 5; i++) {
      m.messageValidated('d', true)
      m.messageValidated('s2', true)
    }
    m.tick(T0)
    for (const p of ['a', 'b', 'c']) m.heartbeat(p, T0 + I)
    m.tick(T0 + 1.2 * I)
    const states = Object.fromEntries(['a', 'b', 'c', 'j', 's2', 'd'].map(p => [p, m.view(p, T0 + 1.2 * I)?.state]))
    assert.deepEqual(states, { a: 'ACTIVE', b: 'ACTIVE', c: 'ACTIVE', j: 'JOINING', s2: 'SUSPECT', d: 'DEAD' })
    assert.deepEqual(m.rankPeers(['zz', 'd', 's2', 'j', 'a', 'c', 'b']), ['b', 'c', 'a', 'j', 's2', 'd', 'zz'])
    assert.deepEqual(m.rankPeers([]), [])
  })
})

describe('driving the machine', () => {
  test('ticking only at nextDeadline gives the same transitions as polling every 100 ms', () => {
    const rnd = mulberry32(5)
    const inputs: MembershipInput[] = [
      ...beats('a', T0, T0 + 200 * I, { rnd, spread: 0.3 }),
      // b: last beat at +49.3 I, back 3.5 intervals later, between phi 8 (~3.3) and 16 (~3.8)
      ...beats('b', T0 + 3_000, T0 + 50 * I),
      ...beats('b', T0 + 52.8 * I, T0 + 90 * I, { rnd, spread: 0.3 }),
      // c: DEAD around +43.8 I, back at +47 I before it is forgotten
      ...beats('c', T0 + 7_000, T0 + 40 * I, { rnd, spread: 0.3 }),
      ...beats('c', T0 + 47 * I, T0 + 120 * I, { rnd, spread: 0.3 })
    ].sort((x, y) => x.now - y.now)
    const end = T0 + 250 * I

    const polled = membership()
    const byPoll = drive(polled, inputs, { from: T0, until: end, tickMs: 100 })

    // a discrete-event driver: before each input, tick at every deadline that falls before it
    const evented = membership()
    const byEvent: MembershipEvent[] = []
    let ticks = 0
    const runUntil = (t: number): void => {
      for (let d = evented.nextDeadline(T0); d !== undefined && d <= t; d = evented.nextDeadline(d)) {
        byEvent.push(...evented.tick(d))
        ticks++
        assert.ok(ticks < 10_000, 'deadlines must make progress')
      }
    }
    for (const input of inputs) {
      runUntil(input.now)
      byEvent.push(...stepMembership(evented, input))
    }
    runUntil(end)

    assert.deepEqual(transitions(byEvent), transitions(byPoll))
    assert.deepEqual(transitions(byPoll, 'b'), ['peer:joined', 'peer:active', 'peer:suspect', 'peer:active', 'peer:suspect', 'peer:dead', 'peer:left'])
    assert.deepEqual(transitions(byPoll, 'c'), ['peer:joined', 'peer:active', 'peer:suspect', 'peer:dead', 'peer:active', 'peer:suspect', 'peer:dead', 'peer:left'])
    for (let i = 0; i < byPoll.length; i++) {
      const lag = byPoll[i]!.ts - byEvent[i]!.ts
      assert.ok(lag >= 0 && lag < 100, `${byPoll[i]!.type} ${byPoll[i]!.peerId}: polled ${lag} ms after its deadline`)
    }
    assert.ok(ticks < 50, `event-driven ticks: ${ticks}`)
    assert.equal(evented.nextDeadline(end), undefined, 'nothing pending once every peer is forgotten')
  })

  test('nextDeadline is never in the past', () => {
    const m = membership()
    m.heartbeat('a', T0)
    assert.equal(m.nextDeadline(T0 + 100 * I), T0 + 100 * I)
    assert.equal(membership().nextDeadline(T0), undefined)
  })

  test('stepMembership applies inputs given as data', () => {
    const m = membership()
    assert.deepEqual(transitions(stepMembership(m, { type: 'connected', peerId: 'a', now: T0 })), ['peer:joined'])
    assert.deepEqual(transitions(stepMembership(m, { type: 'heartbeat', peerId: 'a', now: T0 + 1, info: { load: 2 } })), ['peer:active'])
    assert.deepEqual(stepMembership(m, { type: 'message', peerId: 'a', ok: false, now: T0 + 2 }), [])
    assert.ok(m.view('a', T0 + 2)!.belief < 0.5)
    assert.deepEqual(transitions(stepMembership(m, { type: 'tick', now: T0 + 8 * I })), ['peer:suspect', 'peer:dead'])
    assert.deepEqual(stepMembership(m, { type: 'disconnected', peerId: 'a', now: T0 + 8 * I }), [])
    assert.equal(m.view('a', T0 + 8 * I)?.connected, false)
  })
})
