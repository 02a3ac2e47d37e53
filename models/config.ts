import { ConfigError } from './errors.ts';

/** llama3 rope scaling (Llama 3.1): frequencies below the low band are divided by `factor`. */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** The one typed config object of the engine (parsed from HF `config.json` of LlamaForCausalLM). */
export interface LlamaConfig {
  hiddenSize: number; // C
  intermediateSize: number; // F (SwiGLU width)
  numLayers: number; // L
  numHeads: number; // H (query heads)
  numKvHeads: number; // KV heads (GQA: H % KV == 0)
  headDim: number; // D
  vocabSize: number; // V
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM'];

function num(raw: Record<string, unknown>, field: string, opts: { integer?: boolean; fallback?: number } = {}): number {
  const v = raw[field];
  if (v === undefined || v === null) {
    if (opts.fallback !== undefined) return opts.fallback;
    throw new ConfigError(`config.json: required field "${field}" is missing.`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || (opts.integer && (!Number.isInteger(v) || v <= 0))) {
    throw new ConfigError(`config.json: field "${field}" must be a ${opts.integer ? 'positive integer' : 'number'}, got ${JSON.stringify(v)}.`);
  }
  return v;
}

function idList(v: unknown, field: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new ConfigError(`config.json: field "${field}" must be a token id or a list of ids, got ${JSON.stringify(v)}.`);
    }
  }
  return list as number[];
}

function parseRopeScaling(v: unknown): Llama3RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object') throw new ConfigError(`config.json: field "rope_scaling" must be an object, got ${JSON.stringify(v)}.`);
  const rs = v as Record<string, unknown>;
  const type = rs.rope_type ?? rs.type;
  if (type === 'default') return null;
  if (type !== 'llama3') {
    throw new ConfigError(`config.json: field "rope_scaling.rope_type" is ${JSON.stringify(type)}; only "llama3" (or none) is supported.`);
  }
  return {
    type: 'llama3',
    factor: num(rs, 'factor'),
    lowFreqFactor: num(rs, 'low_freq_factor'),
    highFreqFactor: num(rs, 'high_freq_factor'),
    originalMaxPositionEmbeddings: num(rs, 'original_max_position_embeddings', { integer: true }),
  };
}

/**
 * Parses and validates a Hugging Face `config.json` of a Llama model.
 * @example
 *   const config = parseLlamaConfig(JSON.parse(await source.readText('config.json')));
 *   config.numLayers; // 32 for Llama-3.1-8B
 */
export function parseLlamaConfig(json: unknown): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError('config.json must hold a JSON object.');
  }
  const raw = json as Record<string, unknown>;
  const archs = raw.architectures;
  if (archs !== undefined) {
    if (!Array.isArray(archs) || !archs.some((a) => SUPPORTED_ARCHITECTURES.includes(a as string))) {
      throw new ConfigError(`config.json: field "architectures" is ${JSON.stringify(archs)}; only ${SUPPORTED_ARCHITECTURES.join(', ')} is supported.`);
    }
  } else if (raw.model_type !== 'llama') {
    throw new ConfigError(`config.json: neither "architectures" nor "model_type" says this is a Llama model (model_type=${JSON.stringify(raw.model_type)}).`);
  }
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'silu') {
    throw new ConfigError(`config.json: field "hidden_act" is ${JSON.stringify(raw.hidden_act)}; only "silu" is supported.`);
  }
  for (const f of ['attention_bias', 'mlp_bias'] as const) {
    if (raw[f] === true) throw new ConfigError(`config.json: field "${f}" is true; biases are not supported.`);
  }
  const hiddenSize = num(raw, 'hidden_size', { integer: true });
  const numHeads = num(raw, 'num_attention_heads', { integer: true });
  const numKvHeads = num(raw, 'num_key_value_heads', { integer: true, fallback: numHeads });
  const headDim = num(raw, 'head_dim', { integer: true, fallback: hiddenSize / numHeads });
  if (!Number.isInteger(headDim)) throw new ConfigError('config.json: hidden_size is not divisible by num_attention_heads and no head_dim is given.');
  if (headDim % 2 !== 0) throw new ConfigError(`config.json: head_dim ${headDim} must be even for RoPE.`);
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(`config.json: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads}).`);
  }
  let eosTokenIds = idList(raw.eos_token_id, 'eos_token_id');
  const bos = idList(raw.bos_token_id, 'bos_token_id');
  return {
    hiddenSize,
    intermediateSize: num(raw, 'intermediate_size', { integer: true }),
    numLayers: num(raw, 'num_hidden_layers', { integer: true }),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: num(raw, 'vocab_size', { integer: true }),
    rmsNormEps: num(raw, 'rms_norm_eps', { fallback: 1e-6 }),
    ropeTheta: num(raw, 'rope_theta', { fallback: 10000 }),
    ropeScaling: parseRopeScaling(raw.rope_scaling),
    maxPositionEmbeddings: num(raw, 'max_position_embeddings', { integer: true, fallback: 2048 }),
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    bosTokenId: bos.length ? bos[0] : null,
    eosTokenIds: (eosTokenIds = [...new Set(eosTokenIds)]),
  };
}

/** Tensor names and shapes ([rows, cols] as in HF: [out, in]) a checkpoint must hold for `config`. */
export function expectedTensors(config: LlamaConfig): Map<string, number[]> {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = config;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [V, C]);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(p + 'input_layernorm.weight', [C]);
    m.set(p + 'self_attn.q_proj.weight', [H * D, C]);
    m.set(p + 'self_attn.k_proj.weight', [KV * D, C]);
    m.set(p + 'self_attn.v_proj.weight', [KV * D, C]);
    m.set(p + 'self_attn.o_proj.weight', [C, H * D]);
    m.set(p + 'post_attention_layernorm.weight', [C]);
    m.set(p + 'mlp.gate_proj.weight', [F, C]);
    m.set(p + 'mlp.up_proj.weight', [F, C]);
    m.set(p + 'mlp.down_proj.weight', [C, F]);
  }
  m.set('model.norm.weight', [C]);
  if (!config.tieWordEmbeddings) m.set('lm_head.weight', [V, C]);
  return m;
}

/** The seven LoRA-able projections of a layer, in HF naming. */
export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Projection = (typeof PROJECTIONS)[number];

export function projectionWeightName(layer: number, p: Projection): string {
  const block = p === 'gate_proj' || p === 'up_proj' || p === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${block}.${p}.weight`;
}
