import { test, describe } from 'node:test'
import { mulberry32 } from '../helpers/random.ts'
import assert from 'node:assert/strict'
import canonicalizeRef from 'canonicalize'
import { canonicalize, canonicalString, CanonicalizationError } from '../../src/pci/canonical.ts'


function fromHex (hex: string): number {
  const view = new DataView(new ArrayBuffer(8))
  view.setBigUint64(0, BigInt('0x' + hex))
  return view.getFloat64(0)
}

describe('RFC 8785 examples', () => {
  test('section 3.2.2: sample input canonicalizes to the published output', () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`
    const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
    assert.equal(canonicalize(JSON.parse(input)), expected)
    assert.equal(canonicalizeRef(JSON.parse(input)), expected)
  })

  test('section 3.2.3: members sort by UTF-16 code units', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      1: 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis'
    }
    const out = canonicalize(input)
    const keys = Object.keys(JSON.parse(out) as object)
    // JSON.parse reorders integer-like keys, so check the order in the text itself
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']
    assert.deepEqual(keys.sort(), [...order].sort())
    const expected = '{' + order.map(k => JSON.stringify(k) + ':' + JSON.stringify(input[k as keyof typeof input])).join(',') + '}'
    assert.equal(out, expected)
    assert.ok(out.startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":'))
    assert.ok(out.endsWith('"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'))
  })

  describe('Appendix B: number serialization', () => {
    const table: Array<[string, string]> = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2']
    ]
    for (const [hex, expected] of table) {
      test(`${hex} -> ${expected}`, () => {
        const n = fromHex(hex)
        assert.equal(canonicalize(n), expected)
        assert.equal(canonicalize([n]), `[${expected}]`)
        assert.equal(canonicalize({ n }), `{"n":${expected}}`)
      })
    }
    for (const [hex, name] of [['7fffffffffffffff', 'NaN'], ['7ff0000000000000', 'Infinity'], ['fff0000000000000', '-Infinity']]) {
      test(`${hex} (${name}) throws CanonicalizationError`, () => {
        const n = fromHex(hex!)
        assert.throws(() => canonicalize(n), CanonicalizationError)
        assert.throws(() => canonicalize({ a: [n] }), CanonicalizationError)
      })
    }
  })
})

describe('I-JSON restrictions', () => {
  test('lone surrogates throw, in values and in keys', () => {
    for (const s of ['\ud800', '\udc00', 'a\ud83d', '\ude00b', '\ud83d\ud83d\ude00', '\ud83d\ude00\ude00', '\udc00\ud800']) {
      assert.throws(() => canonicalize(s), CanonicalizationError, JSON.stringify(s))
      assert.throws(() => canonicalString(s), CanonicalizationError)
      assert.throws(() => canonicalize({ [s]: 1 }), CanonicalizationError)
      assert.throws(() => canonicalize([1, { x: [s] }]), CanonicalizationError)
    }
    // well-formed pairs are fine
    assert.equal(canonicalize('\ud83d\ude00'), '"\ud83d\ude00"')
  })

  test('non-plain objects throw', () => {
    class Point { x = 1 }
    for (const v of [new Date(0), new Map([['a', 1]]), new Set([1]), new Point(), /re/, new Uint8Array(2), Buffer.from('x')]) {
      assert.throws(() => canonicalize(v), CanonicalizationError)
      assert.throws(() => canonicalize({ v }), CanonicalizationError)
    }
    for (const v of [() => 1, Symbol('s'), 1n]) {
      assert.throws(() => canonicalize(v), CanonicalizationError)
      assert.throws(() => canonicalize([v]), CanonicalizationError)
    }
  })

  test('null-prototype objects and __proto__ keys from JSON.parse are plain data', () => {
    const o = Object.create(null) as Record<string, unknown>
    o.b = 1
    o.a = 2
    assert.equal(canonicalize(o), '{"a":2,"b":1}')
    const parsed: unknown = JSON.parse('{"__proto__":{"x":1},"a":[]}')
    assert.equal(canonicalize(parsed), '{"__proto__":{"x":1},"a":[]}')
    assert.equal(canonicalize(parsed), canonicalizeRef(parsed))
  })

  test('depth limit throws', () => {
    const nest = (n: number): unknown => {
      let v: unknown = 0
      for (let i = 0; i < n; i++) v = i % 2 === 0 ? [v] : { k: v }
      return v
    }
    assert.doesNotThrow(() => canonicalize(nest(64)))
    assert.throws(() => canonicalize(nest(65)), CanonicalizationError)
    assert.doesNotThrow(() => canonicalize(nest(5), { maxDepth: 5 }))
    assert.throws(() => canonicalize(nest(6), { maxDepth: 5 }), CanonicalizationError)
    assert.throws(() => canonicalize(nest(10_000)), CanonicalizationError)
  })

  test('undefined members are skipped', () => {
    assert.equal(canonicalize({ a: undefined, b: 1, c: undefined }), '{"b":1}')
    assert.equal(canonicalize({ a: undefined }), '{}')
    assert.equal(canonicalize({ x: { y: undefined, z: null } }), '{"x":{"z":null}}')
  })

  test('scalars and escapes', () => {
    assert.equal(canonicalize(null), 'null')
    assert.equal(canonicalize(true), 'true')
    assert.equal(canonicalize(false), 'false')
    assert.equal(canonicalize(-0), '0')
    assert.equal(canonicalize('\u0000\u001f\u007f"\\/'), '"\\u0000\\u001f\u007f\\"\\\\/"')
    assert.equal(canonicalize('\b\f\n\r\t'), '"\\b\\f\\n\\r\\t"')
    assert.equal(canonicalize([]), '[]')
    assert.equal(canonicalize({}), '{}')
  })
})

describe('property: canonicalize() equals the canonicalize npm package', () => {
  const SEED = 0x8785

  function randomValues (seed: number, count: number): unknown[] {
    const rnd = mulberry32(seed)
    const int = (n: number): number => Math.floor(rnd() * n)
    const view = new DataView(new ArrayBuffer(8))

    const randomNumber = (): number => {
      switch (int(7)) {
        case 0: return int(2000) - 1000
        case 1: return (rnd() - 0.5) * 10 ** (int(40) - 20)
        case 2: return Number((rnd() * 1000).toFixed(int(6)))
        case 3: return [0, -0, 5e-324, -5e-324, Number.MAX_VALUE, Number.MIN_SAFE_INTEGER, 2 ** 53, 1e21, 1e-7, 1e-6][int(10)]!
        default: {
          // any finite double, from random bits
          for (;;) {
            view.setUint32(0, Math.floor(rnd() * 2 ** 32))
            view.setUint32(4, Math.floor(rnd() * 2 ** 32))
            const d = view.getFloat64(0)
            if (Number.isFinite(d)) return d
          }
        }
      }
    }

    const randomChar = (): string => {
      switch (int(6)) {
        case 0: return String.fromCharCode(int(0x20)) // control characters
        case 1: return '"\\/\u2028\u2029\u007f\u0080'[int(8)]!
        case 2: return String.fromCodePoint(0x10000 + int(0x100000)) // astral: a surrogate pair
        case 3: return String.fromCharCode(0x80 + int(0xd800 - 0x80)) // BMP below surrogates
        case 4: return String.fromCharCode(0xe000 + int(0x2000)) // BMP above surrogates
        default: return String.fromCharCode(0x20 + int(0x5f))
      }
    }
    const randomString = (): string => {
      const n = int(4) === 0 ? int(40) : int(6)
      let s = ''
      for (let i = 0; i < n; i++) s += randomChar()
      return s
    }

    const randomValue = (depth: number): unknown => {
      const kind = depth >= 5 ? int(4) : int(7)
      switch (kind) {
        case 0: return null
        case 1: return rnd() < 0.5
        case 2: return randomNumber()
        case 3: return randomString()
        case 4:
        case 5: {
          const obj: Record<string, unknown> = {}
          const n = int(7)
          for (let i = 0; i < n; i++) {
            const key = int(5) === 0 ? String(int(100)) : randomString()
            obj[key] = randomValue(depth + 1)
          }
          return obj
        }
        default: {
          const n = int(6)
          const arr: unknown[] = []
          for (let i = 0; i < n; i++) arr.push(randomValue(depth + 1))
          return arr
        }
      }
    }

    const out: unknown[] = []
    for (let i = 0; i < count; i++) out.push(randomValue(0))
    return out
  }

  test(`2,000 random JSON values (seed ${SEED})`, () => {
    const values = randomValues(SEED, 2000)
    let objects = 0
    values.forEach((v, i) => {
      const ours = canonicalize(v)
      assert.equal(ours, canonicalizeRef(v), `seed ${SEED}, value #${i}: ${JSON.stringify(v)}`)
      // canonical output is valid JSON that round-trips to the same canonical text
      assert.equal(canonicalize(JSON.parse(ours)), ours, `seed ${SEED}, value #${i}`)
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) objects++
    })
    assert.ok(objects > 200, 'the generator should produce plenty of objects')
  })
})
