/**
 * Writes small seeded random Llama checkpoints (HF layout) so tests run on a fresh clone without
 * ../shared. Same options -> same bytes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { seededRandom as mulberry32 } from '../../models/random.ts';
import { expectedTensors, parseLlamaConfig } from '../../models/config.ts';
import { bf16BitsToF32, f32ToBf16Bits } from '../../models/safetensors/dtype.ts';
import { encodeSafetensors, type TensorToWrite } from '../../models/safetensors/writer.ts';

/** mulberry32: the project's one seeded PRNG (models/random.ts), uniform in [0, 1). */
export { seededRandom as mulberry32 } from '../../models/random.ts';

/** FNV-1a: per-tensor seeds, so a tensor's values do not depend on which other tensors exist. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface RandomLlamaOptions {
  seed: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim?: number; // default hiddenSize / numHeads
  vocabSize: number;
  tie?: boolean; // tie_word_embeddings (default false)
  ropeScaling?: boolean; // Llama 3.1 llama3 rope scaling + rope_theta 500000 (default false)
  dtype?: 'F32' | 'BF16'; // default F32
  sharded?: boolean; // two shards + model.safetensors.index.json (default false)
}

export interface RandomLlama {
  /** config.json as written. */
  config: Record<string, unknown>;
  /** Every tensor as stored (already rounded to bf16 when dtype is BF16), in expectedTensors order. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** Names of the files written, relative to the folder. */
  files: string[];
}

/** Values: embeddings U(-1, 1), norms 1 + 0.1 U(-1, 1), projections U(-1, 1) / sqrt(fan_in). */
function randomTensor(name: string, shape: number[], seed: number): Float32Array {
  const rand = mulberry32((seed ^ hash32(name)) >>> 0);
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(n);
  const scale = name.includes('embed_tokens') ? 1 : shape.length === 1 ? 0.1 : 1 / Math.sqrt(shape[1]);
  const bias = shape.length === 1 ? 1 : 0;
  for (let i = 0; i < n; i++) out[i] = bias + scale * (2 * rand() - 1);
  return out;
}

/**
 * Writes config.json and model.safetensors (or two shards + index) of a random Llama into `dir`.
 * @example
 *   const dir = await mkdtemp(join(tmpdir(), 'llama-'));
 *   const { tensors } = await writeRandomLlama(dir, {
 *     seed: 1, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 100,
 *   });
 */
export async function writeRandomLlama(dir: string, opts: RandomLlamaOptions): Promise<RandomLlama> {
  const dtype = opts.dtype ?? 'F32';
  const config: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: opts.vocabSize,
    hidden_size: opts.hiddenSize,
    intermediate_size: opts.intermediateSize,
    num_hidden_layers: opts.numLayers,
    num_attention_heads: opts.numHeads,
    num_key_value_heads: opts.numKvHeads,
    head_dim: opts.headDim ?? opts.hiddenSize / opts.numHeads,
    max_position_embeddings: opts.ropeScaling ? 131072 : 2048,
    rms_norm_eps: 1e-5,
    rope_theta: opts.ropeScaling ? 500000 : 10000,
    ...(opts.ropeScaling && {
      rope_scaling: { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    }),
    hidden_act: 'silu',
    tie_word_embeddings: opts.tie ?? false,
    bos_token_id: 1,
    eos_token_id: 2,
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: dtype === 'BF16' ? 'bfloat16' : 'float32',
  };
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const toWrite: TensorToWrite[] = [];
  for (const [name, shape] of expectedTensors(parseLlamaConfig(config))) {
    const data = randomTensor(name, shape, opts.seed);
    // Report what a reader will see: bf16-rounded values.
    const stored = dtype === 'BF16' ? data.map((x) => bf16BitsToF32(f32ToBf16Bits(x))) : data;
    tensors.set(name, { shape, data: stored });
    toWrite.push({ name, dtype, shape, data });
  }

  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const meta = { format: 'pt' };
  if (!opts.sharded) {
    await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(toWrite, meta));
    return { config, tensors, files: ['config.json', 'model.safetensors'] };
  }
  // Shard 1: embeddings + first half of the layers; shard 2: the rest (as HF splits by size).
  const half = Math.ceil(opts.numLayers / 2);
  const layerOf = (n: string) => Number(/^model\.layers\.(\d+)\./.exec(n)?.[1] ?? -1);
  const first = toWrite.filter((t) => t.name.includes('embed_tokens') || (layerOf(t.name) >= 0 && layerOf(t.name) < half));
  const second = toWrite.filter((t) => !first.includes(t));
  const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, part] of [first, second].entries()) {
    await writeFile(join(dir, names[i]), encodeSafetensors(part, meta));
    for (const t of part) {
      weightMap[t.name] = names[i];
      totalSize += t.data.length * (dtype === 'BF16' ? 2 : 4);
    }
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
  return { config, tensors, files: ['config.json', ...names, 'model.safetensors.index.json'] };
}
