/**
 * The CPU reference decoder layer, the only one: CpuLlama (plain or with an adapter) and the CPU
 * trainer (forward and recompute) all run `layerForward`; `layerBackward` is its gradient. LoRA
 * on the projections is optional: with none, or with B exactly zero, the layer is the base
 * model's to the bit. The backward recomputes nothing itself: the trainer calls
 * `layerForward(..., save)` from the saved layer input first (gradient checkpointing), then
 * `layerBackward` on the activations that left in the workspace.
 */
import type { LlamaConfig, Projection } from '../config.ts';
import type { LoraPair } from '../lora/adapter.ts';
import { isBZero } from '../lora/adapter.ts';
import type { CpuLayer } from './cpu-llama.ts';
import { loraBackward, loraForward } from './lora-ops.ts';
import { addInPlace, attention, matmul, rmsnorm, rope, swiglu } from './ops.ts';
import { attentionBackward, matmulBackwardInput, rmsnormBackward, ropeBackward, swigluBackward } from './ops-backward.ts';

export type LayerLora = Partial<Record<Projection, LoraPair>>;

/**
 * Activations of one layer for T tokens, reused across layers (and steps, in training). Without
 * `training` the buffers only the backward needs (probs, x1, gradients) are empty.
 */
export class LayerWorkspace {
  readonly T: number;
  readonly xn1: Float32Array; // (T, C) input norm output
  readonly q: Float32Array; // (T, H*D) after RoPE
  readonly k: Float32Array; // (T, KV*D) after RoPE
  readonly v: Float32Array; // (T, KV*D)
  readonly probs: Float32Array; // (H, T, T) softmax, training only (start 0: keys = T)
  readonly att: Float32Array; // (T, H*D)
  readonly x1: Float32Array; // (T, C) residual after attention
  readonly xn2: Float32Array; // (T, C) post-attention norm output
  readonly gate: Float32Array; readonly up: Float32Array; readonly act: Float32Array; // (T, F)
  readonly proj: Float32Array; // (T, C) scratch: o_proj / down_proj output
  readonly xa: Partial<Record<Projection, Float32Array>> = {}; // (T, r) per target
  // Backward scratch.
  readonly dxn: Float32Array; // (T, C)
  readonly dq: Float32Array; readonly dk: Float32Array; readonly dv: Float32Array; readonly datt: Float32Array; // (T, H*D) (T, KV*D) x2 (T, H*D)
  readonly dgate: Float32Array; readonly dup: Float32Array; readonly dact: Float32Array; // (T, F)

  constructor(cfg: LlamaConfig, T: number, opts: { training: boolean; rank: number; targets: readonly Projection[] }) {
    const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D } = cfg;
    this.T = T;
    const f = (n: number) => new Float32Array(n);
    const tr = (n: number) => new Float32Array(opts.training ? n : 0);
    this.xn1 = f(T * C); this.q = f(T * H * D); this.k = f(T * KV * D); this.v = f(T * KV * D);
    this.probs = tr(H * T * T); this.att = f(T * H * D); this.x1 = tr(T * C); this.xn2 = f(T * C);
    this.gate = f(T * F); this.up = f(T * F); this.act = f(T * F); this.proj = f(T * C);
    for (const p of opts.targets) this.xa[p] = f(T * opts.rank);
    this.dxn = tr(T * C); this.dq = tr(T * H * D); this.dk = tr(T * KV * D); this.dv = tr(T * KV * D); this.datt = tr(T * H * D);
    this.dgate = tr(T * F); this.dup = tr(T * F); this.dact = tr(T * F);
  }
}

export interface LayerContext {
  cfg: LlamaConfig;
  cos: Float32Array; // (T, D/2) for positions start..start+T-1
  sin: Float32Array;
  /** alpha / rank. */
  scale: number;
}

/**
 * out (T, N) = x W^T (+ scale (x A^T) B^T, saving xa). `always` keeps the LoRA term even when
 * B = 0 (training needs xa for dB); otherwise a zero B is skipped so the base path stays exact.
 */
function project(out: Float32Array, x: Float32Array, W: Float32Array, pair: LoraPair | undefined, xa: Float32Array | undefined, T: number, K: number, N: number, scale: number, always: boolean): void {
  matmul(out, x, W, T, K, N);
  if (pair && xa && (always || !isBZero(pair))) loraForward(out, x, pair.A, pair.B, T, K, N, xa.length / T, scale, xa);
}

/**
 * Forward of one layer in place on the residual stream x (T, C) at positions start..start+T-1.
 * kCache/vCache (>= start+T, KV, D) receive this chunk's keys/values (training: pass ws.k / ws.v
 * with start 0, so no copy happens). With `save` the softmax probs and x1 are kept for backward.
 * @example layerForward(ctx, ws, L, lora.layers[l], x, 0, T, ws.k, ws.v, true);
 */
export function layerForward(
  ctx: LayerContext, ws: LayerWorkspace, L: CpuLayer, lora: LayerLora | undefined, x: Float32Array,
  start: number, T: number, kCache: Float32Array, vCache: Float32Array, save: boolean,
): void {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, rmsNormEps: eps } = ctx.cfg;
  const s = ctx.scale;
  rmsnorm(ws.xn1, x, L.inputNorm, T, C, eps);
  project(ws.q, ws.xn1, L.q, lora?.q_proj, ws.xa.q_proj, T, C, H * D, s, save);
  project(ws.k, ws.xn1, L.k, lora?.k_proj, ws.xa.k_proj, T, C, KV * D, s, save);
  project(ws.v, ws.xn1, L.v, lora?.v_proj, ws.xa.v_proj, T, C, KV * D, s, save);
  rope(ws.q, ctx.cos, ctx.sin, T, H, D);
  rope(ws.k, ctx.cos, ctx.sin, T, KV, D);
  if (kCache !== ws.k) kCache.set(ws.k, start * KV * D);
  if (vCache !== ws.v) vCache.set(ws.v, start * KV * D);
  attention(ws.att, ws.q, kCache, vCache, T, start, H, KV, D, save ? ws.probs : undefined);
  project(ws.proj, ws.att, L.o, lora?.o_proj, ws.xa.o_proj, T, H * D, C, s, save);
  addInPlace(x, ws.proj);
  if (save) ws.x1.set(x);
  rmsnorm(ws.xn2, x, L.postNorm, T, C, eps);
  project(ws.gate, ws.xn2, L.gate, lora?.gate_proj, ws.xa.gate_proj, T, C, F, s, save);
  project(ws.up, ws.xn2, L.up, lora?.up_proj, ws.xa.up_proj, T, C, F, s, save);
  swiglu(ws.act, ws.gate, ws.up);
  project(ws.proj, ws.act, L.down, lora?.down_proj, ws.xa.down_proj, T, F, C, s, save);
  addInPlace(x, ws.proj);
}

/** Input gradient of one projection: dx += dy W (+ LoRA backward into dx, dA, dB). */
function projectBackward(
  dx: Float32Array, dy: Float32Array, x: Float32Array, W: Float32Array, pair: LoraPair | undefined, grad: LoraPair | undefined,
  xa: Float32Array | undefined, T: number, K: number, N: number, scale: number,
): void {
  matmulBackwardInput(dx, dy, W, T, K, N);
  if (pair && grad && xa) loraBackward(dx, grad.A, grad.B, dy, x, xa, pair.A, pair.B, T, K, N, xa.length / T, scale);
}

/**
 * Backward of one layer (start 0), after `layerForward(..., save = true)` from the same input
 * xIn (T, C) left its activations in ws. dx (T, C): d loss / d output on entry, d loss / d input
 * on exit. LoRA gradients accumulate into `grads`.
 * @example layerBackward(ctx, ws, L, lora.layers[l], grads.layers[l], xs[l], dx, T);
 */
export function layerBackward(
  ctx: LayerContext, ws: LayerWorkspace, L: CpuLayer, lora: LayerLora | undefined, grads: LayerLora | undefined,
  xIn: Float32Array, dx: Float32Array, T: number,
): void {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, rmsNormEps: eps } = ctx.cfg;
  const s = ctx.scale;
  // MLP branch: x2 = x1 + down(swiglu(gate(xn2), up(xn2))); dx holds d x2 = the residual part of d x1.
  ws.dact.fill(0);
  projectBackward(ws.dact, dx, ws.act, L.down, lora?.down_proj, grads?.down_proj, ws.xa.down_proj, T, F, C, s);
  ws.dgate.fill(0); ws.dup.fill(0);
  swigluBackward(ws.dgate, ws.dup, ws.dact, ws.gate, ws.up);
  ws.dxn.fill(0);
  projectBackward(ws.dxn, ws.dgate, ws.xn2, L.gate, lora?.gate_proj, grads?.gate_proj, ws.xa.gate_proj, T, C, F, s);
  projectBackward(ws.dxn, ws.dup, ws.xn2, L.up, lora?.up_proj, grads?.up_proj, ws.xa.up_proj, T, C, F, s);
  rmsnormBackward(dx, ws.dxn, ws.x1, L.postNorm, T, C, eps); // dx = d x1
  // Attention branch: x1 = x + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1))).
  ws.datt.fill(0);
  projectBackward(ws.datt, dx, ws.att, L.o, lora?.o_proj, grads?.o_proj, ws.xa.o_proj, T, H * D, C, s);
  ws.dq.fill(0); ws.dk.fill(0); ws.dv.fill(0);
  attentionBackward(ws.dq, ws.dk, ws.dv, ws.datt, ws.q, ws.k, ws.v, ws.probs, T, H, KV, D);
  ropeBackward(ws.dq, ctx.cos, ctx.sin, T, H, D);
  ropeBackward(ws.dk, ctx.cos, ctx.sin, T, KV, D);
  ws.dxn.fill(0);
  projectBackward(ws.dxn, ws.dq, ws.xn1, L.q, lora?.q_proj, grads?.q_proj, ws.xa.q_proj, T, C, H * D, s);
  projectBackward(ws.dxn, ws.dk, ws.xn1, L.k, lora?.k_proj, grads?.k_proj, ws.xa.k_proj, T, C, KV * D, s);
  projectBackward(ws.dxn, ws.dv, ws.xn1, L.v, lora?.v_proj, grads?.v_proj, ws.xa.v_proj, T, C, KV * D, s);
  rmsnormBackward(dx, ws.dxn, xIn, L.inputNorm, T, C, eps); // dx = d x
}
