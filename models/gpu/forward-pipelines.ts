/**
 * The WGSL sources a loaded model's forward pass compiles (GpuLlama.buildSteps, LayerEncoder), for
 * compiling them all at once at the start of a load, while the weights download and upload,
 * instead of one after another once they are in: the pipeline cache is keyed by source, so the
 * steps built later find them compiled (or compiling). A source listed here and not used costs a
 * compile, one used and not listed a later compile; neither changes what runs.
 */
import type { MatrixFormat } from '../weights-plan.ts';
import { argmaxWgsl } from './wgsl/argmax.ts';
import { attnScoresWgsl, attnValuesWgsl, softmaxWgsl, toCacheWgsl } from './wgsl/attention.ts';
import type { ShaderOptions } from './wgsl/common.ts';
import { embedWgsl, rmsnormWgsl, swigluWgsl } from './wgsl/elementwise.ts';
import { matmulTiledWgsl, matvecSwigluWgsl, matvecWgsl } from './wgsl/matmul.ts';
import { ropeCacheWgsl } from './wgsl/rope-cache.ts';

/**
 * @example for (const { label, code } of forwardPipelineSources(shader, { layers: 'q4', embed: 'q8', lmHead: 'q8' })) void cache.get(label, code);
 */
export function forwardPipelineSources(s: ShaderOptions, f: { layers: MatrixFormat; embed: MatrixFormat; lmHead: MatrixFormat }): { label: string; code: string }[] {
  const out = [
    { label: 'rmsnorm', code: rmsnormWgsl(s) },
    { label: 'swiglu', code: swigluWgsl(s) },
    { label: 'to cache', code: toCacheWgsl(s) },
    { label: 'attn scores', code: attnScoresWgsl(s) },
    { label: 'softmax', code: softmaxWgsl(s) },
    { label: 'attn values', code: attnValuesWgsl(s) },
    { label: 'rope + kv cache', code: ropeCacheWgsl({ ...s, copyV: true }) },
    { label: `embed ${f.embed}`, code: embedWgsl({ ...s, weights: f.embed }) },
    { label: 'argmax', code: argmaxWgsl() },
    { label: `matvec ${f.layers} gate+up swiglu`, code: matvecSwigluWgsl({ ...s, weights: f.layers }) },
  ];
  for (const residual of [false, true]) {
    const o = { ...s, weights: f.layers, out: 'T', residual } as const;
    const plus = residual ? ' + residual' : '';
    out.push({ label: `matmul ${f.layers}${plus}`, code: matmulTiledWgsl(o) }, { label: `matvec ${f.layers}${plus}`, code: matvecWgsl(o) });
  }
  const head = { ...s, weights: f.lmHead, out: 'f32' } as const;
  out.push({ label: `matmul ${f.lmHead}`, code: matmulTiledWgsl(head) }, { label: `matvec ${f.lmHead}`, code: matvecWgsl(head) });
  return out;
}
