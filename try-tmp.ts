import { writeTinyLlama } from '/work/main/native/gguf/tiny-llama.ts'
import { getLlama, LlamaCompletion, readGgufFileInfo } from 'node-llama-cpp'
const f = '/tmp/tiny-1.gguf'
const b = writeTinyLlama(f, { seed: 1 })
console.log('bytes', b.length)
const info = await readGgufFileInfo(f, { logWarnings: true })
console.log(info.version, info.tensorCount, info.metadata.general, Object.keys(info.metadata.llama))
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'warn' as any })
let t = performance.now()
const model = await llama.loadModel({ modelPath: f })
console.log('load ms', performance.now() - t, model.trainContextSize, model.size)
const ctx = await model.createContext({ contextSize: 512 })
const seq = ctx.getSequence()
const c = new LlamaCompletion({ contextSequence: seq })
for (const opts of [{}, {}, { temperature: 0.8, seed: 7 }, { temperature: 0.8, seed: 7 }, { temperature: 0.8, seed: 8 }]) {
  await seq.clearHistory()
  t = performance.now()
  let n = 0
  const r = await c.generateCompletionWithMeta('hello mesh', { maxTokens: 200, onToken: (x) => { n += x.length }, ...opts })
  const ms = performance.now() - t
  console.log(JSON.stringify(r.response.slice(0, 80)), r.metadata.stopReason, n, (n / ms * 1000).toFixed(0), 'tok/s')
}
