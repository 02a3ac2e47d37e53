/**
 * Writes scripts/bench/synthetic-checkpoint.ts's seeded random weights to a folder as a real
 * Hugging Face checkpoint (config.json + one bf16 model.safetensors, as FineMedLM-o1 ships), so a
 * benchmark's first load pays for real file reads and bf16 decoding. Streams row blocks to disk:
 * a 2.5 GB file never sits in memory whole. Node only.
 */
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syntheticCheckpoint } from './synthetic-checkpoint.ts';
import { expectedTensors, type LlamaConfig } from '../../models/config.ts';

/** Values per write: bounds the memory of the writer (64 MiB of f32 in, 32 MiB of bf16 out). */
const BLOCK_VALUES = 16 * 2 ** 20;

/** config.json for a LlamaConfig (the fields parseLlamaConfig reads). */
export function hfConfig(c: LlamaConfig): Record<string, unknown> {
  const rs = c.ropeScaling;
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_act: 'silu', attention_bias: false, mlp_bias: false,
    vocab_size: c.vocabSize, hidden_size: c.hiddenSize, intermediate_size: c.intermediateSize, num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads, num_key_value_heads: c.numKvHeads, head_dim: c.headDim,
    max_position_embeddings: c.maxPositionEmbeddings, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta,
    ...(rs && { rope_scaling: { rope_type: 'llama3', factor: rs.factor, low_freq_factor: rs.lowFreqFactor, high_freq_factor: rs.highFreqFactor, original_max_position_embeddings: rs.originalMaxPositionEmbeddings } }),
    tie_word_embeddings: c.tieWordEmbeddings, bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenIds, torch_dtype: 'bfloat16',
  };
}

/** f32 -> bf16 bits, round to nearest even (finite values only: the generator makes no NaN). */
function toBf16(src: Float32Array, dst: Uint16Array): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < u.length; i++) dst[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
}

/**
 * Writes `dir/config.json` and `dir/model.safetensors` (bf16) of syntheticCheckpoint(config, seed);
 * returns the bytes of the safetensors file.
 * @example await writeSyntheticModel('/tmp/hub/bench/finemed-1layer', finemedLayerConfig(1, 128256)); // ~2.5 GB
 */
export async function writeSyntheticModel(dir: string, config: LlamaConfig, seed = 1): Promise<number> {
  const ckpt = syntheticCheckpoint(config, seed);
  const shapes = [...expectedTensors(config)];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const text = JSON.stringify(header); // ASCII: its length is its byte length
  const json = new TextEncoder().encode(text.padEnd(Math.ceil(text.length / 8) * 8, ' ')); // 8-aligned data, as the spec recommends
  const lead = new Uint8Array(8 + json.byteLength);
  new DataView(lead.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  lead.set(json, 8);

  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(hfConfig(config), null, 2));
  const fh = await open(join(dir, 'model.safetensors'), 'w');
  try {
    await fh.write(lead);
    const out = new Uint16Array(BLOCK_VALUES);
    for (const [name, shape] of shapes) {
      const rows = shape.length === 1 ? 1 : shape[0];
      const cols = shape.length === 1 ? shape[0] : shape[1];
      const step = Math.max(1, Math.floor(BLOCK_VALUES / cols));
      for (let r = 0; r < rows; r += step) {
        const block = await ckpt.readRows(name, r, Math.min(step, rows - r));
        const dst = out.subarray(0, block.length);
        toBf16(block, dst);
        await fh.write(new Uint8Array(dst.buffer, 0, dst.byteLength));
      }
    }
  } finally {
    await fh.close();
  }
  return lead.byteLength + offset;
}
