/**
 * A tiny llama-architecture model with random weights (about 0.5 MB of F32), for tests and
 * demos that need a real GGUF file llama.cpp loads and generates with, without downloads.
 * The bytes are a pure function of the seed.
 */
import { writeFileSync } from 'node:fs'
import { GgufType, LlamaFileType, TokenType } from './format.ts'
import { mulberry32 } from '../../src/util/random.ts'
import { array, bool, encodeGguf, f32, str, u32, type F32Tensor, type GgufValue } from './writer.ts'

export const TINY_LLAMA_DIMS = {
  contextLength: 2048,
  embedding: 64,
  blocks: 2,
  feedForward: 176,
  heads: 4,
  kvHeads: 2,
  rmsEpsilon: 1e-5,
  ropeFreqBase: 10000
} as const

/** SentencePiece marks a word start with U+2581 (a space in the decoded text). */
const WORD = '\u2581'
const WORDS = ['the', 'a', 'of', 'and', 'to', 'in', 'is', 'it', 'node', 'peer', 'mesh', 'model', 'token',
  'seed', 'signal', 'proof', 'vote', 'pattern', 'agent', 'task', 'light', 'river', 'stone', 'cloud',
  'song', 'path', 'garden', 'star', 'quiet', 'bright', 'small', 'open', 'runs', 'finds', 'holds', 'keeps']

export const BOS_ID = 1
export const EOS_ID = 2
export const UNK_ID = 0
/** ids 3..258 are the byte tokens <0x00>..<0xFF> */
const FIRST_BYTE_ID = 3
const FIRST_PLAIN_ID = FIRST_BYTE_ID + 256

export interface TinyVocab {
  tokens: string[]
  scores: number[]
  types: number[]
}

/** `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then plain SentencePiece pieces. */
export function tinyVocab (): TinyVocab {
  const tokens = ['<unk>', '<s>', '</s>']
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
    types.push(TokenType.BYTE)
  }
  const plain = [WORD, ...'abcdefghijklmnopqrstuvwxyz', ...'0123456789', '.', ',', '!', '?', "'", '-',
    ...WORDS.map(w => WORD + w)]
  for (const p of plain) {
    tokens.push(p)
    types.push(TokenType.NORMAL)
  }
  // SentencePiece scores are log-probabilities: the tokenizer prefers merges into higher scores
  const scores = tokens.map((_, id) => id < FIRST_PLAIN_ID ? 0 : -(id - FIRST_PLAIN_ID))
  return { tokens, scores, types }
}

export interface TinyLlamaOptions {
  seed?: number
  /** `general.name`; default `tiny-llama-<seed>` */
  name?: string
}

/** Encodes the tiny model for `seed` (a uint32; default 0). */
export function makeTinyLlama (options: TinyLlamaOptions = {}): Buffer {
  const seed = options.seed ?? 0
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be an integer from 0 to 4294967295, got ${seed}`)
  const d = TINY_LLAMA_DIMS
  const vocab = tinyVocab()
  const headDim = d.embedding / d.heads
  const metadata: Array<readonly [string, GgufValue]> = [
    ['general.architecture', str('llama')],
    ['general.name', str(options.name ?? `tiny-llama-${seed}`)],
    ['general.file_type', u32(LlamaFileType.ALL_F32)],
    ['general.alignment', u32(32)],
    ['llama.vocab_size', u32(vocab.tokens.length)],
    ['llama.context_length', u32(d.contextLength)],
    ['llama.embedding_length', u32(d.embedding)],
    ['llama.block_count', u32(d.blocks)],
    ['llama.feed_forward_length', u32(d.feedForward)],
    ['llama.attention.head_count', u32(d.heads)],
    ['llama.attention.head_count_kv', u32(d.kvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', f32(d.rmsEpsilon)],
    ['llama.rope.dimension_count', u32(headDim)],
    ['llama.rope.freq_base', f32(d.ropeFreqBase)],
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', array(GgufType.STRING, vocab.tokens)],
    ['tokenizer.ggml.scores', array(GgufType.FLOAT32, vocab.scores)],
    ['tokenizer.ggml.token_type', array(GgufType.INT32, vocab.types)],
    ['tokenizer.ggml.bos_token_id', u32(BOS_ID)],
    ['tokenizer.ggml.eos_token_id', u32(EOS_ID)],
    ['tokenizer.ggml.unknown_token_id', u32(UNK_ID)],
    ['tokenizer.ggml.add_bos_token', bool(true)],
    ['tokenizer.ggml.add_eos_token', bool(false)]
  ]
  return encodeGguf({ metadata, tensors: tinyTensors(seed, vocab.tokens.length) })
}

/** Writes the tiny model for `options.seed` to `file` (overwriting it). */
export function writeTinyLlama (file: string, options: TinyLlamaOptions = {}): Buffer {
  const bytes = makeTinyLlama(options)
  writeFileSync(file, bytes)
  return bytes
}

/** The llama.cpp tensor set of a llama model, filled from one PRNG stream in this order. */
function tinyTensors (seed: number, nVocab: number): F32Tensor[] {
  const d = TINY_LLAMA_DIMS
  const headDim = d.embedding / d.heads
  const kvDim = headDim * d.kvHeads
  const random = mulberry32(seed)
  const uniform = (name: string, dims: number[], scale: number): F32Tensor => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1))
    for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * scale
    return { name, dims, data }
  }
  const ones = (name: string, n: number): F32Tensor => ({ name, dims: [n], data: new Float32Array(n).fill(1) })
  const proj = (fanIn: number): number => 1 / Math.sqrt(fanIn)

  const tensors = [uniform('token_embd.weight', [d.embedding, nVocab], 1)]
  for (let b = 0; b < d.blocks; b++) {
    tensors.push(
      ones(`blk.${b}.attn_norm.weight`, d.embedding),
      uniform(`blk.${b}.attn_q.weight`, [d.embedding, d.embedding], proj(d.embedding)),
      uniform(`blk.${b}.attn_k.weight`, [d.embedding, kvDim], proj(d.embedding)),
      uniform(`blk.${b}.attn_v.weight`, [d.embedding, kvDim], proj(d.embedding)),
      uniform(`blk.${b}.attn_output.weight`, [d.embedding, d.embedding], proj(d.embedding)),
      ones(`blk.${b}.ffn_norm.weight`, d.embedding),
      uniform(`blk.${b}.ffn_gate.weight`, [d.embedding, d.feedForward], proj(d.embedding)),
      uniform(`blk.${b}.ffn_up.weight`, [d.embedding, d.feedForward], proj(d.embedding)),
      uniform(`blk.${b}.ffn_down.weight`, [d.feedForward, d.embedding], proj(d.feedForward))
    )
  }
  tensors.push(ones('output_norm.weight', d.embedding))
  const output = uniform('output.weight', [d.embedding, nVocab], 1)
  // Zero logits for control and byte tokens while the others spread over about ±4.6: sampling
  // then (almost) never ends on </s> or emits stray bytes, so a generation runs to maxTokens
  // and decodes to readable words.
  output.data.fill(0, 0, FIRST_PLAIN_ID * d.embedding)
  tensors.push(output)
  return tensors
}
