/**
 * npm run bench:inference — the same tiny generated model and prompt, two ways in one run:
 *   node:   a real node (worker process) asked over its HTTP API, POST /v1/chat/completions
 *           with stream: true, measured at the HTTP client (node:http; BENCH_CLIENT=fetch for
 *           fetch). A chunk may carry several tokens (those that were ready together), so the
 *           tokens are the server's count: stream_options.include_usage, usage.completion_tokens;
 *   direct: node-llama-cpp called in this process (getLlama CPU, one thread as the worker uses
 *           for tiny models, LlamaChat.generateResponse with the same seed and sampling), tokens
 *           counted as the worker counts them (onToken).
 * Rounds alternate so drift hits both alike; rates are medians of ROUNDS, and the ratio is the
 * median of each round's node/direct ratio (a pair of runs a moment apart sees the same machine,
 * where the two medians can come from different moments). firstTokenMs is the node's:
 * from sending the request to the first content chunk.
 *
 * Context lines first; last line one JSON object:
 *   {"bench":"inference","tokensPerSec":…,"directTokensPerSec":…,"ratio":…,"firstTokenMs":…}
 * Targets: ratio >= 0.9, firstTokenMs <= 55.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { getLlama, LlamaChat, LlamaLogLevel, type ChatHistoryItem } from 'node-llama-cpp'
import { writeTinyLlama } from '../../native/gguf/tiny-llama.ts'
import { BizraNode } from '../../src/node/node.ts'
import { sseData } from '../../src/inference/openai-backend.ts'
import { swarmKeyFile, tempDir } from '../helpers/nodes.ts'
import { median } from './harness.ts'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15)
const MAX_TOKENS = Number(process.env.BENCH_TOKENS ?? 256)
const SEED = 11
const CLIENT = process.env.BENCH_CLIENT === 'fetch' ? 'fetch' : 'http'
const PROMPT = 'Describe the garden by the river in a few sentences.'

const home = tempDir('bz-bench-inf-')
mkdirSync(join(home, 'models'), { recursive: true })
const file = join(home, 'models', 'tiny-bench.gguf')
writeTinyLlama(file, { seed: 1 })

const node = await BizraNode.start({ home, logger: false, ipc: false, config: { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', swarmKey: swarmKeyFile(), models: ['tiny-bench'] } })
const token = readFileSync(join(home, 'api.token'), 'utf8').trim()

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn })
const model = await llama.loadModel({ modelPath: file })
const context = await model.createContext({ contextSize: 2048, threads: 1, sequences: 1 })
const sequence = context.getSequence()

interface Run { tokens: number, ms: number, firstTokenMs: number, chunks: number }

const REQUEST = JSON.stringify({ model: 'tiny-bench', messages: [{ role: 'user', content: PROMPT }], max_tokens: MAX_TOKENS, seed: SEED, temperature: 0.8, stream: true, stream_options: { include_usage: true } })
const [apiHost, apiPort] = [node.apiAddress!.slice(0, node.apiAddress!.lastIndexOf(':')), Number(node.apiAddress!.slice(node.apiAddress!.lastIndexOf(':') + 1))]
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })

/** POSTs the request and calls `onData` with each SSE `data:` payload; node:http, or fetch with BENCH_CLIENT=fetch. */
async function stream (onData: (data: string) => void): Promise<void> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  if (CLIENT === 'fetch') {
    const res = await fetch(`http://${node.apiAddress}/v1/chat/completions`, { method: 'POST', headers, body: REQUEST })
    if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`)
    for await (const data of sseData(res.body)) onData(data)
    return
  }
  await new Promise<void>((resolve, reject) => {
    const req = http.request({ host: apiHost, port: apiPort, path: '/v1/chat/completions', method: 'POST', agent, headers }, res => {
      if (res.statusCode !== 200) {
        res.resume()
        reject(new Error(`HTTP ${res.statusCode}`))
        return
      }
      res.setEncoding('utf8')
      let buffer = ''
      res.on('data', (text: string) => {
        buffer += text
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const event = buffer.slice(0, i)
          buffer = buffer.slice(i + 2)
          if (event.startsWith('data: ')) onData(event.slice(6))
        }
      })
      res.on('end', resolve)
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(REQUEST)
  })
}

async function viaNode (): Promise<Run> {
  const started = performance.now()
  let chunks = 0
  let tokens = -1
  let first = 0
  let ms = 0
  await stream(data => {
    if (data === '[DONE]') {
      ms = performance.now() - started
      return
    }
    const chunk = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string } }>, usage?: { completion_tokens?: number } | null }
    const content = chunk.choices?.[0]?.delta?.content
    if (typeof content === 'string' && content !== '') {
      if (chunks === 0) first = performance.now() - started
      chunks++
    }
    if (typeof chunk.usage?.completion_tokens === 'number') tokens = chunk.usage.completion_tokens
  })
  // a chunk may carry several tokens: the count is the server's, from the usage chunk
  if (tokens < 0 || ms === 0) throw new Error('the stream ended without a usage chunk and [DONE]')
  return { tokens, ms, firstTokenMs: first, chunks }
}

async function direct (): Promise<Run> {
  const started = performance.now()
  let tokens = 0
  let chunks = 0
  let first = 0
  const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false })
  try {
    const history: ChatHistoryItem[] = [{ type: 'user', text: PROMPT }, { type: 'model', response: [] }]
    await chat.generateResponse(history, {
      maxTokens: MAX_TOKENS,
      temperature: 0.8,
      seed: SEED,
      // tokens counted as the worker counts them (onToken), text chunks as they come
      onToken: t => { tokens += t.length },
      onTextChunk: () => {
        if (chunks === 0) first = performance.now() - started
        chunks++
      }
    })
  } finally {
    chat.dispose({ disposeSequence: false })
    await sequence.clearHistory() // timed, as the worker's clearing before each request is
  }
  return { tokens, ms: performance.now() - started, firstTokenMs: first, chunks }
}

await viaNode()
await direct()
const nodeRate: number[] = []
const directRate: number[] = []
const ratios: number[] = []
const firsts: number[] = []
let n!: Run
let d!: Run
for (let r = 0; r < ROUNDS; r++) {
  n = await viaNode()
  d = await direct()
  nodeRate.push(n.tokens / (n.ms / 1000))
  directRate.push(d.tokens / (d.ms / 1000))
  ratios.push(nodeRate.at(-1)! / directRate.at(-1)!)
  firsts.push(n.firstTokenMs)
}
await context.dispose()
await model.dispose()
await node.stop()

const tokensPerSec = Math.round(median(nodeRate))
const directTokensPerSec = Math.round(median(directRate))
const firstTokenMs = Math.round(median(firsts) * 10) / 10
console.log(`tiny model (${MAX_TOKENS} tokens asked; node generated ${n.tokens} in ${n.chunks} SSE chunks, direct ${d.tokens} in ${d.chunks} text chunks): node over HTTP ${tokensPerSec} tokens/s, first token ${firstTokenMs} ms; node-llama-cpp in process ${directTokensPerSec} tokens/s`)
console.log(JSON.stringify({ bench: 'inference', tokensPerSec, directTokensPerSec, ratio: Math.round(median(ratios) * 1000) / 1000, firstTokenMs }))
