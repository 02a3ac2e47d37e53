import type { LmHeadFormat, WeightFormat } from './api.ts';
import type { LlamaConfig } from './config.ts';
import { InvalidInputError } from './errors.ts';

/** Per-layer weight names, HF naming. */
export interface LayerWeightNames {
  inputNorm: string;
  q: string; k: string; v: string; o: string;
  postNorm: string;
  gate: string; up: string; down: string;
}

export function layerWeightNames(l: number): LayerWeightNames {
  const p = `model.layers.${l}.`;
  return {
    inputNorm: p + 'input_layernorm.weight',
    q: p + 'self_attn.q_proj.weight',
    k: p + 'self_attn.k_proj.weight',
    v: p + 'self_attn.v_proj.weight',
    o: p + 'self_attn.o_proj.weight',
    postNorm: p + 'post_attention_layernorm.weight',
    gate: p + 'mlp.gate_proj.weight',
    up: p + 'mlp.up_proj.weight',
    down: p + 'mlp.down_proj.weight',
  };
}

/** The lm_head tensor: `lm_head.weight`, or the embeddings when tied. */
export function lmHeadName(config: LlamaConfig): string {
  return config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

/** How the engine stores one weight matrix: f32, 4-bit (models/quant/q4.ts) or 8-bit (models/quant/q8.ts). */
export type MatrixFormat = 'f32' | 'q4' | 'q8';

/**
 * The lm_head format with 4-bit weights when the caller names none. 8-bit: over the golden prompts
 * of stories260K and the tiny Llama-3.1 model it cuts the KL to f32 that a 4-bit head adds, for
 * 4 more bits per weight of one matrix (scripts/bench/lm-head-precision.ts; figures in
 * tests/models/lm-head-precision.test.ts).
 */
export const DEFAULT_Q4_LM_HEAD: LmHeadFormat = 'q8';

/**
 * The lm_head's format for a load: as asked, else f32 with f32 weights and DEFAULT_Q4_LM_HEAD with
 * 4-bit ones. InvalidInputError for anything but 'q4', 'q8' or 'f32'.
 * @example resolveLmHead('q4'); // 'q8'
 * @example resolveLmHead('q4', 'q4'); // 'q4' (the whole model 4-bit)
 */
export function resolveLmHead(weights: WeightFormat, lmHead?: LmHeadFormat): LmHeadFormat {
  if (lmHead === undefined) return weights === 'f32' ? 'f32' : DEFAULT_Q4_LM_HEAD;
  if (lmHead !== 'q4' && lmHead !== 'q8' && lmHead !== 'f32') throw new InvalidInputError(`lmHead must be 'q4', 'q8' or 'f32', got ${JSON.stringify(lmHead)}.`);
  return lmHead;
}

/**
 * The embedding's format: a tied embedding is the lm_head matrix itself, held once in the head's
 * format (one buffer serves the lookup and the head); an untied one is a body weight.
 * @example embedFormat(stories260K, 'q4', 'q8'); // 'q8' (tied)
 */
export function embedFormat(config: LlamaConfig, weights: WeightFormat, lmHead: LmHeadFormat): MatrixFormat {
  return config.tieWordEmbeddings ? lmHead : weights;
}
