/**
 * The GPU decoder layer, the only one: the steps of one layer's forward over given buffers, used by
 * GpuLlama's prefill and decode (its activation buffers and KV cache) and by GpuTrainer's forward
 * and recompute (its workspace). The twin of models/cpu/layer.ts, with some steps fused:
 *   norm1 -> q, k, v (+ LoRA; decoding without LoRA on them, norm1, q, k and v are one matvec over
 *   their fused rows, GpuLayer.qkv) -> rope q, rope k to the key cache [, v to the value cache] (one pass)
 *   -> scores, softmax, values (decode: one pass) -> o + residual (+ LoRA) -> norm2 -> gate, up (+ LoRA)
 *   [-> copy gate] -> swiglu -> down + residual (+ LoRA); decoding without LoRA on gate and up,
 *   gate, up and swiglu are one matvec (fusedGateUp).
 * The bracketed steps run only where the buffers ask for them (see LayerBuffers).
 * Shapes: T tokens at positions start..start+T-1 (the run buffer), P = start + T keys, C hidden,
 * H heads, KV kv-heads, D head dim, F FFN width, r LoRA rank.
 */
import type { Projection } from '../config.ts';
import type { GpuLayer, GpuLlama, Step } from './gpu-llama.ts';
import type { GpuMatrix } from './gpu-weights.ts';
import { kernelStep, type Kernel } from './deferred-step.ts';
import { grid1D } from './pipelines.ts';
import { attnScoresWgsl, attnValuesWgsl, softmaxWgsl, toCacheWgsl } from './wgsl/attention.ts';
import { rmsnormWgsl, swigluWgsl } from './wgsl/elementwise.ts';
import { decodeAttentionWgsl } from './wgsl/decode-attention.ts';
import { matmulParams, matvecLanes, matvecRows, matvecSwigluWgsl, matvecWgsl } from './wgsl/matmul.ts';
import { ropeCacheThreads, ropeCacheWgsl } from './wgsl/rope-cache.ts';
import { qkvSplitWords } from './buffer-sizes.ts';

type Binding = GPUBuffer | GPUBufferBinding;

/** Makes `st` dispatch nothing while `off(T)`: a fused step of the caller's does its work then. */
function idleWhile(st: Step, off: (T: number) => boolean): void {
  const grid = st.grid;
  st.grid = (T, P) => (off(T) ? [0, 0, 0] : grid(T, P));
}

/**
 * What one layer's forward reads and writes. Two aliases choose between generation and training:
 * `vCache === v` reads the values in place (training, start 0: no copy), and `act === gate` runs
 * SwiGLU in place (generation; the trainer keeps the pre-activation gate for the backward pass).
 */
export interface LayerBuffers {
  xIn: Binding; // (T, C) layer input
  xn1: Binding; // (T, C) input RMSNorm
  q: Binding; // (T, H*D), RoPE applied in place
  k: Binding; // (T, KV*D) before RoPE
  v: Binding; // (T, KV*D)
  kCache: Binding; // (>= P, KV, D) rotated keys; this chunk's are written at row start
  vCache: Binding; // (>= P, KV, D) values; this chunk's are written at row start (unless === v)
  scores: Binding; // (H, T, P) f32 scores, softmax in place (the probs the backward reads)
  att: Binding; // (T, H*D) attention output
  x1: Binding; // (T, C) residual after attention: o(att) + xIn
  xn2: Binding; // (T, C) post-attention RMSNorm
  gate: Binding; // (T, F)
  up: Binding; // (T, F)
  act: Binding; // (T, F) silu(gate) * up (=== gate: in place)
  xOut: Binding; // (T, C) layer output: down(act) + x1 (may be xIn, which is read before)
}

/**
 * What the MLP of one layer (norm2's output onwards) binds: row-local throughout, so the trainer
 * runs it on blocks of rows (bindings at the block's offset; gate, up, act block-sized).
 */
export interface MlpBuffers {
  xn2: Binding; // (T, C) post-attention RMSNorm
  x1: Binding; // (T, C) residual after attention
  gate: Binding; up: Binding; act: Binding; // (T, F); act === gate: SwiGLU in place
  xOut: Binding; // (T, C) layer output: down(act) + x1
  /** The (T, r) x A^T rows of a target, kept for dB (training); default the model's scratch. */
  xa?: (p: Projection) => Binding | undefined;
}

/** What one attention (attentionSteps) binds: the run (T, start, P), q and att rows, caches, scores. */
export interface AttentionBuffers {
  run: GPUBuffer;
  q: Binding; // (T, H*D) after RoPE
  kCache: Binding; // (>= P, KV, D) rotated keys
  vCache: Binding; // (>= P, KV, D) values
  scores: Binding; // (H, T, P) f32: the probs once softmax ran
  att: Binding; // (T, H*D) output
}

export interface LayerStepOptions {
  /** Run-parameter buffer (T, start, P) the steps bind. */
  run: GPUBuffer;
  /** True: the LoRA steps run only while the model's `loraEnabled` (generation). False: always (training). */
  gated: boolean;
  /** Largest T the steps will see (picks the LoRA gemm tiles). */
  maxTokens: number;
  /** The (T, r) x A^T buffer of a target, kept for dB (training); default the model's scratch. */
  xa?: (p: Projection) => GPUBuffer | GPUBufferBinding | undefined;
}

/** The small uniforms a layer binds; the backward kernels read the same ones. */
export interface LayerUniforms {
  norm: GPUBuffer; // [C, 0, eps, 0]
  widthC: GPUBuffer; // [C]
  widthF: GPUBuffer; // [F]
  widthKvD: GPUBuffer; // [KV*D]
  ropeQ: GPUBuffer; // [H, D]
  ropeK: GPUBuffer; // [KV, D]
  attention: GPUBuffer; // [H, KV, D, 1/sqrt(D)]
}

/** The kernels only T > 1 dispatches in generation (decode fuses them away): deferrable. */
interface LayerKernels {
  norm: Kernel; swiglu: Kernel;
  scores: Kernel; softmax: Kernel; values: Kernel;
}

/**
 * Builds the forward steps of any layer of `m` (its pipelines and uniforms are made once here).
 * @example
 *   const layer = await LayerEncoder.create(model);
 *   const steps = await layer.steps(l, model.layers[l], buffers, { run, gated: true, maxTokens: model.maxBatch });
 *   model.encode(pass, steps, T, start + T);
 */
export class LayerEncoder {
  private constructor(private readonly m: GpuLlama, private readonly pipelines: LayerKernels, readonly uniforms: LayerUniforms, private readonly defer: boolean) {}

  /**
   * `defer` (generation): the kernels that only prompts of several tokens dispatch are compiled
   * on first need (deferred-step.ts); the trainer's encoder compiles everything now.
   */
  static async create(m: GpuLlama, defer = false): Promise<LayerEncoder> {
    const c = m.config, s = m.shader;
    const get = (label: string, code: string) => m.pipelines.kernel(label, code, defer);
    const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D } = c;
    const pipelines: LayerKernels = {
      norm: await get('rmsnorm', rmsnormWgsl(s)),
      swiglu: await get('swiglu', swigluWgsl(s)),
      scores: await get('attn scores', attnScoresWgsl(s)),
      softmax: await get('softmax', softmaxWgsl(s)),
      values: await get('attn values', attnValuesWgsl(s)),
    };
    // Uniforms are deduplicated by contents and keep the first label: this order is the memory plan's.
    const uniforms: LayerUniforms = {
      norm: m.uniform('norm params', [C, 0, c.rmsNormEps, 0], [2]),
      widthC: m.uniform('width C', [C]),
      widthF: m.uniform('width F', [F]),
      widthKvD: m.uniform('width KV*D', [KV * D]),
      ropeQ: m.uniform('rope q', [H, D]),
      ropeK: m.uniform('rope k', [KV, D]),
      attention: m.uniform('attention', [H, KV, D, 1 / Math.sqrt(D)], [3]),
    };
    return new LayerEncoder(m, pipelines, uniforms, defer);
  }

  /** The forward steps of layer `l` (weights `L`) over `b`, labelled `L<l> <step>`. */
  async steps(l: number, L: GpuLayer, b: LayerBuffers, o: LayerStepOptions): Promise<Step[]> {
    const p = await this.parts(l, L, b, o);
    return [...p.pre, ...p.attention, ...p.post, ...p.mlp];
  }

  /**
   * The forward of layer `l` in four parts: before attention (norm1 .. rope k [-> v cache]), the
   * attention (scores, softmax, values; see attentionSteps), after it (o .. norm2) and the MLP
   * (gate .. residual2; see mlpSteps). The trainer runs the attention per block of queries and
   * the MLP per block of rows.
   */
  async parts(l: number, L: GpuLayer, b: LayerBuffers, o: LayerStepOptions): Promise<{ pre: Step[]; attention: Step[]; post: Step[]; mlp: Step[] }> {
    const m = this.m, p = this.pipelines, u = this.uniforms;
    const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D } = m.config;
    const step = (name: string, kernel: Kernel, buffers: (Binding | null)[], grid: Step['grid']): Step =>
      kernelStep(`L${l} ${name}`, kernel, (p) => m.bind(p, [o.run, ...buffers]), grid);
    const elements = (n: (T: number) => number, wg: number): Step['grid'] => (T) => grid1D(n(T), wg);
    const rows: Step['grid'] = (T) => [T, 1, 1];
    // y = x W^T, then the adapter's term y += s (x A^T) B^T when the projection is a target.
    // Decode without LoRA on q, k, v runs norm1, q, k and v as one matvec (below): then the plain
    // matvecs never run and are not built.
    const fusedQkv = o.gated ? L.qkv : null;
    const qkvLora = (['q_proj', 'k_proj', 'v_proj'] as const).some((t) => m.lora?.slot(l, t));
    const proj = (name: string, x: Binding, W: GpuMatrix, y: Binding, target: Projection) => this.proj(l, name, x, W, y, target, o, o.xa?.(target), undefined, !fusedQkv || qkvLora);
    const s: Step[] = [];
    s.push(step('norm1', p.norm, [u.norm, b.xIn, L.inputNorm, b.xn1], rows)); // xn1 (T, C)
    s.push(...await proj('q', b.xn1, L.q, b.q, 'q_proj')); // q (T, H*D)
    s.push(...await proj('k', b.xn1, L.k, b.k, 'k_proj')); // k (T, KV*D)
    s.push(...await proj('v', b.xn1, L.v, b.v, 'v_proj')); // v (T, KV*D)
    // Decode without LoRA on q, k, v: norm1, q, k and v as one matvec (xn1 is then not needed).
    if (fusedQkv) {
      const on = (T: number) => T === 1 && !(qkvLora && m.loraEnabled);
      // Every step so far is norm1, q, k or v (with their LoRA terms, which are off whenever `on` is).
      for (const st of s) idleWhile(st, on);
      s.push(await this.qkvMatvec(l, b, L.inputNorm, fusedQkv, o, on));
    }
    // q rotated in place, k rotated into kCache rows start.. (T, KV, D), v copied into vCache there
    // unless the values are read in place (training): one pass.
    const copyV = b.vCache !== b.v;
    const ropeP = await m.pipelines.get(copyV ? 'rope + kv cache' : 'rope + k cache', ropeCacheWgsl({ ...m.shader, copyV }));
    s.push(step('rope', ropeP, [u.attention, m.ropeCos, m.ropeSin, b.q, b.k, b.kCache, ...(copyV ? [b.v, b.vCache] : [])], elements((T) => ropeCacheThreads(T, H, KV, D, copyV), 256)));
    const pre = s.splice(0);
    const attention = this.attentionSteps(`L${l}`, { run: o.run, q: b.q, kCache: b.kCache, vCache: b.vCache, scores: b.scores, att: b.att });
    if (o.gated) {
      // Generation decodes one token in one pass (decodeAttentionWgsl) instead of the three steps.
      const dp = await m.pipelines.get('decode attention', decodeAttentionWgsl({ ...m.shader, D }));
      for (const st of attention) idleWhile(st, (T) => T === 1);
      attention.unshift({ label: `L${l} decode attention`, pipeline: dp, bind: m.bind(dp, [o.run, u.attention, b.q, b.kCache, b.vCache, b.att]), grid: (T) => (T === 1 ? [H, 1, 1] : [0, 0, 0]) });
    }
    s.push(...await this.proj(l, 'o', b.att, L.o, b.x1, 'o_proj', o, o.xa?.('o_proj'), b.xIn)); // x1 (T, C) = o(att) + xIn
    s.push(step('norm2', p.norm, [u.norm, b.x1, L.postNorm, b.xn2], rows)); // xn2 (T, C)
    const mlp = await this.mlpSteps(l, L, { xn2: b.xn2, x1: b.x1, gate: b.gate, up: b.up, act: b.act, xOut: b.xOut, xa: o.xa }, o, { x: b.x1, weight: L.postNorm });
    // The fused gate + up reads x1 through norm2 itself: norm2 runs only when it does not.
    const fusedOn = mlp.fusedOn;
    if (fusedOn) idleWhile(s.at(-1)!, fusedOn);
    return { pre, attention, post: s, mlp: mlp.forward };
  }

  /**
   * y = x W^T (+ residual), then the adapter's term y += s (x A^T) B^T when the projection is a
   * target: [matmul..., lora xa, lora y].
   */
  private async proj(l: number, name: string, x: Binding, W: GpuMatrix, y: Binding, target: Projection, o: LayerStepOptions, xa?: Binding, residual?: Binding, vec = true): Promise<Step[]> {
    const m = this.m, label = `L${l} ${name}`;
    const steps = await m.matmul(label, x, W, y, { run: o.run, residual, vec, defer: this.defer });
    const slot = m.lora?.slot(l, target);
    if (slot) steps.push(...await m.loraSteps(label, x, slot, y, { run: o.run, xa, maxTokens: o.maxTokens, gated: o.gated }));
    return steps;
  }

  /**
   * The MLP of layer `l` over `b`: gate, up (+ LoRA) [-> copy gate] -> swiglu -> down + x1 (+ LoRA). `recompute` is what the trainer's backward needs again, without touching xOut:
   * gate, up, act and the saved x A^T of every MLP target (down's `lora xa` only, not its matmul).
   */
  async mlpSteps(l: number, L: GpuLayer, b: MlpBuffers, o: LayerStepOptions, normIn?: { x: Binding; weight: GPUBuffer }): Promise<{ forward: Step[]; recompute: Step[]; fusedOn?: (T: number) => boolean }> {
    const m = this.m, p = this.pipelines, u = this.uniforms, { hiddenSize: C, intermediateSize: F } = m.config;
    const step = (name: string, kernel: Kernel, buffers: Binding[], grid: Step['grid']): Step =>
      kernelStep(`L${l} ${name}`, kernel, (p) => m.bind(p, [o.run, ...buffers]), grid);
    const elements = (n: (T: number) => number): Step['grid'] => (T) => grid1D(n(T), 256);
    const s: Step[] = [];
    // Where the fused gate + up takes every T = 1 (generation, no LoRA on them), no plain matvecs.
    const vec = !(this.canFuseGateUp(L, b, o) && !m.lora?.slot(l, 'gate_proj') && !m.lora?.slot(l, 'up_proj'));
    s.push(...await this.proj(l, 'gate', b.xn2, L.gate, b.gate, 'gate_proj', o, b.xa?.('gate_proj'), undefined, vec)); // gate (T, F)
    s.push(...await this.proj(l, 'up', b.xn2, L.up, b.up, 'up_proj', o, b.xa?.('up_proj'), undefined, vec)); // up (T, F)
    if (b.act !== b.gate) s.push(step('copy gate', await m.pipelines.get('to cache', toCacheWgsl(m.shader)), [u.widthF, b.gate, b.act], elements((T) => T * F)));
    s.push(step('swiglu', p.swiglu, [u.widthF, b.act, b.up], elements((T) => T * F))); // act (T, F) = silu(act) * up
    const fused = await this.fusedGateUp(l, L, b, o, normIn);
    if (fused) {
      // Decode without LoRA on gate/up: the fused step instead of the ones above.
      for (const st of s) idleWhile(st, fused.on);
      s.unshift(fused.step);
    }
    const upper = [...s];
    const down = await this.proj(l, 'down', b.act, L.down, b.xOut, 'down_proj', o, b.xa?.('down_proj'), b.x1); // xOut (T, C) = down(act) + x1
    const downXa = down.filter((st) => st.label === `L${l} down lora xa`);
    s.push(...down);
    return { forward: s, recompute: [...upper, ...downXa], ...(fused ? { fusedOn: fused.on } : {}) };
  }

  /** Whether gate + up + SwiGLU can run as one matvec: generation (SwiGLU in place), unsplit matrices of one format. */
  private canFuseGateUp(L: GpuLayer, b: MlpBuffers, o: LayerStepOptions): boolean {
    return o.gated && b.act === b.gate && L.gate.blocks.length === 1 && L.up.blocks.length === 1 && L.gate.kind === L.up.kind;
  }

  /**
   * q, k, v (T = 1) = RMSNorm(xIn) [Wq; Wk; Wv]^T as one matvec over the layer's fused q/k/v rows
   * (matvecWgsl with `norm` and `qkv`), each part's rows written to its own buffer; dispatched while on(T).
   */
  private async qkvMatvec(l: number, b: LayerBuffers, nw: GPUBuffer, F: NonNullable<GpuLayer['qkv']>, o: LayerStepOptions, on: (T: number) => boolean): Promise<Step> {
    const m = this.m, W = F.W, lanes = matvecLanes(W.K), blk = W.blocks[0];
    const pipeline = await m.pipelines.get(`matvec ${W.kind} qkv normed`, matvecWgsl({ ...m.shader, weights: W.kind, out: 'T', norm: true, qkv: true, lanes }));
    const params = m.uniform(`L${l} qkv params`, matmulParams(W.N, W.K));
    const split = m.uniform(`L${l} qkv split`, qkvSplitWords(F.layout));
    const bind = m.bind(pipeline, [o.run, params, b.xIn, blk.w, blk.sc, b.q, null, nw, this.uniforms.norm, split, b.k, b.v]);
    return { label: `L${l} qkv normed`, pipeline, bind, grid: (T) => (on(T) ? grid1D(W.N, matvecRows(lanes)) : [0, 0, 0]) };
  }

  /**
   * gate, up and SwiGLU as one matvec (matvecSwigluWgsl) for generation, used while T = 1 and no
   * LoRA term on gate or up is enabled (the trainer never: it keeps the pre-activation gate).
   * Null where it cannot apply: training, SwiGLU not in place, row blocks, mixed formats.
   */
  private async fusedGateUp(l: number, L: GpuLayer, b: MlpBuffers, o: LayerStepOptions, normIn?: { x: Binding; weight: GPUBuffer }): Promise<{ step: Step; on: (T: number) => boolean } | null> {
    const m = this.m, { hiddenSize: C, intermediateSize: F } = m.config;
    if (!this.canFuseGateUp(L, b, o)) return null;
    const lora = !!(m.lora?.slot(l, 'gate_proj') || m.lora?.slot(l, 'up_proj'));
    const on = (T: number) => T === 1 && !(lora && m.loraEnabled);
    const lanes = matvecLanes(C);
    const norm = normIn !== undefined;
    const pipeline = await m.pipelines.get(`matvec ${L.gate.kind} gate+up swiglu${norm ? ' normed' : ''}`, matvecSwigluWgsl({ ...m.shader, weights: L.gate.kind, lanes, norm }));
    const g = L.gate.blocks[0], u = L.up.blocks[0];
    // The gate matmul's own params (N = F, K = C): the same uniform, shared.
    const params = m.uniform(`L${l} gate params`, matmulParams(F, C));
    const bind = m.bind(pipeline, normIn ? [o.run, params, normIn.x, g.w, g.sc, b.act, u.w, u.sc, normIn.weight, this.uniforms.norm] : [o.run, params, b.xn2, g.w, g.sc, b.act, u.w, u.sc]);
    return { on, step: { label: `L${l} gate+up swiglu`, pipeline, bind, grid: (T) => (on(T) ? grid1D(F, matvecRows(lanes)) : [0, 0, 0]) } };
  }

  /**
   * Causal attention of T queries at positions start..start+T-1 (the run buffer) over P = start + T
   * keys: scores (H, T, P) = q k^T scale, softmax in place, att (T, H*D) = probs V. The query-side
   * bindings (q, att) hold the T rows; the caches hold the keys from row 0. Labelled `<prefix> <step>`.
   * @example
   *   const [scores, softmax, values] = layer.attentionSteps('block 1', { run, q: { buffer: q, offset, size }, kCache, vCache, scores, att });
   */
  attentionSteps(prefix: string, b: AttentionBuffers): Step[] {
    const m = this.m, p = this.pipelines, u = this.uniforms;
    const { numHeads: H, headDim: D } = m.config;
    const step = (name: string, kernel: Kernel, buffers: Binding[], grid: Step['grid']): Step =>
      kernelStep(`${prefix} ${name}`, kernel, (p) => m.bind(p, [b.run, ...buffers]), grid);
    return [
      step('scores', p.scores, [u.attention, b.q, b.kCache, b.scores], (T, P) => [Math.ceil(P / 64), T, H]), // (H, T, P)
      step('softmax', p.softmax, [b.scores], (T) => [T, H, 1]),
      step('attn values', p.values, [u.attention, b.scores, b.vCache, b.att], (T) => grid1D(T * H * D, 64)), // att (T, H*D)
    ];
  }
}
