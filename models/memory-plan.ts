/**
 * The GPU memory plan of a model before anything is downloaded or allocated: every buffer that
 * GpuLlama.load (and GpuTrainer.create, with `ttt`) creates, with the bytes GpuAllocator accounts
 * for it, from the config and the load options alone. Checked against a device's limits, it says
 * what does not fit, by buffer and by WebGPU limit name.
 *
 * The sizes come from models/gpu/buffer-sizes.ts, which the engine allocates from too; the order
 * of the buffers and the contents of the small uniform buffers (deduplicated by contents, as
 * GpuLlama.uniform does) mirror the engine's code, and tests/models/memory-plan.test.ts checks the
 * plan against the allocator's live buffers on real loads. Pure: no GPU, no DOM.
 *
 * Scope: a load from a checkpoint that quantizes on the GPU (the first download). A load from the
 * weight cache allocates no quantize staging buffer; a write-through cache adds one transient
 * readback slice per tensor (models/cache/gpu-io.ts) at load time only. `total` is unchanged.
 */
import { parseLlamaConfig, PROJECTIONS, type LlamaConfig, type Projection } from './config.ts';
import { DeviceLimitsError, InvalidInputError } from './errors.ts';
import type { MemoryCategory } from './gpu/allocator.ts';
import {
  allLogitsBytes, allLogitsRows, blockLabel, bufferAllocSize, defaultMaxBatch, forwardActivationBuffers, kvSlabs, loraLayout, loraScratchBytes,
  lossHeadChunks, matrixBlocks, packUniform, qkvBufferName, qkvLayout, qkvSplitWords, QUANTIZE_PARAMS_BYTES, quantBufferBytes, quantizeStagingBytes, ropeTableBytes, trainerAllocations, trainerAttentionBlocks, trainerBuffers, trainerMlpBlocks,
  trainerMaxTokens, uniformKey, type BindingLimits, type BufferKind, type LoraSlot, type QkvLayout, type RowBlock,
} from './gpu/buffer-sizes.ts';
import { ADAM_PARAMS_BYTES, gradNormGroups } from './gpu/wgsl/adam.ts';
import { gemmParams } from './gpu/wgsl/gemm.ts';
import { matmulParams } from './gpu/wgsl/matmul.ts';
import { DEFAULT_LORA, projectionShape } from './lora/adapter.ts';
import type { LmHeadFormat } from './api.ts';
import { embedFormat, layerWeightNames, lmHeadName, resolveLmHead, type MatrixFormat } from './weights-plan.ts';

const CATEGORIES: MemoryCategory[] = ['weights', 'kvCache', 'activations', 'lora', 'optimizer', 'staging'];

export interface TttPlanOptions {
  rank: number;
  targets: Projection[];
  /** Tokens the trainer is built for (clamped to maxContext, as GpuTrainer.create does). */
  maxTokens: number;
  /** Loss-head rows per chunk (a positive multiple of 64); default as GpuTrainer. */
  chunkRows?: number;
  /** Attention query rows per block (GpuTrainerOptions.queryRows); default as GpuTrainer. */
  queryRows?: number;
  /** MLP token rows per block (GpuTrainerOptions.mlpRows); default as GpuTrainer. */
  mlpRows?: number;
  /** Training buffers in the idle KV-cache slabs (GpuTrainerOptions.shareKvCache); default true. */
  shareKvCache?: boolean;
  /** LoRA alpha (default DEFAULT_LORA's 16): only decides which 32-byte uniforms coincide. */
  alpha?: number;
}

export interface MemoryPlanOptions {
  weights: 'q4' | 'f32';
  /** The lm_head's format (and a tied embedding's); default resolveLmHead(weights), as the loader. */
  lmHead?: LmHeadFormat;
  /** Activation precision: 'f16' where the adapter has shader-f16 and it is enabled. */
  precision: 'f16' | 'f32';
  maxContext: number;
  /** Tokens per prefill chunk; default as GpuLlama (the score matrix within 128 MiB). */
  maxBatch?: number;
  /** Include the (maxBatch, V) logits buffer the first `forward(ids, { allLogits: true })` allocates. */
  allLogits?: boolean;
  /** Include a GpuTrainer (LoRA, Adam, training scratch) created after the load. */
  ttt?: TttPlanOptions;
  /**
   * The limits the engine splits for (GpuContext.limits): matrices over them become row blocks
   * (matrixBlocks), the loss-head chunk, the allLogits buffer and the default prefill chunk shrink
   * to fit. Without: every matrix whole, as on a device without limits.
   */
  limits?: BindingLimits;
}

/** A trainer buffer living at `offset` in KV slab `slab` while training. */
export interface BorrowedBuffer { label: string; bytes: number; slab: number; offset: number }

/** One buffer of the plan, with the bytes the allocator accounts (rounded up to 4). */
export interface PlannedBuffer {
  label: string;
  category: MemoryCategory;
  bytes: number;
  /** Bound as a storage buffer (so maxStorageBufferBindingSize applies to its bindings). */
  binding: boolean;
  /** Its largest binding where that is less than the whole buffer (a KV slab: one layer's K or V). */
  bindingBytes?: number;
  kind: BufferKind;
  /** 'load': the loader's staging, freed before load returns (counts in `peak`, not in `total`). */
  phase: 'resident' | 'load';
  /** Created by GpuLlama.load (+ allLogits) or by GpuTrainer.create. */
  owner: 'model' | 'trainer';
}

export interface MemoryPlan {
  config: LlamaConfig;
  /** The options with the engine's defaults filled in. */
  options: {
    weights: 'q4' | 'f32'; lmHead: LmHeadFormat; precision: 'f16' | 'f32'; maxContext: number; maxBatch: number; allLogits: boolean; limits: BindingLimits | null;
    /**
     * queryRows as resolved; attentionBlocks of them cover maxTokens; sharedProbs: in the model's
     * score buffer; mlpBlocks of mlpRows cover maxTokens.
     */
    ttt: (Required<TttPlanOptions> & { chunks: number; attentionBlocks: number; sharedProbs: boolean; mlpBlocks: number }) | null;
  };
  /** Every buffer in creation order: resident ones and the loader's staging (phase 'load'). */
  buffers: PlannedBuffer[];
  /**
   * The trainer's buffers placed in the idle KV-cache slabs (borrowFromPool) instead of buffers of
   * their own: not in `buffers`, no bytes of their own, and bindings checked against the limits.
   */
  borrowed: BorrowedBuffer[];
  /** Resident bytes per category: GpuAllocator.byCategory() once load (and create) returned. */
  byCategory: Record<MemoryCategory, number>;
  /** Steady state: resident bytes, = GpuAllocator.total after load (and create). */
  total: number;
  /** High-water mark, = GpuAllocator.peak: the larger of the end of the upload (weights + KV + staging) and `total`. */
  peak: number;
  largestBuffer: PlannedBuffer;
  /** The largest storage binding (`bytes`: of the binding, one layer's K or V for a KV slab; null only if none is). */
  largestBinding: PlannedBuffer | null;
}

/** Accumulates buffers in the engine's order, deduplicating uniforms by contents like GpuLlama.uniform. */
class PlanBuilder {
  readonly buffers: PlannedBuffer[] = [];
  readonly borrowed: BorrowedBuffer[] = [];
  owner: 'model' | 'trainer' = 'model';
  private readonly uniforms = new Set<string>();
  private live = 0;
  peak = 0;

  add(label: string, bytes: number, category: MemoryCategory, kind: BufferKind = 'storage', phase: PlannedBuffer['phase'] = 'resident', bindingBytes?: number): void {
    const b: PlannedBuffer = { label, category, bytes: bufferAllocSize(bytes), binding: kind === 'storage', kind, phase, owner: this.owner, ...(bindingBytes !== undefined ? { bindingBytes } : {}) };
    this.buffers.push(b);
    this.live += b.bytes;
    this.peak = Math.max(this.peak, this.live);
  }

  /** The loader's staging buffers are destroyed when the upload finishes. */
  freeLoadPhase(): void {
    for (const b of this.buffers) if (b.phase === 'load') this.live -= b.bytes;
  }

  uniform(label: string, words: ArrayLike<number> | ArrayBuffer, floatAt: number[] = []): void {
    const data = packUniform(words, floatAt);
    const key = uniformKey(data);
    if (this.uniforms.has(key)) return;
    this.uniforms.add(key);
    this.add(label, data.byteLength, 'activations', 'uniform');
  }
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

function checkOptions(opts: MemoryPlanOptions): void {
  if (opts.weights !== 'q4' && opts.weights !== 'f32') throw new InvalidInputError(`weights must be 'q4' or 'f32', got ${JSON.stringify(opts.weights)}.`);
  resolveLmHead(opts.weights, opts.lmHead); // InvalidInputError for an unknown lm_head format
  if (opts.precision !== 'f16' && opts.precision !== 'f32') throw new InvalidInputError(`precision must be 'f16' or 'f32', got ${JSON.stringify(opts.precision)}.`);
  if (!positiveInt(opts.maxContext)) throw new InvalidInputError(`maxContext must be a positive integer, got ${opts.maxContext}.`);
  if (opts.maxBatch !== undefined && !positiveInt(opts.maxBatch)) throw new InvalidInputError(`maxBatch must be a positive integer, got ${opts.maxBatch}.`);
  const t = opts.ttt;
  if (!t) return;
  if (!positiveInt(t.rank)) throw new InvalidInputError(`LoRA rank must be a positive integer, got ${t.rank}.`);
  if (!positiveInt(t.maxTokens)) throw new InvalidInputError(`TTT maxTokens must be a positive integer, got ${t.maxTokens}.`);
  if (t.alpha !== undefined && !(t.alpha > 0)) throw new InvalidInputError(`LoRA alpha must be > 0, got ${t.alpha}.`);
  if (t.chunkRows !== undefined && (!positiveInt(t.chunkRows) || t.chunkRows % 64 !== 0)) throw new InvalidInputError(`chunkRows must be a positive multiple of 64, got ${t.chunkRows}.`);
  if (t.queryRows !== undefined && !positiveInt(t.queryRows)) throw new InvalidInputError(`queryRows must be a positive integer, got ${t.queryRows}.`);
  if (t.mlpRows !== undefined && !positiveInt(t.mlpRows)) throw new InvalidInputError(`mlpRows must be a positive integer, got ${t.mlpRows}.`);
  if (t.targets.length === 0) throw new InvalidInputError('LoRA needs at least one target projection.');
  for (const p of t.targets) if (!PROJECTIONS.includes(p)) throw new InvalidInputError(`Unknown LoRA target "${p}"; expected some of ${PROJECTIONS.join(', ')}.`);
  if (new Set(t.targets).size !== t.targets.length) throw new InvalidInputError(`LoRA targets repeat: ${t.targets.join(', ')}.`);
}

/** Row blocks of an (N, K) weight matrix, as the uploader splits it (the embedding and lm_head in their own formats). */
type Blocks = (N: number, K: number, matrix?: 'embed' | 'lm_head') => RowBlock[];

/** GpuLlama.matmul's params per row block of W (N, K): label `${label} params` (`${label} #i params` when split). */
function matmulUniforms(p: PlanBuilder, blocks: Blocks, label: string, N: number, K: number, o: { single?: boolean; suffix?: string; ldy?: number; matrix?: 'lm_head' } = {}): void {
  const bs = blocks(N, K, o.matrix);
  bs.forEach((b, i) => {
    const name = bs.length === 1 ? label : `${label} #${i}`;
    p.uniform(`${name}${o.suffix ?? ' params'}`, matmulParams(b.rows, K, { single: o.single, yOff: b.r0, ldy: o.ldy ?? N }));
  });
}

/** GpuLlama.embedSteps' uniforms: (C, r0, rows) per row block of the embedding. */
function embedUniforms(p: PlanBuilder, c: LlamaConfig, blocks: Blocks): void {
  for (const b of blocks(c.vocabSize, c.hiddenSize, 'embed')) p.uniform('embed', [c.hiddenSize, b.r0, b.rows, 0]);
}

/** Projection -> [N (out), K (in)] of its frozen matrix. */
function matrixShape(config: LlamaConfig, p: Projection): [number, number] {
  const { outDim, inDim } = projectionShape(config, p);
  return [outDim, inDim];
}

/** Forward projections in GpuLlama.buildSteps order, with their label stems. */
const FORWARD_ORDER: [string, Projection][] = [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'o_proj'], ['gate', 'gate_proj'], ['up', 'up_proj'], ['down', 'down_proj']];
/** Backward projections in GpuTrainer.build order. */
const BACKWARD_ORDER: [string, Projection][] = [['down', 'down_proj'], ['gate', 'gate_proj'], ['up', 'up_proj'], ['o', 'o_proj'], ['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj']];

interface LoraPlan { rank: number; scale: number; slots: Map<string, LoraSlot>; floats: number }

/** The uniforms of GpuLlama.buildSteps (with the adapter's LoRA steps when `lora` is set). */
function forwardUniforms(p: PlanBuilder, c: LlamaConfig, blocks: Blocks, qkv: QkvLayout | null, lora: LoraPlan | null): void {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = c;
  p.uniform('norm params', [C, 0, c.rmsNormEps, 0], [2]);
  p.uniform('norm last params', [C, 1, c.rmsNormEps, 0], [2]);
  p.uniform('width C', [C]);
  p.uniform('width F', [F]);
  p.uniform('width KV*D', [KV * D]);
  p.uniform('rope q', [H, D]);
  p.uniform('rope k', [KV, D]);
  p.uniform('attention', [H, KV, D, 1 / Math.sqrt(D)], [3]);
  embedUniforms(p, c, blocks);
  for (let l = 0; l < c.numLayers; l++) {
    for (const [name, proj] of FORWARD_ORDER) {
      const [N, K] = matrixShape(c, proj);
      matmulUniforms(p, blocks, `L${l} ${name}`, N, K);
      const s = lora?.slots.get(`${l}.${proj}`);
      if (lora && s) loraForwardUniforms(p, lora, s);
      if (name === 'v' && qkv) {
        // The fused q/k/v matvec of decode (LayerEncoder.qkvMatvec).
        p.uniform(`L${l} qkv params`, matmulParams(qkv.rows, C));
        p.uniform(`L${l} qkv split`, qkvSplitWords(qkv));
      }
    }
  }
  matmulUniforms(p, blocks, 'lm_head', V, C, { single: true, matrix: 'lm_head' });
  p.uniform('argmax n', [V]); // greedy decode's argmax over the logits (GpuLlama.forwardArgmax)
}

function loraForwardUniforms(p: PlanBuilder, lora: LoraPlan, s: LoraSlot): void {
  p.uniform('lora xa params', gemmParams({ M: 'T', N: lora.rank, K: s.inDim }));
  p.uniform('lora y params', gemmParams({ M: 'T', N: s.outDim, K: lora.rank, alpha: lora.scale, beta: 1 }));
}

/** GpuTrainer.create after the model is loaded: LoRA, attach, allocate(), build(). */
function planTrainer(p: PlanBuilder, c: LlamaConfig, blocks: Blocks, qkv: QkvLayout | null, maxBatch: number, e: number, t: Required<TttPlanOptions>, head: { chunkRows: number; rowsPadded: number; chunks: number }, attn: { blocks: number; probsBytes: number }, mlp: { rows: number; blocks: number }, pool: number[]): void {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = c;
  const r = t.rank;
  const dims = Object.fromEntries(t.targets.map((q) => [q, projectionShape(c, q)]));
  const layout = loraLayout(Array.from({ length: c.numLayers }, () => dims), r);
  const lora: LoraPlan = { rank: r, scale: t.alpha / r, floats: layout.floats, slots: new Map(layout.slots.map((s) => [`${s.layer}.${s.proj}`, s])) };
  p.add('lora params', lora.floats * 4, 'lora');
  // GpuLlama.attachLora: the x A^T scratch, then the forward steps rebuilt with LoRA.
  p.add('lora xa', loraScratchBytes(maxBatch, r), 'lora');
  forwardUniforms(p, c, blocks, qkv, lora);
  // allocate()
  // Its largest buffers live in the idle KV-cache slabs while training.
  for (const a of trainerAllocations(trainerBuffers(c, t.maxTokens, r, e, head, attn, mlp), c.numLayers, t.targets, pool)) {
    if (a.borrow) p.borrowed.push({ label: a.label, bytes: a.spec.bytes, ...a.borrow });
    else p.add(a.label, a.spec.bytes, 'activations', a.spec.kind);
  }
  p.add('lora grads', lora.floats * 4, 'lora');
  p.add('adam m', lora.floats * 4, 'optimizer');
  p.add('adam v', lora.floats * 4, 'optimizer');
  // build(): uniforms shared through the model's cache, then the trainer's own small buffers.
  p.uniform('norm params', [C, 0, c.rmsNormEps, 0], [2]);
  p.uniform('width C', [C]);
  p.uniform('width F', [F]);
  p.uniform('rope q', [H, D]);
  p.uniform('rope k', [KV, D]);
  p.uniform('attention', [H, KV, D, 1 / Math.sqrt(D)], [3]);
  embedUniforms(p, c, blocks);
  for (let i = 0; i < attn.blocks; i++) p.add(`ttt attn run ${i}`, 16, 'activations', 'uniform');
  for (let i = 0; i < mlp.blocks; i++) p.add(`ttt mlp run ${i}`, 16, 'activations', 'uniform');
  for (let l = 0; l < c.numLayers; l++) {
    for (const [name, proj] of FORWARD_ORDER) {
      const [N, K] = matrixShape(c, proj);
      matmulUniforms(p, blocks, `L${l} ${name}`, N, K);
      const s = lora.slots.get(`${l}.${proj}`);
      if (s) loraForwardUniforms(p, lora, s);
    }
    for (const [name, proj] of BACKWARD_ORDER) {
      const [N, K] = matrixShape(c, proj);
      const label = `L${l} ${name}`;
      matmulUniforms(p, blocks, label, N, K, { suffix: ' mm' });
      const s = lora.slots.get(`${l}.${proj}`);
      if (!s) continue;
      p.uniform(`${label} dB`, gemmParams({ M: s.outDim, N: r, K: 'T', alpha: lora.scale, beta: 1 }));
      p.uniform(`${label} dxa`, gemmParams({ M: 'T', N: r, K: s.outDim, alpha: lora.scale }));
      p.uniform(`${label} dA`, gemmParams({ M: r, N: s.inDim, K: 'T', beta: 1 }));
      p.uniform(`${label} dx lora`, gemmParams({ M: 'T', N: s.inDim, K: r, beta: 1 }));
    }
  }
  for (let i = 0; i < head.chunks; i++) {
    p.add(`ttt chunk run ${i}`, 16, 'activations', 'uniform');
    p.add(`ttt ce ${i}`, 16, 'activations', 'uniform');
    matmulUniforms(p, blocks, `lm_head chunk ${i}`, V, C, { matrix: 'lm_head' });
    matmulUniforms(p, blocks, `lm_head ${i}`, V, C, { suffix: ' mm', matrix: 'lm_head' });
  }
  p.add('loss mean params', 16, 'activations', 'uniform');
  p.add('adam partials', gradNormGroups(lora.floats) * 4, 'optimizer');
  p.add('adam stats', 16, 'optimizer');
  p.add('adam params', ADAM_PARAMS_BYTES, 'optimizer', 'uniform');
  p.uniform('adam size', [lora.floats, 0, 0, 0]);
}

/**
 * Every GPU buffer GpuLlama.load (and GpuTrainer.create with `ttt`) would create for `config`,
 * without loading anything. `total` is the steady state after load, `peak` the high-water mark
 * during it (they differ when the 4-bit quantizer's ~32 MiB staging outlives smaller activations).
 * @example
 *   const plan = planMemory(config, { weights: 'q4', precision: 'f16', maxContext: 4096,
 *     ttt: { rank: 8, targets: [...PROJECTIONS], maxTokens: 1024 } });
 *   plan.byCategory.kvCache; // 32 layers x 2 x 4096 x 8 x 128 x 2 bytes = 512 MiB
 *   checkPlan(plan, device.limits); // [] when everything fits
 */
export function planMemory(config: LlamaConfig, opts: MemoryPlanOptions): MemoryPlan {
  checkOptions(opts);
  const c = config;
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = c;
  const e = opts.precision === 'f16' ? 2 : 4;
  const S = opts.maxContext;
  const limits = opts.limits;
  const maxBatch = opts.maxBatch ?? defaultMaxBatch(c, S, limits);
  const lmHead = resolveLmHead(opts.weights, opts.lmHead);
  const formatOf = (m?: 'embed' | 'lm_head'): MatrixFormat => (m === 'lm_head' ? lmHead : m === 'embed' ? embedFormat(c, opts.weights, lmHead) : opts.weights);
  const blocks: Blocks = (N, K, m) => matrixBlocks(N, K, formatOf(m), limits);
  const p = new PlanBuilder();

  // GpuLlama.upload through WeightUploader (norm vectors are f32).
  p.add('quantize params', QUANTIZE_PARAMS_BYTES, 'staging', 'uniform', 'load');
  let staging = false;
  const matrix = (name: string, N: number, K: number, m?: 'embed' | 'lm_head') => {
    const bs = blocks(N, K, m);
    const format = formatOf(m);
    bs.forEach((b, i) => {
      if (format === 'f32') return p.add(blockLabel(name, '', i, bs.length), b.rows * K * 4, 'weights');
      const q = quantBufferBytes(format, b.rows, K);
      p.add(blockLabel(name, format === 'q8' ? ' q8' : ' q4', i, bs.length), q.qweight, 'weights');
      p.add(blockLabel(name, ' scales', i, bs.length), q.scales, 'weights');
    });
    needStaging(format);
  };
  const needStaging = (format: MatrixFormat) => {
    if (format !== 'f32' && !staging) p.add('quantize staging', quantizeStagingBytes(limits), 'staging', 'storage', 'load');
    if (format !== 'f32') staging = true;
  };
  const kv = kvSlabs(c, S, e, limits);
  const qkv = qkvLayout(c, opts.weights, limits);
  for (let l = 0; l < c.numLayers; l++) {
    const n = layerWeightNames(l);
    const si = kv.slabs.findIndex((x) => x.first === l);
    if (si >= 0) p.add(`kv cache ${si}`, kv.slabs[si].bytes, 'kvCache', 'storage', 'resident', kv.bytes);
    p.add(n.inputNorm, C * 4, 'weights');
    if (qkv) {
      // q, k and v in one buffer pair (WeightUploader.qkv).
      p.add(blockLabel(qkvBufferName(l), opts.weights === 'q4' ? ' q4' : '', 0, 1), qkv.wBytes, 'weights');
      if (opts.weights === 'q4') p.add(blockLabel(qkvBufferName(l), ' scales', 0, 1), qkv.scBytes, 'weights');
      needStaging(opts.weights);
    } else {
      matrix(n.q, H * D, C);
      matrix(n.k, KV * D, C);
      matrix(n.v, KV * D, C);
    }
    matrix(n.o, C, H * D);
    p.add(n.postNorm, C * 4, 'weights');
    matrix(n.gate, F, C);
    matrix(n.up, F, C);
    matrix(n.down, C, F);
  }
  matrix('model.embed_tokens.weight', V, C, 'embed');
  if (!c.tieWordEmbeddings) matrix(lmHeadName(c), V, C, 'lm_head');
  p.add('model.norm.weight', C * 4, 'weights');
  p.freeLoadPhase();

  // allocateActivations, then buildSteps' uniforms.
  for (const [label, spec] of Object.entries(forwardActivationBuffers(c, maxBatch, S, e))) p.add(label, spec.bytes, 'activations', spec.kind);
  p.add('rope cos', ropeTableBytes(c, S), 'activations');
  p.add('rope sin', ropeTableBytes(c, S), 'activations');
  forwardUniforms(p, c, blocks, qkv, null);
  if (opts.allLogits) {
    p.add('logits all', allLogitsBytes(c, allLogitsRows(c, maxBatch, limits)), 'activations');
    p.uniform('norm params all', [C, 0, c.rmsNormEps, 0], [2]);
    matmulUniforms(p, blocks, 'lm_head all', V, C, { matrix: 'lm_head' });
  }

  let ttt: MemoryPlan['options']['ttt'] = null;
  if (opts.ttt) {
    const t = opts.ttt;
    const maxTokens = trainerMaxTokens(t.maxTokens, S);
    const head = lossHeadChunks(maxTokens, V, t.chunkRows, limits);
    // The query blocks borrow the model's prefill score buffer where they fit in it.
    const attn = trainerAttentionBlocks(c, maxTokens, e, forwardActivationBuffers(c, maxBatch, S, e).scores.bytes, t.queryRows);
    if (t.queryRows !== undefined && t.queryRows % attn.unit !== 0) throw new InvalidInputError(`queryRows must be a positive multiple of ${attn.unit} for this model, got ${t.queryRows}.`);
    const mlp = trainerMlpBlocks(c, maxTokens, t.rank, e, t.mlpRows, limits);
    if (t.mlpRows !== undefined && t.mlpRows % mlp.unit !== 0) throw new InvalidInputError(`mlpRows must be a positive multiple of ${mlp.unit} for this model, got ${t.mlpRows}.`);
    // LoraWeights keep their targets in PROJECTIONS order, so the engine's buffers follow it.
    const targets = PROJECTIONS.filter((q) => t.targets.includes(q));
    ttt = {
      rank: t.rank, alpha: t.alpha ?? DEFAULT_LORA.alpha, targets, maxTokens, chunkRows: head.chunkRows, chunks: head.chunks,
      queryRows: attn.rows, attentionBlocks: attn.blocks, sharedProbs: attn.probsBytes === 0, mlpRows: mlp.rows, mlpBlocks: mlp.blocks, shareKvCache: t.shareKvCache ?? true,
    };
    p.owner = 'trainer';
    planTrainer(p, c, blocks, qkv, maxBatch, e, ttt, head, attn, mlp, ttt.shareKvCache ? kv.slabs.map((x) => x.bytes) : []);
  }

  const byCategory = Object.fromEntries(CATEGORIES.map((k) => [k, 0])) as Record<MemoryCategory, number>;
  for (const b of p.buffers) if (b.phase === 'resident') byCategory[b.category] += b.bytes;
  const total = CATEGORIES.reduce((s, k) => s + byCategory[k], 0);
  const largest = (list: PlannedBuffer[]) => list.reduce<PlannedBuffer | null>((m, b) => (!m || b.bytes > m.bytes ? b : m), null);
  return {
    config: c,
    options: { weights: opts.weights, lmHead, precision: opts.precision, maxContext: S, maxBatch, allLogits: opts.allLogits ?? false, limits: limits ?? null, ttt },
    buffers: p.buffers,
    borrowed: p.borrowed,
    byCategory,
    total,
    peak: p.peak,
    largestBuffer: largest(p.buffers)!,
    largestBinding: largest(p.buffers.filter((b) => b.binding).map((b) => ({ ...b, bytes: b.bindingBytes ?? b.bytes }))),
  };
}

/**
 * planMemory from a raw `config.json` object (parsed and validated by parseLlamaConfig, so a
 * config the engine cannot run throws ConfigError): what the model manager calls before a download.
 * @example
 *   const plan = planFromConfigJson(JSON.parse(await (await fetch(url + 'config.json')).text()),
 *     { weights: 'q4', precision: 'f16', maxContext: 4096 });
 *   assertPlanFits(plan, adapter.limits);
 */
export function planFromConfigJson(raw: unknown, opts: MemoryPlanOptions): MemoryPlan {
  return planMemory(parseLlamaConfig(raw), opts);
}

/** The WebGPU limits a plan is checked against (a GPUSupportedLimits object satisfies it). */
export interface PlanLimits extends BindingLimits {
  maxUniformBufferBindingSize?: number;
}

export interface PlanProblem {
  buffer: string;
  bytes: number;
  category: MemoryCategory;
  limit: 'maxBufferSize' | 'maxStorageBufferBindingSize' | 'maxUniformBufferBindingSize';
  limitBytes: number;
  message: string;
}

/** "262.7 MB (250.5 MiB)" */
function size(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB (${mib(bytes)})`;
}

/** "128 MiB" for whole MiB, else "250.5 MiB"; small limits in bytes. */
function mib(bytes: number): string {
  if (bytes < 2 ** 20) return `${bytes} bytes`;
  const m = bytes / 2 ** 20;
  return `${Number.isInteger(m) ? m : m.toFixed(1)} MiB`;
}

/**
 * The buffers of `plan` that break `limits`, in creation order: one problem per buffer (the
 * buffer size if it is over maxBufferSize, else the binding), naming the buffer, its bytes and
 * the limit by its WebGPU name. The loader's staging buffers are checked too. Empty when it fits.
 * @example
 *   checkPlan(plan, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 })[0].message;
 *   // "model.embed_tokens.weight q4 needs 262.7 MB (250.5 MiB) in one storage binding; this GPU's maxStorageBufferBindingSize is 128 MiB"
 */
export function checkPlan(plan: MemoryPlan, limits: PlanLimits): PlanProblem[] {
  const out: PlanProblem[] = [];
  for (const b of plan.buffers) {
    const problem = (limit: PlanProblem['limit'], limitBytes: number, what: string, bytes = b.bytes) =>
      out.push({ buffer: b.label, bytes, category: b.category, limit, limitBytes, message: `${b.label} needs ${size(bytes)} in ${what}; this GPU's ${limit} is ${mib(limitBytes)}` });
    // A buffer over maxBufferSize cannot be created at all: that is its one problem.
    if (b.bytes > limits.maxBufferSize) problem('maxBufferSize', limits.maxBufferSize, 'one buffer');
    else if (b.binding && (b.bindingBytes ?? b.bytes) > limits.maxStorageBufferBindingSize) problem('maxStorageBufferBindingSize', limits.maxStorageBufferBindingSize, 'one storage binding', b.bindingBytes ?? b.bytes);
    if (b.kind === 'uniform' && limits.maxUniformBufferBindingSize !== undefined && b.bytes > limits.maxUniformBufferBindingSize) {
      problem('maxUniformBufferBindingSize', limits.maxUniformBufferBindingSize, 'one uniform binding');
    }
  }
  for (const b of plan.borrowed) {
    if (b.bytes <= limits.maxStorageBufferBindingSize) continue;
    const limitBytes = limits.maxStorageBufferBindingSize;
    out.push({ buffer: b.label, bytes: b.bytes, category: 'activations', limit: 'maxStorageBufferBindingSize', limitBytes, message: `${b.label} needs ${size(b.bytes)} in one storage binding; this GPU's maxStorageBufferBindingSize is ${mib(limitBytes)}` });
  }
  return out;
}

/**
 * Throws DeviceLimitsError (code 'device-limits') listing what does not fit, largest first, if anything.
 * @example assertPlanFits(planMemory(config, opts), device.limits); // before downloading 16 GB
 */
export function assertPlanFits(plan: MemoryPlan, limits: PlanLimits): void {
  const problems = checkPlan(plan, limits);
  if (!problems.length) return;
  const shown = [...problems].sort((a, b) => b.bytes - a.bytes).slice(0, 4).map((p) => p.message);
  if (problems.length > shown.length) shown.push(`and ${problems.length - shown.length} more`);
  const o = plan.options;
  const hint = problems.some((p) => p.category !== 'weights')
    ? ` A smaller context (${o.maxContext})${o.ttt ? ` or TTT length (${o.ttt.maxTokens} tokens)` : ''} shrinks the activation buffers.`
    : '';
  throw new DeviceLimitsError(`This model cannot run on this GPU: ${shown.join('; ')}.${hint}`, problems.map(({ buffer, bytes, limit, limitBytes }) => ({ buffer, bytes, limit, limitBytes })));
}

const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;

/**
 * A one-line summary in GB (10^9 bytes): weights, KV cache, the model's activations, TTT (every
 * buffer the trainer adds: LoRA, Adam, training scratch), resident total and peak.
 * @example describePlan(plan); // "weights 4.52 GB (4-bit), KV cache 0.54 GB (4096 tokens, f16), ..."
 */
export function describePlan(plan: MemoryPlan): string {
  const o = plan.options;
  const resident = plan.buffers.filter((b) => b.phase === 'resident');
  const sum = (f: (b: PlannedBuffer) => boolean) => resident.filter(f).reduce((s, b) => s + b.bytes, 0);
  const parts = [
    `weights ${gb(plan.byCategory.weights)} (${o.weights === 'q4' ? '4-bit' : 'f32'}${o.lmHead !== o.weights ? `, lm_head ${o.lmHead === 'q8' ? '8-bit' : o.lmHead === 'q4' ? '4-bit' : 'f32'}` : ''})`,
    `KV cache ${gb(plan.byCategory.kvCache)} (${o.maxContext} tokens, ${o.precision})`,
    `activations ${gb(sum((b) => b.owner === 'model' && b.category === 'activations'))} (prefill chunk ${o.maxBatch})`,
  ];
  if (o.ttt) parts.push(`TTT ${gb(sum((b) => b.owner === 'trainer'))} (rank ${o.ttt.rank}, ${o.ttt.targets.length} targets, ${o.ttt.maxTokens} tokens)`);
  parts.push(`total ${gb(plan.total)}${plan.peak > plan.total ? ` (peak while loading ${gb(plan.peak)})` : ''}`);
  return parts.join(', ');
}
