import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { writeTinyLlama } from '../../native/gguf/tiny-llama.ts'
import type { BizraNode } from '../../src/node/node.ts'
import { FEDERATION_MODEL } from '../../src/api/inference.ts'
import { cliAsync, spawnNode, startTestNode, swarmKeyFile, tempDir, until, type ChildNode } from '../helpers/nodes.ts'

const token = (node: BizraNode): string => readFileSync(node.paths!.apiToken, 'utf8').trim()
const client = (node: BizraNode): OpenAI => new OpenAI({ baseURL: `http://${node.apiAddress}/v1`, apiKey: token(node), maxRetries: 0 })
const ask = { messages: [{ role: 'user' as const, content: 'tell me about the garden' }], max_tokens: 24, seed: 7, temperature: 0.8 }

/** Node B has the tiny model loaded at start; node A has none and reaches B over A2A. */
describe('inference: the worker, the OpenAI-compatible API, and routing to a peer with a model', () => {
  const key = swarmKeyFile()
  let a: BizraNode
  let b: BizraNode
  let c: BizraNode

  before(async () => {
    const homeB = tempDir('bz-inf-b-')
    mkdirSync(join(homeB, 'models'), { recursive: true })
    writeTinyLlama(join(homeB, 'models', 'tiny-7.gguf'), { seed: 7 })
    b = await startTestNode({ home: homeB, swarmKey: key, api: true, config: { models: ['tiny-7'], inferBudgetTokens: 1000 } })
    a = await startTestNode({ swarmKey: key, api: true, bootstrap: [b.addresses().find(x => x.includes('127.0.0.1'))!] })
    await until([a, b], () => a.a2a.directory.providers('infer').includes(b.peerId), 'A learns that B offers infer')
    // C runs no model of its own: its backend is an OpenAI-compatible server (here B's API)
    c = await startTestNode({ swarmKey: key, config: { llmUrl: `http://${b.apiAddress}`, llmApiKey: token(b) } })
  })

  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()])
  })

  test('--llm-url: a node whose backend is an OpenAI-compatible server offers infer and generates through it', async () => {
    await until([c], () => c.skills.has('infer'), 'C offers infer once it has seen the server\'s models')
    assert.deepEqual((await c.inference.loaded()).map(m => m.id), ['tiny-7'])
    const direct = (await client(b).chat.completions.create({ model: 'tiny-7', ...ask })).choices[0]!.message.content
    const pieces: string[] = []
    const r = await c.inference.chat({ model: 'tiny-7', messages: ask.messages, maxTokens: ask.max_tokens, seed: ask.seed, temperature: ask.temperature }, { onToken: t => pieces.push(t) })
    assert.equal(r.text, direct)
    assert.equal(r.provider, c.peerId)
    assert.ok(pieces.length > 1)
    await assert.rejects(c.loadModel('anything'), /no such model file|managed by the server/)
  })

  test('the model loaded at start is listed with the metadata its file carries, and only B offers infer', async () => {
    const { loaded, store } = await b.models()
    assert.equal(loaded.length, 1)
    assert.equal(loaded[0]!.id, 'tiny-7')
    assert.equal(loaded[0]!.architecture, 'llama')
    assert.equal(loaded[0]!.tier, 'NANO')
    assert.equal(loaded[0]!.quantization, 'F32')
    assert.ok(loaded[0]!.parameters! > 100_000)
    assert.equal(store.length, 1)
    assert.ok(b.skills.has('infer'))
    assert.ok(!a.skills.has('infer'))
    const models = await client(b).models.list()
    assert.deepEqual(models.data.map(m => m.id), ['tiny-7'])
    assert.deepEqual((await client(a).models.list()).data.map(m => m.id), [FEDERATION_MODEL], 'A offers the federation\'s model')
  })

  test('the openai client: a completion, the same seed gives the same text, and streaming gives the same text in pieces', async () => {
    const c = client(b)
    const one = await c.chat.completions.create({ model: 'tiny-7', ...ask })
    const two = await c.chat.completions.create({ model: 'tiny-7', ...ask })
    const text = one.choices[0]!.message.content!
    assert.ok(text.length > 0)
    assert.equal(two.choices[0]!.message.content, text, 'fixed seed -> same text')
    assert.equal(one.usage?.completion_tokens, 24)
    assert.equal(one.choices[0]!.finish_reason, 'length')
    const stream = await c.chat.completions.create({ model: 'tiny-7', ...ask, stream: true })
    const pieces: string[] = []
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta?.content
      if (typeof d === 'string' && d !== '') pieces.push(d)
    }
    assert.ok(pieces.length > 1, 'several chunks')
    assert.equal(pieces.join(''), text)
  })

  test('stream_options.include_usage: the openai client gets the token count in a last chunk with no choices, as from OpenAI', async () => {
    const c = client(b)
    const text = (await c.chat.completions.create({ model: 'tiny-7', ...ask })).choices[0]!.message.content!
    const chunks = []
    for await (const chunk of await c.chat.completions.create({ model: 'tiny-7', ...ask, stream: true, stream_options: { include_usage: true } })) chunks.push(chunk)
    const last = chunks.at(-1)!
    assert.deepEqual(last.choices, [])
    assert.equal(last.usage?.completion_tokens, 24, 'every generated token counted, however many share a chunk')
    assert.equal(last.usage?.total_tokens, (last.usage?.prompt_tokens ?? 0) + 24)
    for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.usage, null, 'the other chunks carry usage: null')
    assert.equal(chunks.map(ch => ch.choices[0]?.delta?.content ?? '').join(''), text)
    assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, 'length')

    // not asked for: no usage chunk, and no usage field
    const plain = []
    for await (const chunk of await c.chat.completions.create({ model: 'tiny-7', ...ask, stream: true })) plain.push(chunk)
    assert.ok(plain.every(ch => ch.choices.length === 1 && !('usage' in ch)))
    await assert.rejects(c.chat.completions.create({ model: 'tiny-7', ...ask, stream: true, stream_options: { include_usage: 'yes' as unknown as boolean } }), (err: any) => err.status === 400 && /include_usage/.test(err.message))
  })

  test('node A without a model answers a chat completion through node B over A2A, streaming too', async () => {
    const direct = (await client(b).chat.completions.create({ model: 'tiny-7', ...ask })).choices[0]!.message.content
    const viaA = await client(a).chat.completions.create({ model: FEDERATION_MODEL, ...ask })
    assert.equal(viaA.choices[0]!.message.content, direct)
    assert.match(viaA.system_fingerprint ?? '', new RegExp(b.peerId.slice(-8)))
    const stream = await client(a).chat.completions.create({ ...ask, model: FEDERATION_MODEL, stream: true })
    let streamed = ''
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? ''
    assert.equal(streamed, direct)
  })

  test('bad input is a 400 in OpenAI\'s error shape; no token is a 401', async () => {
    await assert.rejects(client(b).chat.completions.create({ model: 'tiny-7', messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }), (err: any) => err.status === 400 && /max_tokens/.test(err.message))
    await assert.rejects(client(b).chat.completions.create({ model: 'tiny-7', messages: [] }), (err: any) => err.status === 400 && /messages/.test(err.message))
    const noKey = new OpenAI({ baseURL: `http://${b.apiAddress}/v1`, apiKey: 'wrong', maxRetries: 0 })
    await assert.rejects(noKey.chat.completions.create({ model: 'tiny-7', ...ask }), (err: any) => err.status === 401)
    const garbage = await fetch(`http://${b.apiAddress}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${token(b)}`, 'content-type': 'application/json' }, body: 'x'.repeat(1024 * 1024 + 1) })
    assert.equal(garbage.status, 413)
  })

  test('a peer over its token budget gets a clear "rate limited" answer (429), not a hang', async () => {
    // B serves any one peer 1000 tokens a minute; A has been served 48 already, and a request
    // counts what it asks for: 48 + 600 fits, then nothing that asks for 960 more can
    await client(a).chat.completions.create({ model: FEDERATION_MODEL, ...ask, max_tokens: 600 })
    await assert.rejects(client(a).chat.completions.create({ model: FEDERATION_MODEL, ...ask, max_tokens: 960 }), (err: any) => err.status === 429 && /rate limited/.test(err.message))
    // B's own clients are not peers: they are not held to the budget
    await client(b).chat.completions.create({ model: 'tiny-7', ...ask, max_tokens: 960 })
  })

  test('a corrupt GGUF is refused with an error naming the file, and the loaded model keeps serving', async () => {
    const bad = join(b.paths!.models, 'broken.gguf')
    writeFileSync(bad, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(20, 0xff)]))
    await assert.rejects(b.loadModel('broken'), (err: Error) => err.message.includes(bad))
    await assert.rejects(b.loadModel('missing-model'), /no such model file/)
    assert.equal((await b.models()).loaded.length, 1)
    assert.ok((await client(b).chat.completions.create({ model: 'tiny-7', ...ask })).choices[0]!.message.content!.length > 0)
  })
})

describe('inference from the CLI', () => {
  let daemon: ChildNode | undefined
  const home = tempDir('bz-inf-cli-')
  after(async () => {
    daemon?.child.kill('SIGTERM')
    await daemon?.exited
  })

  test('bizra infer streams from a node started with --model; a corrupt model at start is one line naming the file', async () => {
    mkdirSync(join(home, 'models'), { recursive: true })
    writeTinyLlama(join(home, 'models', 'tiny-3.gguf'), { seed: 3 })
    writeFileSync(join(home, 'models', 'junk.gguf'), 'not a model')
    const refused = await cliAsync(['start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--model', 'junk'])
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /junk\.gguf/)
    assert.equal(refused.stderr.trim().split('\n').length, 1)

    daemon = await spawnNode(home, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--model', 'tiny-3'])
    const r = await cliAsync(['infer', 'hello there', '--home', home, '--max-tokens', '16', '--seed', '5'])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(r.stdout.trim().length > 0)
    assert.match(r.stderr, /16 tokens from tiny-3 on /)
    const again = await cliAsync(['infer', 'hello there', '--home', home, '--max-tokens', '16', '--seed', '5', '--json'])
    assert.equal(JSON.parse(again.stdout).text, r.stdout.replace(/\n$/, ''))
    const bad = await cliAsync(['infer', '--home', home])
    assert.equal(bad.code, 2)
  })

  test('bizra models make-tiny, load (with progress), list (loaded marked), unload; a corrupt file names itself', async () => {
    assert.ok(daemon !== undefined, 'runs after the test above started the node')
    const made = await cliAsync(['models', 'make-tiny', '--home', home, '--seed', '4'])
    assert.equal(made.code, 0, made.stderr)
    const loaded = await cliAsync(['models', 'load', 'tiny-4', '--home', home])
    assert.equal(loaded.code, 0, loaded.stderr)
    assert.match(loaded.stdout, /loaded tiny-4 \(NANO/)
    assert.match(loaded.stderr, /loading tiny-4: 100%/, 'progress reaches 100%')
    const list = await cliAsync(['models', 'list', '--home', home, '--json'])
    const entries = JSON.parse(list.stdout) as Array<{ file: string, loaded: boolean, ok: boolean }>
    assert.deepEqual(entries.filter(e => e.loaded).map(e => e.file.split('/').pop()).sort(), ['tiny-3.gguf', 'tiny-4.gguf'])
    assert.equal(entries.find(e => e.file.endsWith('junk.gguf'))?.ok, false)
    const human = await cliAsync(['models', 'list', '--home', home])
    assert.match(human.stdout, /^\* tiny-4\.gguf {2}NANO {2}llama/m)
    assert.equal((await cliAsync(['models', 'unload', 'tiny-4', '--home', home])).code, 0)
    const after = JSON.parse((await cliAsync(['models', 'list', '--home', home, '--json'])).stdout) as Array<{ file: string, loaded: boolean }>
    assert.equal(after.find(e => e.file.endsWith('tiny-4.gguf'))?.loaded, false)
    const junk = await cliAsync(['models', 'load', 'junk', '--home', home])
    assert.equal(junk.code, 2)
    assert.match(junk.stderr, /junk\.gguf/)
  })
})
