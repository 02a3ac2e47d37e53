/**
 * The engine tensors a model is made of, in the form the engine keeps them: with weights 'q4' the
 * projections and the embeddings are 4-bit matrices, the lm_head (and a tied embedding, the same
 * matrix) in its own format (default q8: resolveLmHead) and the norms stay f32; with 'f32'
 * everything is f32 unless an lm_head format is asked for. Byte counts are exact, so an entry's size is known before the
 * first byte is downloaded (quota check) and every cached file's size can be checked.
 */
import type { LmHeadFormat, WeightFormat } from '../api.ts';
import type { LlamaConfig } from '../config.ts';
import { q4Bytes } from '../quant/q4.ts';
import { q8Bytes } from '../quant/q8.ts';
import { embedFormat, layerWeightNames, lmHeadName, resolveLmHead } from '../weights-plan.ts';
import type { TensorKind } from './format.ts';

export interface PlannedTensor {
  name: string;
  shape: number[];
  kind: TensorKind;
  bytes: number;
}

/** Bytes of one tensor in the engine's layout. */
export function engineBytes(kind: TensorKind, shape: number[]): number {
  if (kind === 'q4') return q4Bytes(shape[0], shape[1]);
  return kind === 'q8' ? q8Bytes(shape[0], shape[1]) : shape.reduce((a, b) => a * b, 1) * 4;
}

/**
 * @example
 *   const plan = engineTensorPlan(config, 'q4');
 *   const total = plan.reduce((n, t) => n + t.bytes, 0); // ~4.5 GB for Llama-3.1-8B
 */
export function engineTensorPlan(config: LlamaConfig, weights: WeightFormat, lmHead?: LmHeadFormat): PlannedTensor[] {
  const head = resolveLmHead(weights, lmHead);
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = config;
  const out: PlannedTensor[] = [];
  const vec = (name: string, n: number) => out.push({ name, shape: [n], kind: 'f32', bytes: n * 4 });
  const mat = (name: string, N: number, K: number, kind: TensorKind = weights) => out.push({ name, shape: [N, K], kind, bytes: engineBytes(kind, [N, K]) });
  for (let l = 0; l < config.numLayers; l++) {
    const n = layerWeightNames(l);
    vec(n.inputNorm, C);
    mat(n.q, H * D, C); mat(n.k, KV * D, C); mat(n.v, KV * D, C); mat(n.o, C, H * D);
    vec(n.postNorm, C);
    mat(n.gate, F, C); mat(n.up, F, C); mat(n.down, C, F);
  }
  mat('model.embed_tokens.weight', V, C, embedFormat(config, weights, head));
  if (!config.tieWordEmbeddings) mat(lmHeadName(config), V, C, head);
  vec('model.norm.weight', C);
  return out;
}
