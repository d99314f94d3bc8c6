/**
 * npm run bench:inference — the same tiny generated model and prompt, two ways in one run:
 *   node:   a real node (worker process) asked over its HTTP API, POST /v1/chat/completions
 *           with stream: true, measured at the HTTP client (tokens = content chunks);
 *   direct: node-llama-cpp called in this process (getLlama CPU, one thread as the worker uses
 *           for tiny models, LlamaChat.generateResponse with the same seed and sampling).
 * Rounds alternate so drift hits both alike; medians of ROUNDS. firstTokenMs is the node's:
 * from sending the request to the first content chunk.
 *
 * Context lines first; last line one JSON object:
 *   {"bench":"inference","tokensPerSec":…,"directTokensPerSec":…,"ratio":…,"firstTokenMs":…}
 * Targets: ratio >= 0.9, firstTokenMs <= 55.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { getLlama, LlamaChat, LlamaLogLevel, type ChatHistoryItem } from 'node-llama-cpp'
import { writeTinyLlama } from '../../native/gguf/tiny-llama.ts'
import { BizraNode } from '../../src/node/node.ts'
import { sseData } from '../../src/inference/openai-backend.ts'
import { swarmKeyFile, tempDir } from '../helpers/nodes.ts'
import { median } from './harness.ts'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const MAX_TOKENS = Number(process.env.BENCH_TOKENS ?? 256)
const SEED = 11
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

interface Run { tokens: number, ms: number, firstTokenMs: number }

async function viaNode (): Promise<Run> {
  const started = performance.now()
  const res = await fetch(`http://${node.apiAddress}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny-bench', messages: [{ role: 'user', content: PROMPT }], max_tokens: MAX_TOKENS, seed: SEED, temperature: 0.8, stream: true })
  })
  if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`)
  let tokens = 0
  let first = 0
  for await (const data of sseData(res.body)) {
    if (data === '[DONE]') break
    const content = (JSON.parse(data) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content
    if (typeof content === 'string' && content !== '') {
      if (tokens === 0) first = performance.now() - started
      tokens++
    }
  }
  return { tokens, ms: performance.now() - started, firstTokenMs: first }
}

async function direct (): Promise<Run> {
  const started = performance.now()
  let tokens = 0
  let first = 0
  const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false })
  try {
    const history: ChatHistoryItem[] = [{ type: 'user', text: PROMPT }, { type: 'model', response: [] }]
    await chat.generateResponse(history, {
      maxTokens: MAX_TOKENS,
      temperature: 0.8,
      seed: SEED,
      onTextChunk: () => {
        if (tokens === 0) first = performance.now() - started
        tokens++
      }
    })
  } finally {
    chat.dispose({ disposeSequence: false })
    await sequence.clearHistory()
  }
  return { tokens, ms: performance.now() - started, firstTokenMs: first }
}

await viaNode()
await direct()
const nodeRate: number[] = []
const directRate: number[] = []
const firsts: number[] = []
let nodeTokens = 0
let directTokens = 0
for (let r = 0; r < ROUNDS; r++) {
  const n = await viaNode()
  const d = await direct()
  nodeRate.push(n.tokens / (n.ms / 1000))
  directRate.push(d.tokens / (d.ms / 1000))
  firsts.push(n.firstTokenMs)
  nodeTokens = n.tokens
  directTokens = d.tokens
}
await context.dispose()
await model.dispose()
await node.stop()

const tokensPerSec = Math.round(median(nodeRate))
const directTokensPerSec = Math.round(median(directRate))
const firstTokenMs = Math.round(median(firsts) * 10) / 10
console.log(`tiny model (${MAX_TOKENS} tokens asked; node streamed ${nodeTokens}, direct ${directTokens}): node over HTTP ${tokensPerSec} tokens/s, first token ${firstTokenMs} ms; node-llama-cpp in process ${directTokensPerSec} tokens/s`)
console.log(JSON.stringify({ bench: 'inference', tokensPerSec, directTokensPerSec, ratio: Math.round((tokensPerSec / directTokensPerSec) * 1000) / 1000, firstTokenMs }))
