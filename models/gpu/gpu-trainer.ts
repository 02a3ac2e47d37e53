import type { Projection } from '../config.ts';
import { AbortError, InvalidInputError, throwIfAborted } from '../errors.ts';
import { assertPlanFits, planMemory } from '../memory-plan.ts';
import type { LoraWeights } from '../lora/adapter.ts';
import type { AdamOptions } from '../optim/adam.ts';
import { validateTrainingSequence } from '../ttt/validate.ts';
import type { GpuLayer, GpuLlama, Step } from './gpu-llama.ts';
import { usageOf } from './allocator.ts';
import { lossHeadChunks, trainerAllocations, trainerAttentionBlocks, trainerBuffers, trainerMaxTokens, trainerMlpBlocks } from './buffer-sizes.ts';
import { GpuAdam } from './gpu-adam.ts';
import { LayerEncoder, type LayerBuffers } from './gpu-layer.ts';
import { GpuLora, type LoraSlot } from './gpu-lora.ts';
import type { GpuMatrix } from './gpu-weights.ts';
import { grid1D } from './pipelines.ts';
import { attnBackwardDkWgsl, attnBackwardDqWgsl, attnBackwardDvWgsl, attnBackwardScoresWgsl, rmsnormBackwardWgsl, ropeBackwardWgsl, swigluBackwardWgsl } from './wgsl/backward.ts';
import { rmsnormWgsl } from './wgsl/elementwise.ts';
import { crossEntropyWgsl, IGNORE_TARGET, lossMeanWgsl } from './wgsl/cross-entropy.ts';
import { gemmDim, gemmGrid, gemmParams, gemmWgsl, pickGemmTile, type GemmOptions, type GemmShape } from './wgsl/gemm.ts';
import { matmulBackwardInputGrid, matmulBackwardInputWgsl } from './wgsl/matmul-backward.ts';
import { matmulParams } from './wgsl/matmul.ts';

/** At most this many dispatches in one command buffer where a unit allows (a layer's backward is ~80). */
export const MAX_DISPATCHES_PER_SUBMIT = 256;

/** Steps encoded with one token count (a loss-head chunk or an attention block runs with its own rows, and keys P, default T). */
interface Unit { steps: Step[]; T: number; P?: number }
/**
 * One block of query rows of the attention (all layers share the workspace, so one set serves
 * every layer): its run uniform (rows, t0, t0 + rows), the forward (scores, softmax, values), the
 * backward when it is the first one run (the probs are still there from the forward; dk, dv
 * written) and otherwise (scores and softmax recomputed, dk, dv accumulated).
 */
interface AttentionBlock { run: GPUBuffer; fwd: Step[]; first: Step[]; rest: Step[] }
/**
 * One block of token rows of a layer's MLP (row-local: gate .. residual2): the forward, and for
 * the backward its recompute (gate, up, act and the MLP targets' x A^T) then its backward down to
 * its rows of d xn2 (the LoRA gradients accumulate over the blocks).
 */
interface MlpBlock { fwd: Step[]; bwd: Step[] }
type Binding = GPUBuffer | GPUBufferBinding;
/** The run uniform steps bind (T rows) and the largest T they will see (picks gemm tiles). */
interface Rows { run: GPUBuffer; maxT: number }
/** One command buffer of a step, encoded only when its turn to be submitted comes. */
type Segment = () => GPUCommandBuffer;

/** `size` bytes (default: to the end) at `offset` within a buffer or a binding. */
function rowsOf(b: Binding, offset: number, size?: number): GPUBufferBinding {
  const [buffer, base, whole] = 'buffer' in b ? [b.buffer, b.offset ?? 0, b.size ?? b.buffer.size - (b.offset ?? 0)] : [b, 0, b.size];
  return { buffer, offset: base + offset, size: size ?? whole - offset };
}

/** Groups units in order, starting a new group where `max` dispatches would be exceeded. */
function packUnits(units: Unit[], max: number): Unit[][] {
  const groups: Unit[][] = [];
  let n = Infinity;
  for (const u of units) {
    if (n + u.steps.length > max) { groups.push([]); n = 0; }
    groups.at(-1)!.push(u);
    n += u.steps.length;
  }
  return groups;
}

export interface GpuTrainerOptions {
  /** Tokens of the longest training sequence (default 1024, at most the model's context). */
  maxTokens?: number;
  /** Loss-head rows per chunk (a positive multiple of 64; default from LOGITS_BUDGET and the limits). */
  chunkRows?: number;
  /**
   * Query rows per attention block (default: as many as the model's prefill score buffer holds,
   * which the trainer then borrows; see trainerAttentionBlocks). Memory (H, rows, maxTokens) f32.
   */
  queryRows?: number;
  /** MLP token rows per block (default: (rows, F) f32 within MLP_BLOCK_BUDGET; see trainerMlpBlocks). */
  mlpRows?: number;
  /**
   * Place the largest training buffers in the model's KV-cache slabs, idle while training
   * (default true; false: buffers of its own, as much memory again as fits there).
   */
  shareKvCache?: boolean;
}

export interface GpuTrainOptions extends AdamOptions {
  steps: number;
  signal?: AbortSignal;
}

export interface GpuTrainResult {
  lossAtStart: number;
  /** Loss before each step. */
  losses: number[];
  finalLoss: number;
  tokensTrained: number;
  timings: { totalMs: number; stepMs: number[] };
}

/** Buffers of one layer's recompute (T tokens, start 0) and of its backward pass; gradients are f32. */
interface Work {
  xn1: Binding; // (T, C) input norm output
  q: Binding; // (T, H*D) after RoPE
  k: Binding; // (T, KV*D) before RoPE
  kr: Binding; // (T, KV, D) after RoPE: the layer's key cache
  v: Binding; // (T, KV*D)
  probs: Binding; // (H, rows, P) f32 softmax of one query block; the backward turns it into dS in place
  att: Binding; // (T, H*D)
  x1: Binding; // (T, C) residual after attention
  xn2: Binding; // (T, C) post-attention norm output
  gate: Binding; up: Binding; act: Binding; // (rows, F) of one MLP block; act = silu(gate) * up
  dx: Binding; dxn: Binding; // (T, C)
  dq: Binding; dk: Binding; dv: Binding; datt: Binding; // (T, H*D) (T, KV*D) x2 (T, H*D)
  dact: Binding; dup: Binding; // (rows, F) of one MLP block; dact is also d gate
  dxa: Binding; // (T, r) d (x A^T), shared by the targets in turn
  xa: Map<Projection, Binding>; // (T, r) x A^T saved per target for dB
}

/**
 * Test-time training on WebGPU: Adam on the LoRA parameters of a GpuLlama, with the base weights
 * frozen (f32 or 4-bit). One step = forward from position 0 keeping only each layer's input
 * (gradient checkpointing), the loss head in row chunks (lm_head, cross-entropy, its input
 * gradient), then per layer in reverse: recompute the layer, backward through it. The attention
 * runs in blocks of query rows (forward in order, backward from the last block, whose probs the
 * recompute leaves in place, to the first), so its probabilities take (H, rows, T) f32 in the
 * model's idle prefill score buffer: memory linear in T, not quadratic. The MLP (row-local) runs
 * in blocks of token rows, so its (rows, F) scratch does not grow with T at all. Gradients and
 * moments live in GpuLora's flat buffers, so the optimizer is three dispatches and the loss is the
 * only readback of a step.
 *
 * @example
 *   const trainer = await GpuTrainer.create(gpuLlama, initLora(config, DEFAULT_LORA, 0), { maxTokens: 1024 });
 *   const r = await trainer.train(ids, mask, { steps: 3, lr: 1e-4 });
 *   await gpuLlama.forward(promptIds); // answers with the adapted model
 *   trainer.reset();                    // B = 0: the base model again
 */
export class GpuTrainer {
  readonly lora: GpuLora;
  readonly maxTokens: number;
  private readonly m: GpuLlama;
  private readonly device: GPUDevice;
  private readonly initial: LoraWeights;
  private run!: GPUBuffer;
  private ids!: GPUBuffer;
  private targets!: GPUBuffer;
  private xs: Binding[] = []; // (T, C) input of each layer, and the final hidden state
  private hn!: Binding; // (T, C) final norm output
  private dhn!: Binding; // (T, C) f32
  private logits!: Binding; // (rows, V) f32, one chunk
  private lossRows!: GPUBuffer; // (T) f32
  private lossOut!: GPUBuffer; // (1) f32
  private readback!: GPUBuffer;
  private w!: Work;
  private chunkRows = 0;
  /** Loss-head chunks of `chunkRows` rows: own run/CE uniforms, steps lm_head -> CE -> dhn rows. */
  private chunks: { run: GPUBuffer; ce: GPUBuffer; steps: Step[] }[] = [];
  private embedSteps: Step[] = [];
  private layerPre: Step[][] = []; // per layer: the forward up to the attention
  private layerPost: Step[][] = []; // per layer: the forward after the attention
  private mlpBlocks: MlpBlock[][] = []; // per layer, per block of rows
  private mlpRuns: GPUBuffer[] = []; // per block of rows: its run uniform (rows, 0, rows)
  private mlpRows = 0;
  private bwdHead: Step[][] = []; // per layer: norm2 and o backward, down to d att
  private bwdTail: Step[][] = []; // per layer: the backward from dq, dk, dv to d input
  private attnBlocks: AttentionBlock[] = [];
  private attnRows = 0;
  private headSteps: Step[] = [];
  private headTail: Step[] = [];
  private adam!: GpuAdam;
  private lossMeanParams!: GPUBuffer;
  private busy = false;
  /** Buffers created by create(), freed by dispose(). */
  private owned: GPUBuffer[] = [];

  private constructor(m: GpuLlama, lora: GpuLora, initial: LoraWeights, maxTokens: number) {
    this.m = m;
    this.device = m.device;
    this.lora = lora;
    this.initial = initial;
    this.maxTokens = maxTokens;
  }

  /** Uploads `lora`, attaches it to the model for generation, and builds the training passes. */
  static async create(m: GpuLlama, lora: LoraWeights, opts: GpuTrainerOptions = {}): Promise<GpuTrainer> {
    const maxTokens = trainerMaxTokens(opts.maxTokens, m.maxContext);
    if (lora.layers.length !== m.config.numLayers) throw new InvalidInputError(`The adapter has ${lora.layers.length} layers; the model has ${m.config.numLayers}.`);
    if (opts.chunkRows !== undefined && (opts.chunkRows <= 0 || opts.chunkRows % 64 !== 0)) throw new InvalidInputError(`chunkRows must be a positive multiple of 64, got ${opts.chunkRows}.`);
    const { unit } = trainerAttentionBlocks(m.config, maxTokens, m.shader.f16 ? 2 : 4, m.scoresBuffer.size);
    if (opts.queryRows !== undefined && (!Number.isInteger(opts.queryRows) || opts.queryRows <= 0 || opts.queryRows % unit !== 0)) throw new InvalidInputError(`queryRows must be a positive multiple of ${unit} for this model, got ${opts.queryRows}.`);
    const mlpUnit = trainerMlpBlocks(m.config, maxTokens, lora.config.rank, m.shader.f16 ? 2 : 4).unit;
    if (opts.mlpRows !== undefined && (!Number.isInteger(opts.mlpRows) || opts.mlpRows <= 0 || opts.mlpRows % mlpUnit !== 0)) throw new InvalidInputError(`mlpRows must be a positive multiple of ${mlpUnit} for this model, got ${opts.mlpRows}.`);
    // A length whose buffers break this GPU's limits is refused (DeviceLimitsError) before anything is allocated.
    const ttt = { rank: lora.config.rank, alpha: lora.config.alpha, targets: lora.config.targets, maxTokens, chunkRows: opts.chunkRows, queryRows: opts.queryRows, mlpRows: opts.mlpRows, shareKvCache: opts.shareKvCache };
    assertPlanFits(planMemory(m.config, { weights: m.weightFormat, lmHead: m.lmHeadFormat, precision: m.precision, maxContext: m.maxContext, maxBatch: m.maxBatch, ttt, limits: m.ctx.limits }), m.ctx.limits);
    const { result: t, buffers } = await m.alloc.collect(async () => {
      const gl = GpuLora.create(m.device, m.alloc, lora);
      const trainer = new GpuTrainer(m, gl, structuredClone(lora), maxTokens);
      await m.attachLora(gl); // first: the training passes reuse the model's LoRA steps
      await trainer.allocate(opts);
      await trainer.build();
      return trainer;
    });
    t.owned = buffers;
    return t;
  }

  /** @internal Every step list by phase (the TTT bench names its timed dispatches by them). */
  stepLists(): Record<'embed' | 'fwd' | 'bwd' | 'head' | 'adam', Step[]> {
    const mlp = this.mlpBlocks.flat();
    return {
      embed: this.embedSteps,
      fwd: [...this.layerPre.flat(), ...this.attnBlocks.flatMap((b) => b.fwd), ...this.layerPost.flat(), ...mlp.flatMap((b) => b.fwd)],
      bwd: [...this.bwdHead.flat(), ...mlp.flatMap((b) => b.bwd), ...this.attnBlocks.flatMap((b) => [...b.first, ...b.rest]), ...this.bwdTail.flat()],
      head: [...this.headSteps, ...this.headTail, ...this.chunks.flatMap((c) => c.steps)],
      adam: this.adam.steps,
    };
  }

  /**
   * Detaches the adapter from the model and frees every buffer the trainer made (uniforms shared
   * through the model's cache stay): the model is the base model again, ready for another adapter.
   */
  async dispose(): Promise<void> {
    if (this.busy) throw new InvalidInputError('Cannot remove the adapter while training; cancel first.');
    await this.m.detachLora();
    for (const b of this.owned) if (!this.m.isSharedUniform(b)) this.m.alloc.destroy(b);
    this.owned = [];
  }

  private async allocate({ chunkRows, queryRows, mlpRows, shareKvCache = true }: GpuTrainerOptions): Promise<void> {
    const c = this.m.config, Tm = this.maxTokens, e = this.m.shader.f16 ? 2 : 4;
    const head = lossHeadChunks(Tm, c.vocabSize, chunkRows, this.m.ctx.limits);
    this.chunkRows = head.chunkRows;
    // The attention probabilities of one query block live in the model's idle prefill score buffer
    // when they fit there, else in a buffer of the trainer's own.
    const attn = trainerAttentionBlocks(c, Tm, e, this.m.scoresBuffer.size, queryRows);
    this.attnRows = attn.rows;
    const mlp = trainerMlpBlocks(c, Tm, this.lora.config.rank, e, mlpRows, this.m.ctx.limits);
    this.mlpRows = mlp.rows;
    // Sizes from buffer-sizes.ts, which the memory plan (models/memory-plan.ts) reads too.
    const sizes = trainerBuffers(c, Tm, this.lora.config.rank, e, head, attn, mlp);
    const alloc = this.m.alloc;
    // The largest buffers live in the model's idle KV-cache slabs (the plan places them alike).
    const pool = shareKvCache ? this.m.kvPool : [];
    const list = trainerAllocations(sizes, c.numLayers, this.lora.config.targets, pool.map((b) => b.size));
    const got = new Map<string, Binding>();
    await alloc.guarded('TTT buffers', () => {
      for (const x of list) {
        got.set(x.label, x.borrow ? { buffer: pool[x.borrow.slab], offset: x.borrow.offset, size: x.spec.bytes } : alloc.create(x.label, x.spec.bytes, 'activations', usageOf(x.spec.kind)));
      }
    });
    const b = (label: string): Binding => got.get(label)!;
    const own = (label: string): GPUBuffer => got.get(label) as GPUBuffer; // never borrowed (trainerAllocations)
    this.run = own('ttt run');
    this.ids = own('ttt ids');
    this.targets = own('ttt targets');
    this.xs = Array.from({ length: c.numLayers + 1 }, (_, l) => b(`ttt x${l}`));
    this.hn = b('ttt hn');
    this.dhn = b('ttt dhn');
    this.logits = b('ttt logits');
    this.lossRows = own('ttt loss rows');
    this.lossOut = own('ttt loss');
    this.readback = own('ttt readback');
    this.w = {
      xn1: b('xn1'), q: b('q'), k: b('k'), kr: b('k rotated'), v: b('v'), probs: sizes.probs ? b('probs') : this.m.scoresBuffer, att: b('att'),
      x1: b('x1'), xn2: b('xn2'), gate: b('gate'), up: b('up'), act: b('act'),
      dx: b('dx'), dxn: b('dxn'), dq: b('dq'), dk: b('dk'), dv: b('dv'), datt: b('datt'), dact: b('dact'), dup: b('dup'),
      dxa: b('dxa'),
      xa: new Map(this.lora.config.targets.map((p) => [p, b(`xa ${p}`)])),
    };
    this.lora.trainingBuffers();
  }

  /** The whole sequence's run uniform, and the largest T it sees. */
  private whole(): Rows {
    return { run: this.run, maxT: this.maxTokens };
  }

  private async pipe(label: string, code: string): Promise<GPUComputePipeline> {
    return this.m.pipelines.get(label, code);
  }

  private step(label: string, p: GPUComputePipeline, buffers: (GPUBuffer | GPUBufferBinding | null)[], grid: Step['grid']): Step {
    return { label, pipeline: p, bind: this.m.bind(p, buffers), grid };
  }

  /**
   * A LoRA-training gemm c = alpha op(a) op(b) (+ beta c) of `shape`; a 'T' dimension is the run's
   * T, sized for this.maxTokens when the tile is picked and for the encoded T in the grid.
   */
  private async gemm(label: string, o: Omit<GemmOptions, 'f16' | 'tile'>, shape: GemmShape, a: Binding, b: Binding, c: Binding, rows: Rows): Promise<Step> {
    const tile = pickGemmTile(gemmDim(shape.M, rows.maxT), gemmDim(shape.N, rows.maxT));
    const p = await this.pipe(label, gemmWgsl({ ...o, f16: this.m.shader.f16, tile }));
    return this.step(label, p, [rows.run, this.m.uniform(label, gemmParams(shape)), a, b, c], (T) => gemmGrid(tile, gemmDim(shape.M, T), gemmDim(shape.N, T)));
  }

  /**
   * dx (=|+=) dy W of a frozen matrix, reading packed 4-bit weights directly; `run` gives T. A
   * matrix in row blocks sums over them: the first block as asked (= or +=), the others +=, each
   * reading its columns r0..r0+rows of dy (row stride W.N).
   */
  private async inputGradStep(label: string, run: GPUBuffer, dy: Binding, W: GpuMatrix, dx: Binding, accumulate: boolean): Promise<Step[]> {
    const steps: Step[] = [];
    for (const [i, b] of W.blocks.entries()) {
      const acc = accumulate || i > 0;
      const name = W.blocks.length === 1 ? label : `${label} #${i}`;
      const mb = await this.pipe(`${label} dx`, matmulBackwardInputWgsl({ f16: this.m.shader.f16, weights: W.kind, accumulate: acc, grad: 'f32' }));
      const mm = this.m.uniform(`${name} mm`, matmulParams(b.rows, W.K, { yOff: b.r0, ldy: W.N }));
      steps.push(this.step(`${name} dx`, mb, [run, mm, dy, b.w, b.sc, dx], (T) => matmulBackwardInputGrid(T, W.K)));
    }
    return steps;
  }

  /**
   * Backward of y = x W^T + s (x A^T) B^T for a frozen W (N, K) and a target's A (r, K), B (N, r):
   * dx (T, K) (=|+=) dy (T, N) W, then the LoRA terms with xa (T, r) = x A^T from the forward.
   * T is the run's (`rows`: the whole sequence, or one MLP block's rows, whose dA and dB sums
   * then add to the other blocks').
   */
  private async projBackward(label: string, dy: Binding, W: GpuMatrix, dx: Binding, accumulate: boolean, x: Binding, s: LoraSlot | undefined, xa: Binding | undefined, rows: Rows = this.whole()): Promise<Step[]> {
    const steps = await this.inputGradStep(label, rows.run, dy, W, dx, accumulate);
    if (!s || !xa) return steps;
    const r = this.lora.config.rank, scale = this.lora.scale, N = s.outDim, K = s.inDim;
    const params = this.lora.params, grads = this.lora.trainingBuffers().grads;
    const A = this.lora.binding(params, s, 'A'), B = this.lora.binding(params, s, 'B');
    const dA = this.lora.binding(grads, s, 'A'), dB = this.lora.binding(grads, s, 'B');
    const dxa = this.w.dxa;
    const f32 = { a: 'f32', b: 'f32', c: 'f32' } as const;
    // dB (N, r) += s dy^T (N, T) xa (T, r)
    steps.push(await this.gemm(`${label} dB`, { ...f32, transA: true, transB: false }, { M: N, N: r, K: 'T', alpha: scale, beta: 1 }, dy, xa, dB, rows));
    // dxa (T, r) = s dy (T, N) B (N, r)
    steps.push(await this.gemm(`${label} dxa`, { ...f32, transA: false, transB: false }, { M: 'T', N: r, K: N, alpha: scale }, dy, B, dxa, rows));
    // dA (r, K) += dxa^T (r, T) x (T, K); x is an activation (f16 with shader-f16)
    steps.push(await this.gemm(`${label} dA`, { ...f32, b: 'T', transA: true, transB: false }, { M: r, N: K, K: 'T', beta: 1 }, dxa, x, dA, rows));
    // dx (T, K) += dxa (T, r) A (r, K)
    steps.push(await this.gemm(`${label} dx lora`, { ...f32, transA: false, transB: false }, { M: 'T', N: K, K: r, beta: 1 }, dxa, A, dx, rows));
    return steps;
  }

  private async build(): Promise<void> {
    const m = this.m, c = m.config, sh = m.shader, w = this.w;
    const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D } = c;
    const layer = await LayerEncoder.create(m);
    const norm = await this.pipe('rmsnorm', rmsnormWgsl(sh));
    const bo = { ...sh, grad: 'f32' as const };
    const normB = await this.pipe('rmsnorm bwd', rmsnormBackwardWgsl(bo));
    const ropeB = await this.pipe('rope bwd', ropeBackwardWgsl(bo));
    const dvP = await this.pipe('attn dv', attnBackwardDvWgsl(bo));
    const dvAccP = await this.pipe('attn dv +=', attnBackwardDvWgsl({ ...bo, accumulate: true }));
    const dsP = await this.pipe('attn ds', attnBackwardScoresWgsl(bo));
    const dqP = await this.pipe('attn dq', attnBackwardDqWgsl(bo));
    const dkP = await this.pipe('attn dk', attnBackwardDkWgsl(bo));
    const dkAccP = await this.pipe('attn dk +=', attnBackwardDkWgsl({ ...bo, accumulate: true }));
    const swigluB = await this.pipe('swiglu bwd', swigluBackwardWgsl(bo));

    // The backward binds the forward's uniforms (same layouts).
    const { norm: normP, widthF: wF, ropeQ: ropeQP, ropeK: ropeKP, attention: attP } = layer.uniforms;
    const rows = (T: number): [number, number, number] => [T, 1, 1];
    this.embedSteps = await m.embedSteps(this.run, this.ids, this.xs[0]);

    // Attention in blocks of query rows t0..t0+rows-1 over keys 0..t0+rows-1: the block's rows
    // of q, att, datt and dq are bound at their offsets (rows keep them 256-byte aligned).
    const R = this.attnRows, Tm = this.maxTokens, e = sh.f16 ? 2 : 4;
    const keys: Step['grid'] = (_T, P) => grid1D(P * KV * D, 64);
    for (let i = 0, t0 = 0; t0 < Tm; i++, t0 += R) {
      const n = Math.min(R, Tm - t0), name = `attn block ${i}`;
      const qRows = (buffer: Binding, bytes: number): GPUBufferBinding => rowsOf(buffer, t0 * H * D * bytes, n * H * D * bytes);
      const run = m.alloc.create(`ttt attn run ${i}`, 16, 'activations', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      const fwd = layer.attentionSteps(name, { run, q: qRows(w.q, e), kCache: w.kr, vCache: w.v, scores: w.probs, att: qRows(w.att, e) });
      const bwd = (acc: boolean): Step[] => [
        this.step(`${name} dv`, acc ? dvAccP : dvP, [run, attP, w.probs, qRows(w.datt, 4), w.dv], keys), // dv (P, KV*D)
        this.step(`${name} ds`, dsP, [run, attP, w.probs, qRows(w.datt, 4), w.v, qRows(w.att, e)], (T) => [T, H, 1]), // probs -> dS (H, rows, P)
        this.step(`${name} dq`, dqP, [run, attP, w.probs, w.kr, qRows(w.dq, 4)], (T) => grid1D(T * H * D, 64)), // dq rows (rows, H*D)
        this.step(`${name} dk`, acc ? dkAccP : dkP, [run, attP, w.probs, qRows(w.q, e), w.dk], keys), // dk (P, KV*D)
      ];
      this.attnBlocks.push({ run, fwd, first: bwd(false), rest: [...fwd.slice(0, 2), ...bwd(true)] });
    }
    // The MLP in blocks of rows t0..t0+rows-1: each binds its rows of the (T, C) activations and
    // gradients and of the saved x A^T (rows keep them 256-byte aligned) and its own run uniform.
    const M = this.mlpRows, r = this.lora.config.rank;
    const mlpRows: { t0: number; n: number; rows: Rows }[] = [];
    for (let i = 0, t0 = 0; t0 < Tm; i++, t0 += M) {
      const run = m.alloc.create(`ttt mlp run ${i}`, 16, 'activations', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.mlpRuns.push(run);
      mlpRows.push({ t0, n: Math.min(M, Tm - t0), rows: { run, maxT: M } });
    }

    for (let l = 0; l < c.numLayers; l++) {
      const L: GpuLayer = m.layers[l];
      const xin = this.xs[l], xout = this.xs[l + 1];
      const slot = (p: Projection) => this.lora.slot(l, p);
      const xa = (p: Projection) => w.xa.get(p);
      // Forward of layer l from position 0 (also its recompute in the backward pass): the keys
      // rotate into kr, the values are read in place; the MLP runs per block of rows below.
      const buffers: LayerBuffers = {
        xIn: xin, xn1: w.xn1, q: w.q, k: w.k, v: w.v, kCache: w.kr, vCache: w.v, scores: w.probs, att: w.att,
        x1: w.x1, xn2: w.xn2, gate: w.gate, up: w.up, act: w.act, xOut: xout,
      };
      const parts = await layer.parts(l, L, buffers, { run: this.run, gated: false, maxTokens: this.maxTokens, xa });
      this.layerPre.push(parts.pre);
      this.layerPost.push(parts.post); // parts.attention and parts.mlp (whole sequence at once) are replaced by the blocks

      // Backward of layer l; on entry w.dx = dL/d(layer output), on exit dL/d(layer input).
      const blocks: MlpBlock[] = [];
      for (const { t0, n, rows: br } of mlpRows) {
        const at = (buffer: Binding, width: number, bytes: number): GPUBufferBinding => rowsOf(buffer, t0 * width * bytes, n * width * bytes);
        const xaRows = (p: Projection) => { const buf = xa(p); return buf ? at(buf, r, 4) : undefined; };
        const xn2 = at(w.xn2, C, e), dx = at(w.dx, C, 4), dxn = at(w.dxn, C, 4);
        // SwiGLU runs on a copy of the gate: the backward needs the pre-activation gate.
        const mlp = await layer.mlpSteps(l, L, { xn2, x1: at(w.x1, C, e), gate: w.gate, up: w.up, act: w.act, xOut: at(xout, C, e), xa: xaRows }, { run: br.run, gated: false, maxTokens: M });
        const b: Step[] = [...mlp.recompute];
        b.push(...await this.projBackward(`L${l} down`, dx, L.down, w.dact, false, w.act, slot('down_proj'), xaRows('down_proj'), br)); // dact (rows, F)
        b.push(this.step(`L${l} swiglu bwd`, swigluB, [br.run, wF, w.dact, w.gate, w.up, w.dup], (T) => grid1D(T * F, 256))); // dact <- d gate, dup (rows, F)
        b.push(...await this.projBackward(`L${l} gate`, w.dact, L.gate, dxn, false, xn2, slot('gate_proj'), xaRows('gate_proj'), br));
        b.push(...await this.projBackward(`L${l} up`, w.dup, L.up, dxn, true, xn2, slot('up_proj'), xaRows('up_proj'), br)); // dxn rows (rows, C)
        blocks.push({ fwd: mlp.forward, bwd: b });
      }
      this.mlpBlocks.push(blocks);
      const b: Step[] = [];
      b.push(this.step(`L${l} norm2 bwd`, normB, [this.run, normP, w.x1, L.postNorm, w.dxn, w.dx], rows)); // dx (T, C) += d x1
      b.push(...await this.projBackward(`L${l} o`, w.dx, L.o, w.datt, false, w.att, slot('o_proj'), xa('o_proj'))); // datt (T, H*D)
      this.bwdHead.push(b.splice(0)); // then the attention blocks: dv, dq, dk (T, ...)
      b.push(this.step(`L${l} rope q bwd`, ropeB, [this.run, ropeQP, m.ropeCos, m.ropeSin, w.dq], (T) => grid1D(T * H * D / 2, 256)));
      b.push(this.step(`L${l} rope k bwd`, ropeB, [this.run, ropeKP, m.ropeCos, m.ropeSin, w.dk], (T) => grid1D(T * KV * D / 2, 256)));
      b.push(...await this.projBackward(`L${l} q`, w.dq, L.q, w.dxn, false, w.xn1, slot('q_proj'), xa('q_proj')));
      b.push(...await this.projBackward(`L${l} k`, w.dk, L.k, w.dxn, true, w.xn1, slot('k_proj'), xa('k_proj')));
      b.push(...await this.projBackward(`L${l} v`, w.dv, L.v, w.dxn, true, w.xn1, slot('v_proj'), xa('v_proj'))); // dxn (T, C)
      b.push(this.step(`L${l} norm1 bwd`, normB, [this.run, normP, xin, L.inputNorm, w.dxn, w.dx], rows)); // dx (T, C) += d x
      this.bwdTail.push(b);
    }

    // Loss head: final norm on every row, then per chunk of rows lm_head -> cross-entropy (in
    // place to dlogits) -> dhn rows; rows without a target have target IGNORE (zero gradient).
    const xL = this.xs[c.numLayers];
    this.headSteps = [this.step('final norm', norm, [this.run, normP, xL, m.norm, this.hn], rows)];
    const ce = await this.pipe('cross entropy', crossEntropyWgsl());
    const nChunks = Math.ceil(this.maxTokens / this.chunkRows);
    for (let i = 0; i < nChunks; i++) {
      const row0 = i * this.chunkRows, R = this.chunkRows;
      const run = this.m.alloc.create(`ttt chunk run ${i}`, 16, 'activations', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      const ceU = this.m.alloc.create(`ttt ce ${i}`, 16, 'activations', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      const hnRows = rowsOf(this.hn, row0 * C * e, R * C * e);
      const dhnRows = rowsOf(this.dhn, row0 * C * 4, R * C * 4);
      const lm = await m.matmul(`lm_head chunk ${i}`, hnRows, m.lmHead, this.logits, { run, out: 'f32' });
      // Chunk steps are encoded with T = the chunk's row count.
      const ceStep = this.step(`ce ${i}`, ce, [ceU, this.targets, this.logits, this.lossRows], (rows) => [rows, 1, 1]);
      const back = await this.inputGradStep(`lm_head ${i}`, run, this.logits, m.lmHead, dhnRows, false);
      this.chunks.push({ run, ce: ceU, steps: [...lm, ceStep, ...back] });
    }
    const lossMean = await this.pipe('loss mean', lossMeanWgsl());
    this.lossMeanParams = m.alloc.create('loss mean params', 16, 'activations', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.headTail = [
      this.step('loss mean', lossMean, [this.lossMeanParams, this.lossRows, this.lossOut], () => [1, 1, 1]),
      this.step('final norm bwd', normB, [this.run, normP, xL, m.norm, this.dhn, w.dx], rows),
    ];

    this.adam = await GpuAdam.create(m, this.lora);
  }

  /** Writes ids, targets and per-call uniforms; returns the number of active targets. */
  private prepare(ids: ArrayLike<number>, mask: ArrayLike<number>): number {
    const T = ids.length, q = this.device.queue, V = this.m.config.vocabSize;
    const active = validateTrainingSequence(ids, mask, this.maxTokens, V);
    const targets = new Uint32Array(T);
    for (let t = 0; t < T; t++) targets[t] = t + 1 < T && mask[t + 1] === 1 ? ids[t + 1] : IGNORE_TARGET;
    q.writeBuffer(this.ids, 0, Uint32Array.from(ids));
    q.writeBuffer(this.targets, 0, targets);
    q.writeBuffer(this.run, 0, new Uint32Array([T, 0, T, 0]));
    this.attnBlocks.forEach((b, i) => {
      const t0 = i * this.attnRows, rows = Math.max(0, Math.min(this.attnRows, T - t0));
      q.writeBuffer(b.run, 0, new Uint32Array([rows, t0, t0 + rows, 0]));
    });
    this.mlpRuns.forEach((run, i) => {
      const rows = Math.max(0, Math.min(this.mlpRows, T - i * this.mlpRows));
      q.writeBuffer(run, 0, new Uint32Array([rows, 0, rows, 0]));
    });
    const invN = 1 / active;
    this.chunks.forEach((ch, i) => {
      const rows = Math.max(0, Math.min(this.chunkRows, T - i * this.chunkRows));
      q.writeBuffer(ch.run, 0, new Uint32Array([rows, 0, rows, 0]));
      const ce = new ArrayBuffer(16);
      new Uint32Array(ce).set([rows, V, i * this.chunkRows, 0]);
      new Float32Array(ce)[3] = invN;
      q.writeBuffer(ch.ce, 0, ce);
    });
    const lm = new ArrayBuffer(16);
    new Uint32Array(lm).set([T, 0, 0, 0]);
    new Float32Array(lm)[2] = 1 / active; // loss rows of inactive targets are 0
    q.writeBuffer(this.lossMeanParams, 0, lm);
    return active;
  }

  /**
   * Forward (+ backward) of the prepared sequence as a list of command buffers to submit in
   * order, each encoded when its turn comes (see submitInTurn): one per layer forward, the loss
   * head (split where it exceeds MAX_DISPATCHES_PER_SUBMIT), one per layer backward (recompute +
   * backward). A real-size step is ~3,500 dispatches: in one submit it could trip an OS GPU
   * watchdog, freeze the page, and no cancel could land before its end.
   */
  private passSegments(T: number, backward: boolean): Segment[] {
    const whole = (steps: Step[]): Unit => ({ steps, T });
    // The attention blocks holding queries < T: forward in order; backward from the last (whose
    // probs the forward just left in place) to the first, the others recomputing theirs.
    const R = this.attnRows, active = this.attnBlocks.slice(0, Math.ceil(T / R));
    const block = (i: number, steps: Step[]): Unit => ({ steps, T: Math.min(R, T - i * R), P: Math.min(T, (i + 1) * R) });
    // The MLP blocks holding rows < T, each run with its own row count.
    const M = this.mlpRows, mlpActive = (l: number) => this.mlpBlocks[l].slice(0, Math.ceil(T / M));
    const mlp = (l: number, part: 'fwd' | 'bwd'): Unit[] => mlpActive(l).map((b, i) => ({ steps: b[part], T: Math.min(M, T - i * M) }));
    const attention = (l: number): Unit[] => [whole(this.layerPre[l]), ...active.map((b, i) => block(i, b.fwd)), whole(this.layerPost[l])];
    const forward = (l: number): Unit[] => [...attention(l), ...mlp(l, 'fwd')];
    const attnBackward = active.map((b, i) => block(i, i === active.length - 1 ? b.first : b.rest)).reverse();
    const parts: { label: string; units: Unit[]; lossCopy?: boolean }[] = [];
    this.layerPre.forEach((_, l) => parts.push({ label: `forward ${l}`, units: l === 0 ? [whole(this.embedSteps), ...forward(l)] : forward(l) }));
    const head: Unit[] = [whole(this.headSteps)];
    this.chunks.forEach((ch, i) => {
      const rows = Math.min(this.chunkRows, T - i * this.chunkRows);
      if (rows > 0) head.push({ steps: ch.steps, T: rows });
    });
    head.push(whole(this.headTail));
    const headParts = packUnits(head, MAX_DISPATCHES_PER_SUBMIT);
    headParts.forEach((units, i) => parts.push({ label: 'loss head', units, lossCopy: i === headParts.length - 1 }));
    if (backward) {
      // Recompute up to norm2, then per MLP block its recompute and backward, then the rest.
      for (let l = this.layerPre.length - 1; l >= 0; l--) parts.push({ label: `backward ${l}`, units: [...attention(l), ...mlp(l, 'bwd'), whole(this.bwdHead[l]), ...attnBackward, whole(this.bwdTail[l])] });
    }
    return parts.map((part, i) => () => {
      const enc = this.device.createCommandEncoder({ label: `ttt ${part.label}` });
      if (i === 0 && backward) {
        enc.clearBuffer(this.lora.trainingBuffers().grads);
        const dx = rowsOf(this.w.dx, 0);
        enc.clearBuffer(dx.buffer, dx.offset, dx.size);
      }
      const pass = enc.beginComputePass();
      for (const u of part.units) this.m.encode(pass, u.steps, u.T, u.P ?? u.T);
      pass.end();
      if (part.lossCopy) enc.copyBufferToBuffer(this.lossOut, 0, this.readback, 0, 4);
      return enc.finish();
    });
  }

  /**
   * Submits the segments in order, at most two on the queue at once (the GPU never waits for the
   * CPU, and a yield per segment lets a cancel land), checking `signal` before each. Aborted: no
   * further segment is submitted, the submitted ones finish, then AbortError.
   */
  private async submitInTurn(segments: Segment[], signal?: AbortSignal): Promise<void> {
    let previous: Promise<unknown> | null = null;
    const wait = (p: Promise<unknown>) => Promise.race([p, this.m.ctx.lost]);
    for (const encode of segments) {
      if (signal?.aborted) break;
      this.device.queue.submit([encode()]);
      const done = this.device.queue.onSubmittedWorkDone();
      if (previous) await wait(previous);
      previous = done;
    }
    if (previous) await wait(previous);
    throwIfAborted(signal);
  }

  private async readLoss(): Promise<number> {
    await Promise.race([this.readback.mapAsync(GPUMapMode.READ), this.m.ctx.lost]);
    const v = new Float32Array(this.readback.getMappedRange().slice(0))[0];
    this.readback.unmap();
    return v;
  }

  /** Loss of the sequence at the current adapter (forward only). */
  async loss(ids: ArrayLike<number>, mask: ArrayLike<number>): Promise<number> {
    return this.exclusive(async () => {
      this.prepare(ids, mask);
      await this.submitInTurn(this.passSegments(ids.length, false));
      return this.readLoss();
    });
  }

  /** Loss and LoRA gradients (left in lora.trainingBuffers().grads; read them with lora.read). */
  async lossAndGrads(ids: ArrayLike<number>, mask: ArrayLike<number>): Promise<number> {
    return this.exclusive(async () => {
      this.prepare(ids, mask);
      await this.submitInTurn(this.passSegments(ids.length, true));
      return this.readLoss();
    });
  }

  /**
   * `steps` Adam steps on the adapter; the loss before each step, and after the last. Cancellable
   * within a step: the signal is checked before each of the step's submits (one per layer, see
   * passSegments), and an abort rejects with AbortError once the submitted work has finished. A
   * step is applied whole or not at all: Adam is its last submit, so a step cut short leaves the
   * adapter, the moments and the step count as the previous step left them (only the scratch
   * gradients are partial; the next step clears them), and reset() restores the initial adapter.
   */
  async train(ids: ArrayLike<number>, mask: ArrayLike<number>, opts: GpuTrainOptions, onStep?: (e: { step: number; steps: number; loss: number; ms: number }) => void): Promise<GpuTrainResult> {
    if (!Number.isInteger(opts.steps) || opts.steps < 0) throw new InvalidInputError(`steps must be a non-negative integer, got ${opts.steps}.`);
    if (!(opts.lr > 0)) throw new InvalidInputError(`lr must be > 0, got ${opts.lr}.`);
    return this.exclusive(async () => {
      const tokensTrained = this.prepare(ids, mask);
      const T = ids.length, t0 = performance.now();
      const losses: number[] = [], stepMs: number[] = [];
      for (let s = 1; s <= opts.steps; s++) {
        throwIfAborted(opts.signal);
        const s0 = performance.now();
        // Adam as the step's last command buffer: a step cancelled before it is encoded does not count.
        await this.submitInTurn([...this.passSegments(T, true), () => this.adam.encode(opts, T)], opts.signal);
        losses.push(await this.readLoss());
        stepMs.push(performance.now() - s0);
        onStep?.({ step: s, steps: opts.steps, loss: losses[s - 1], ms: stepMs[s - 1] });
        await new Promise((r) => setTimeout(r, 0)); // let a cancel message land
      }
      throwIfAborted(opts.signal);
      await this.submitInTurn(this.passSegments(T, false), opts.signal);
      const finalLoss = await this.readLoss();
      return { lossAtStart: losses[0] ?? finalLoss, losses, finalLoss, tokensTrained, timings: { totalMs: performance.now() - t0, stepMs } };
    });
  }

  /** B = 0, A back to its initial value, moments cleared: the model is the base model again. */
  reset(): void {
    if (this.busy) throw new InvalidInputError('Cannot reset while training; cancel first.');
    this.lora.upload(this.initial);
    this.lora.zeroB();
    const tb = this.lora.trainingBuffers();
    const enc = this.device.createCommandEncoder();
    enc.clearBuffer(tb.m);
    enc.clearBuffer(tb.v);
    enc.clearBuffer(tb.grads);
    this.device.queue.submit([enc.finish()]);
    this.adam.reset();
    this.m.loraEnabled = false; // B = 0 anyway; skipping the term makes the logits bit-identical
  }

  private async exclusive<R>(fn: () => Promise<R>): Promise<R> {
    if (this.busy) throw new InvalidInputError('The trainer is busy.');
    this.busy = true;
    this.m.loraEnabled = true;
    this.m.resetCache(); // training overwrites the KV cache (it borrows the slabs): the next forward starts at 0
    try {
      return await fn();
    } catch (e) {
      if (e instanceof Error && e.name === 'AbortError' && !(e instanceof AbortError)) throw new AbortError();
      throw e;
    } finally {
      this.busy = false;
    }
  }
}
