import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { parseInferInput } from '../../src/inference/service.ts'
import { parseChatBody, FEDERATION_MODEL } from '../../src/api/inference.ts'
import { SkillRejection } from '../../src/a2a/types.ts'

describe('inference request parsing', () => {
  test('the infer skill takes plain text (one user message) or a data part', () => {
    assert.deepEqual(parseInferInput([{ text: 'hi ' }, { text: 'there' }]), { messages: [{ role: 'user', content: 'hi there' }], maxTokens: 256 })
    assert.deepEqual(parseInferInput([{ data: { messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }], max_tokens: 9, seed: 3, temperature: 0 } }]),
      { messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }], maxTokens: 9, seed: 3, temperature: 0 })
  })

  test('bad input is a SkillRejection naming the field', () => {
    const bad: Array<[unknown[], RegExp]> = [
      [[{ text: '' }], /needs a prompt/],
      [[{ data: { messages: [] } }], /messages must be/],
      [[{ data: { messages: [{ role: 'robot', content: 'x' }] } }], /messages\[0\]\.role/],
      [[{ data: { messages: [{ role: 'user', content: 1 }] } }], /messages\[0\]\.content/],
      [[{ data: { messages: [{ role: 'user', content: 'x' }], max_tokens: 0 } }], /max_tokens/],
      [[{ data: { messages: [{ role: 'user', content: 'x' }], max_tokens: 1.5 } }], /max_tokens/],
      [[{ data: { messages: [{ role: 'user', content: 'x' }], temperature: 3 } }], /temperature/],
      [[{ data: { messages: [{ role: 'user', content: 'x' }], seed: 'x' } }], /seed/]
    ]
    for (const [parts, re] of bad) assert.throws(() => parseInferInput(parts as never), (err: Error) => err instanceof SkillRejection && re.test(err.message))
  })

  test('OpenAI bodies: max_completion_tokens wins over max_tokens; the federation model id means "any"', () => {
    const p = parseChatBody({ model: FEDERATION_MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 5, max_completion_tokens: 7, stream: true })
    assert.equal(p.req.maxTokens, 7)
    assert.equal(p.req.model, undefined)
    assert.equal(p.stream, true)
    assert.equal(parseChatBody({ model: 'tiny', messages: [{ role: 'user', content: 'x' }] }).req.model, 'tiny')
    assert.throws(() => parseChatBody({ messages: [{ role: 'user', content: 'x' }], n: 2 }), /n must be 1/)
    assert.throws(() => parseChatBody([]), /JSON object/)
    assert.throws(() => parseChatBody({ messages: [{ role: 'user', content: 'x' }], stream: 'yes' }), /stream/)
  })
})
