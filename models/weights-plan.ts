import type { LlamaConfig } from './config.ts';

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
