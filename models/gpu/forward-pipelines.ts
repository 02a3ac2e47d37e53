/**
 * The WGSL sources a loaded model's decode step compiles (GpuLlama.buildSteps, LayerEncoder), for
 * compiling them all at once at the start of a load, while the weights download and upload,
 * instead of one after another once they are in: the pipeline cache is keyed by source, so the
 * steps built later find them compiled (or compiling). A source listed here and not used costs a
 * compile, one used and not listed a later compile; neither changes what runs.
 */
import type { LlamaConfig } from '../config.ts';
import type { MatrixFormat } from '../weights-plan.ts';
import { argmaxWgsl } from './wgsl/argmax.ts';
import type { ShaderOptions } from './wgsl/common.ts';
import { decodeAttentionWgsl } from './wgsl/decode-attention.ts';
import { embedWgsl, rmsnormWgsl } from './wgsl/elementwise.ts';
import { matvecLanes, matvecSwigluWgsl, matvecWgsl } from './wgsl/matmul.ts';
import { ropeCacheWgsl } from './wgsl/rope-cache.ts';

/**
 * @example for (const { label, code } of forwardPipelineSources(shader, { layers: 'q4', embed: 'q8', lmHead: 'q8' }, config)) void cache.get(label, code);
 */
export function forwardPipelineSources(s: ShaderOptions, f: { layers: MatrixFormat; embed: MatrixFormat; lmHead: MatrixFormat }, c: LlamaConfig): { label: string; code: string }[] {
  const C = c.hiddenSize, lanesC = matvecLanes(C);
  const out = [
    { label: 'rmsnorm', code: rmsnormWgsl(s) }, // the final norm of the last row
    { label: 'decode attention', code: decodeAttentionWgsl({ ...s, D: c.headDim }) },
    { label: 'rope + kv cache', code: ropeCacheWgsl({ ...s, copyV: true }) },
    { label: `embed ${f.embed}`, code: embedWgsl({ ...s, weights: f.embed }) },
    { label: 'argmax', code: argmaxWgsl() },
    { label: `matvec ${f.layers} gate+up swiglu normed`, code: matvecSwigluWgsl({ ...s, weights: f.layers, lanes: lanesC, norm: true }) },
    { label: `matvec ${f.layers} qkv normed`, code: matvecWgsl({ ...s, weights: f.layers, out: 'T', norm: true, qkv: true, lanes: lanesC }) },
  ];
  // q, k, v, gate, up read C; o reads H * D and adds the residual, down reads F and adds it.
  const vec = (K: number, residual: boolean) => ({ label: `matvec ${f.layers}${residual ? ' + residual' : ''}`, code: matvecWgsl({ ...s, weights: f.layers, out: 'T', residual, lanes: matvecLanes(K) }) });
  // (The plain matvec, vec(C, false), runs only with LoRA on q, k, v, or where q, k and v are not
  // fused (GpuLayer.qkv null: they would not fit one binding): compiled when that is built.)
  out.push(vec(c.numHeads * c.headDim, true), vec(c.intermediateSize, true));
  // The prefill's kernels (tiled matmul, residual add, separate norms and SwiGLU, three-pass
  // attention) are not here: they compile on first need (deferred-step.ts) or in warmUp.
  const head = { ...s, weights: f.lmHead, out: 'f32', lanes: lanesC } as const;
  out.push({ label: `matvec ${f.lmHead}`, code: matvecWgsl(head) });
  return out;
}
