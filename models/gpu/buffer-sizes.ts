/**
 * Sizes of the engine's GPU buffers as pure functions, used by the engine when it allocates
 * (gpu-llama.ts, gpu-trainer.ts, gpu-weights.ts, gpu-lora.ts, allocator.ts) and by the memory
 * plan (models/memory-plan.ts) before anything is loaded, so the two cannot drift. No GPU here.
 */
import type { LlamaConfig, Projection } from '../config.ts';
import { PROJECTIONS } from '../config.ts';
import { Q4_GROUP } from '../quant/q4.ts';
import type { MatrixFormat } from '../weights-plan.ts';

/** How a buffer is used: bound as storage, bound as a uniform, or mapped for reading. */
export type BufferKind = 'storage' | 'uniform' | 'readback';

/** A buffer's label, requested bytes and kind, as the engine creates it. */
export interface BufferSpec {
  bytes: number;
  kind: BufferKind;
}

/**
 * Bytes GpuAllocator.create really allocates for a request of `size`: rounded up to 4, at least 4.
 * @example bufferAllocSize(6); // 8
 */
export function bufferAllocSize(size: number): number {
  return Math.max(4, Math.ceil(size / 4) * 4);
}

/** The WebGPU limits buffers are sized against (a GPUSupportedLimits object satisfies it). */
export interface BindingLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/**
 * The most bytes one storage buffer of the engine may have: it is bound whole, so both limits apply.
 * @example bindingLimit({ maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 27 }); // 134217728
 */
export function bindingLimit(limits: BindingLimits): number {
  return Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
}

/** Rows [r0, r0 + rows) of a weight matrix held in their own GPU buffer(s). */
export interface RowBlock {
  r0: number;
  rows: number;
}

/** Bytes per row of the largest buffer of an (N, K) matrix: f32 rows, or a q4 / q8 row's packed weights. */
function largestRowBytes(K: number, format: MatrixFormat): number {
  return format === 'f32' ? K * 4 : Math.ceil(K / Q4_GROUP) * (format === 'q8' ? 32 : 16);
}

/**
 * How a weight matrix (N, K) is split into row blocks so every buffer fits `limits`: one block
 * when it fits whole (or without limits), else the fewest blocks of an even row count (q4 scales
 * pack two per u32, so an even row count keeps every block's scales on whole words of the
 * tensor's byte stream; q8 likewise). When even two rows do not fit, one block: the memory plan names it.
 * @example matrixBlocks(128256, 4096, 'q4', { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 27 });
 *   // [{ r0: 0, rows: 64128 }, { r0: 64128, rows: 64128 }]
 */
export function matrixBlocks(N: number, K: number, format: MatrixFormat, limits?: BindingLimits): RowBlock[] {
  if (!limits) return [{ r0: 0, rows: N }];
  const rowBytes = largestRowBytes(K, format);
  const maxRows = Math.floor(bindingLimit(limits) / rowBytes / 2) * 2;
  if (N * rowBytes <= bindingLimit(limits) || maxRows < 2) return [{ r0: 0, rows: N }];
  const n = Math.ceil(N / maxRows);
  const rows = Math.ceil(N / n / 2) * 2; // balanced; <= maxRows as maxRows is even
  const out: RowBlock[] = [];
  for (let r0 = 0; r0 < N; r0 += rows) out.push({ r0, rows: Math.min(rows, N - r0) });
  return out;
}

/**
 * Where q, k and v of one layer sit in the one matrix (and buffer pair) they share, so decode
 * reads them as one matvec (GpuLayer.qkv): rows q at 0, k at kStart, v at vStart, each part
 * starting on a STORAGE_OFFSET_ALIGN byte boundary of the weights and of the scales (q4) so it also
 * binds as a matrix of its own (prefill, training). Zero rows pad the gaps: none for a real model
 * (4,096 or 1,024 rows of 4,096), a few for small ones. Byte ranges are [offset, bytes].
 */
export interface QkvLayout {
  qRows: number; kvRows: number;
  kStart: number; vStart: number;
  /** Rows of the fused matrix, padding included. */
  rows: number;
  wBytes: number; scBytes: number;
  w: [q: [number, number], k: [number, number], v: [number, number]];
  sc: [q: [number, number], k: [number, number], v: [number, number]] | null;
}

/**
 * The fused q/k/v layout of layers of `format`, or null where the fused buffer would not fit
 * `limits` (then q, k and v are matrices of their own).
 * @example qkvLayout(finemedConfig, 'q4'); // { qRows: 4096, kvRows: 1024, kStart: 4096, vStart: 5120, rows: 6144, ... }
 */
export function qkvLayout(c: LlamaConfig, format: 'f32' | 'q4', limits?: BindingLimits): QkvLayout | null {
  const K = c.hiddenSize, G = Math.ceil(K / Q4_GROUP);
  const qRows = c.numHeads * c.headDim, kvRows = c.numKvHeads * c.headDim;
  const wRow = format === 'f32' ? K * 4 : G * 16;
  const scRow = G * 2; // q4: f16 scales, two per u32
  // The fewest rows whose weights (and scales) span whole alignment units (both powers of two).
  const unit = (rowBytes: number) => STORAGE_OFFSET_ALIGN / gcd(STORAGE_OFFSET_ALIGN, rowBytes);
  const align = Math.max(unit(wRow), format === 'f32' ? 1 : unit(scRow));
  const up = (n: number) => Math.ceil(n / align) * align;
  const kStart = up(qRows), vStart = up(kStart + kvRows), rows = vStart + kvRows;
  const bytes = (n: number) => (format === 'f32' ? { qweight: n * K * 4, scales: 0 } : q4BufferBytes(n, K));
  const wBytes = bytes(rows).qweight;
  if (limits && wBytes > bindingLimit(limits)) return null;
  const range = (start: number, row: number, size: number): [number, number] => [start * row, size];
  return {
    qRows, kvRows, kStart, vStart, rows, wBytes, scBytes: bytes(rows).scales,
    w: [range(0, wRow, bytes(qRows).qweight), range(kStart, wRow, bytes(kvRows).qweight), range(vStart, wRow, bytes(kvRows).qweight)],
    sc: format === 'f32' ? null : [range(0, scRow, bytes(qRows).scales), range(kStart, scRow, bytes(kvRows).scales), range(vStart, scRow, bytes(kvRows).scales)],
  };
}

/** The Qkv uniform of the fused matvec (matvecWgsl with `qkv`): where each part's rows start. */
export function qkvSplitWords(q: QkvLayout): number[] {
  return [q.qRows, q.kStart, q.vStart, q.kvRows];
}

/** The label of layer `l`'s fused q/k/v weights (not a checkpoint tensor: q, k and v are cached apart). */
export function qkvBufferName(l: number): string {
  return `model.layers.${l}.self_attn.qkv_proj.weight`;
}

/**
 * The label of a weight buffer: `name` (+ ' q4' / ' q8' / ' scales'), with ' #i' for block i of a split matrix.
 * @example blockLabel('lm_head.weight', ' q4', 1, 2); // 'lm_head.weight q4 #1'
 */
export function blockLabel(name: string, part: '' | ' q4' | ' q8' | ' scales', block: number, blocks: number): string {
  return blocks === 1 ? name + part : `${name}${part} #${block}`;
}

/** Bytes of f32 rows the weight uploader streams per chunk (bounded: no tensor held whole in JS). */
export const UPLOAD_CHUNK_BYTES = 32 * 2 ** 20;
/** The quantizer's staging buffer: one chunk plus slack for a chunk's rounding. */
export const QUANTIZE_STAGING_BYTES = UPLOAD_CHUNK_BYTES + 8 * 4 * 4096;
/**
 * The quantizer's staging buffer for `limits`: QUANTIZE_STAGING_BYTES, at most the binding limit
 * (it is bound whole). Chunks are sized to it (uploadRowsPerChunk).
 */
export function quantizeStagingBytes(limits?: BindingLimits): number {
  return limits ? Math.min(QUANTIZE_STAGING_BYTES, bindingLimit(limits)) : QUANTIZE_STAGING_BYTES;
}

/**
 * Rows of a K-wide f32 matrix streamed per upload chunk: UPLOAD_CHUNK_BYTES (or the staging
 * buffer, if smaller) of rows, even so every chunk starts on a whole u32 of q4 scales; at least 2
 * (2 rows over the staging buffer would mean a limit under 8 K bytes, which the plan refuses anyway).
 * @example uploadRowsPerChunk(4096); // 2048
 */
export function uploadRowsPerChunk(K: number, limits?: BindingLimits): number {
  const bytes = Math.min(UPLOAD_CHUNK_BYTES, quantizeStagingBytes(limits));
  const rows = Math.max(2, Math.floor(bytes / (K * 4)));
  return rows - (rows % 2);
}

/** The quantizer's uniform (rows, K, G, row0). */
export const QUANTIZE_PARAMS_BYTES = 16;

/**
 * The two GPU buffers of a 4-bit matrix (N, K): packed nibbles (16 bytes per group of 32) and
 * f16 scales stored two per u32.
 * @example q4BufferBytes(4096, 4096); // { qweight: 8388608, scales: 1048576 }
 */
export function q4BufferBytes(N: number, K: number): { qweight: number; scales: number } {
  const G = Math.ceil(K / Q4_GROUP);
  return { qweight: N * G * 16, scales: Math.ceil((N * G) / 2) * 4 };
}

/**
 * The two GPU buffers of an 8-bit matrix (N, K) (models/quant/q8.ts): int8 weights (32 bytes per
 * group of 32) and f16 scales stored two per u32.
 * @example q8BufferBytes(128256, 4096); // { qweight: 525336576, scales: 32833536 }
 */
export function q8BufferBytes(N: number, K: number): { qweight: number; scales: number } {
  const G = Math.ceil(K / Q4_GROUP);
  return { qweight: N * G * 32, scales: Math.ceil((N * G) / 2) * 4 };
}

/**
 * The packed-weight and scale buffers of a quantized (N, K) matrix in `format`.
 * @example quantBufferBytes('q8', 512, 64); // { qweight: 32768, scales: 2048 }
 */
export function quantBufferBytes(format: 'q4' | 'q8', N: number, K: number): { qweight: number; scales: number } {
  return format === 'q8' ? q8BufferBytes(N, K) : q4BufferBytes(N, K);
}

/** Budget for the attention score matrix (H, maxBatch, maxContext) f32: bounds the prefill chunk. */
export const SCORES_BUDGET = 128 * 2 ** 20;

/**
 * Tokens per prefill chunk when the caller gives none: at most 512, at most the context, and the
 * (H, maxBatch, maxContext) f32 score matrix within SCORES_BUDGET (and the binding limit, if given).
 * @example defaultMaxBatch(config, 4096); // 256 for FineMedLM-o1 (32 heads)
 */
export function defaultMaxBatch(config: LlamaConfig, maxContext: number, limits?: BindingLimits): number {
  const perToken = config.numHeads * maxContext * 4;
  const budget = limits ? Math.min(SCORES_BUDGET, bindingLimit(limits)) : SCORES_BUDGET;
  return Math.max(1, Math.min(512, maxContext, Math.floor(budget / perToken)));
}

/** Bytes of one layer's K (or V) cache: (maxContext, KV, D) in the activation type. */
export function kvCacheBytes(config: LlamaConfig, maxContext: number, actBytes: number): number {
  return maxContext * config.numKvHeads * config.headDim * actBytes;
}

/** Bytes of one buffer holding several layers' KV caches: WebGPU's default maxBufferSize. */
export const KV_SLAB_BYTES = 256 * 2 ** 20;

/**
 * The KV cache in slabs: each slab holds `count` consecutive layers from `first`, layer i of the
 * slab with K at offset i * 2 * `stride` and V at (2i + 1) * `stride` (stride: one cache, 256-byte
 * aligned). Slabs of up to KV_SLAB_BYTES (or maxBufferSize), not 2 buffers per layer, so that the
 * trainer can borrow the idle cache in pieces as large as its own buffers (see borrowFromPool).
 * @example kvSlabs(finemedLayerConfig(32, 128256), 4096, 2).slabs.length; // 2 slabs of 16 layers (256 MiB)
 */
export function kvSlabs(config: LlamaConfig, maxContext: number, actBytes: number, limits?: BindingLimits): { stride: number; bytes: number; slabs: { first: number; count: number; bytes: number }[] } {
  const bytes = kvCacheBytes(config, maxContext, actBytes);
  const stride = Math.ceil(bytes / STORAGE_OFFSET_ALIGN) * STORAGE_OFFSET_ALIGN;
  const cap = Math.min(KV_SLAB_BYTES, limits?.maxBufferSize ?? Infinity);
  const perSlab = Math.max(1, Math.floor(cap / (2 * stride)));
  const slabs: { first: number; count: number; bytes: number }[] = [];
  for (let first = 0; first < config.numLayers; first += perSlab) {
    const count = Math.min(perSlab, config.numLayers - first);
    slabs.push({ first, count, bytes: (2 * count - 1) * stride + bytes });
  }
  return { stride, bytes, slabs };
}

/**
 * Places buffers in the free space of `pool` (the idle KV-cache slabs while training), largest
 * first, each in the first slab with room, at 256-byte aligned offsets; what fits nowhere is left
 * out. Deterministic: the trainer and the memory plan both call it.
 * @example borrowFromPool([1024], [{ label: 'a', bytes: 600 }, { label: 'b', bytes: 300 }]); // a at 0, b at 768 of slab 0
 */
export function borrowFromPool(pool: number[], requests: { label: string; bytes: number }[]): Map<string, { slab: number; offset: number }> {
  const used = pool.map(() => 0);
  const out = new Map<string, { slab: number; offset: number }>();
  const order = requests.map((r, i) => ({ ...r, i })).sort((a, b) => b.bytes - a.bytes || a.i - b.i);
  for (const r of order) {
    for (let slab = 0; slab < pool.length; slab++) {
      const offset = Math.ceil(used[slab] / STORAGE_OFFSET_ALIGN) * STORAGE_OFFSET_ALIGN;
      if (offset + r.bytes > pool[slab]) continue;
      out.set(r.label, { slab, offset });
      used[slab] = offset + r.bytes;
      break;
    }
  }
  return out;
}

/** Bytes of each RoPE table (cos, sin): (maxContext, D/2) f32. */
export function ropeTableBytes(config: LlamaConfig, maxContext: number): number {
  return maxContext * (config.headDim / 2) * 4;
}

/**
 * GpuLlama's activation buffers for prefill chunks of `maxBatch` tokens, keyed by label.
 * @example forwardActivationBuffers(config, 256, 4096, 2).scores.bytes; // H * 256 * 4096 * 4
 */
export function forwardActivationBuffers(config: LlamaConfig, maxBatch: number, maxContext: number, actBytes: number) {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = config;
  const B = maxBatch, e = actBytes;
  const s = (bytes: number): BufferSpec => ({ bytes, kind: 'storage' });
  return {
    ids: s(B * 4),
    'run params': { bytes: 16, kind: 'uniform' } as BufferSpec,
    x: s(B * C * e), xn: s(B * C * e),
    q: s(B * H * D * e), k: s(B * KV * D * e), v: s(B * KV * D * e),
    att: s(B * H * D * e), proj: s(B * C * e),
    gate: s(B * F * e), up: s(B * F * e),
    scores: s(H * B * maxContext * 4),
    hidden: s(C * e),
    logits: s(V * 4),
    argmax: s(16), // [index, max bits] of the logits: greedy decode reads back 4 bytes, not V * 4
    'logits readback': { bytes: V * 4, kind: 'readback' } as BufferSpec,
  };
}

/**
 * Rows of the all-positions logits buffer: maxBatch, fewer if (maxBatch, V) f32 would break the
 * binding limit (an allLogits forward then runs in chunks of this many tokens); at least 1.
 * @example allLogitsRows(finemedLayerConfig(1, 128256), 256, lavapipe.limits); // 65
 */
export function allLogitsRows(config: LlamaConfig, maxBatch: number, limits?: BindingLimits): number {
  if (!limits) return maxBatch;
  return Math.max(1, Math.min(maxBatch, Math.floor(bindingLimit(limits) / (config.vocabSize * 4))));
}

/** The (rows, V) f32 logits of every position (rows = allLogitsRows), allocated on the first `allLogits` forward. */
export function allLogitsBytes(config: LlamaConfig, rows: number): number {
  return rows * config.vocabSize * 4;
}

/** The LoRA forward scratch x A^T (maxBatch, r) f32 GpuLlama allocates when an adapter attaches. */
export function loraScratchBytes(maxBatch: number, rank: number): number {
  return maxBatch * rank * 4;
}

/** Rows of logits per chunk of the trainer's loss head: bounds the (rows, V) f32 buffer at ~64 MiB (or the binding limit). */
export const LOGITS_BUDGET = 64 * 2 ** 20;

/** Tokens the trainer is built for: the request (default 1024), at most the model's context. */
export function trainerMaxTokens(requested: number | undefined, maxContext: number): number {
  return Math.min(requested ?? 1024, maxContext);
}

/**
 * The trainer's loss-head chunking: rows per chunk (multiples of 64 keep every chunk's binding
 * offset 256-byte aligned), rows padded to whole chunks, and the chunk count.
 * @example lossHeadChunks(1024, 128256); // { chunkRows: 128, rowsPadded: 1024, chunks: 8 }
 */
export function lossHeadChunks(maxTokens: number, vocabSize: number, chunkRows?: number, limits?: BindingLimits): { chunkRows: number; rowsPadded: number; chunks: number } {
  const budget = limits ? Math.min(LOGITS_BUDGET, bindingLimit(limits)) : LOGITS_BUDGET;
  const rows = chunkRows ?? Math.min(Math.ceil(maxTokens / 64) * 64, Math.max(64, Math.floor(budget / (vocabSize * 4) / 64) * 64));
  const rowsPadded = Math.ceil(maxTokens / rows) * rows; // chunk bindings never run past the end
  return { chunkRows: rows, rowsPadded, chunks: Math.ceil(maxTokens / rows) };
}

/** Storage bindings start at multiples of this many bytes (WebGPU's default minStorageBufferOffsetAlignment). */
export const STORAGE_OFFSET_ALIGN = 256;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * The trainer's attention runs in blocks of query rows (GpuTrainer; the probabilities of one block
 * are (H, rows, P <= maxTokens) f32, so they grow linearly with the length, not with its square).
 * Rows are a multiple of `unit`, so every block's q/att (actBytes) and dq/datt (f32) bindings start
 * on STORAGE_OFFSET_ALIGN. By default the block fills the model's prefill score buffer (H,
 * maxBatch, maxContext) f32 (`scoresBytes`), which is idle while training: then `probsBytes` is 0
 * (no buffer of its own). Requested `rows` (a multiple of `unit`), or a score buffer too small for
 * one unit, gives the trainer its own (H, rows, maxTokens) buffer when the shared one cannot hold it.
 * @example trainerAttentionBlocks(finemedLayerConfig(32, 128256), 1024, 2, 32 * 256 * 4096 * 4);
 *   // { rows: 1024, blocks: 1, unit: 1, probsBytes: 0 }
 */
export function trainerAttentionBlocks(config: LlamaConfig, maxTokens: number, actBytes: number, scoresBytes: number, rows?: number): { rows: number; blocks: number; unit: number; probsBytes: number } {
  const H = config.numHeads, HD = H * config.headDim;
  const unit = STORAGE_OFFSET_ALIGN / gcd(STORAGE_OFFSET_ALIGN, HD * Math.min(actBytes, 4));
  const perRow = H * maxTokens * 4;
  const fit = Math.floor(scoresBytes / perRow / unit) * unit;
  const whole = Math.ceil(maxTokens / unit) * unit;
  const r = Math.min(whole, rows ?? Math.max(unit, fit));
  return { rows: r, blocks: Math.ceil(maxTokens / r), unit, probsBytes: r * perRow <= scoresBytes ? 0 : r * perRow };
}

/** Bytes of one (rows, F) f32 MLP scratch buffer of the trainer (gate/up/act and their gradients). */
export const MLP_BLOCK_BUDGET = 16 * 2 ** 20;

/**
 * The trainer's MLP runs in blocks of token rows (GpuTrainer): every MLP op is row-local, so its
 * (rows, F) scratch (gate, up, act, dact, dup) need not hold the whole sequence. At 1024 tokens of
 * FineMedLM-o1 that is 5 x 14 MiB instead of 5 x 56 MiB, and at any length no MLP buffer breaks
 * the binding limit. Rows are a multiple of 64 and of `unit`, so every block's (T, C) row bindings
 * (activations and f32 gradients) and (T, r) LoRA rows start on STORAGE_OFFSET_ALIGN. By default
 * a block's (rows, F) f32 fits MLP_BLOCK_BUDGET (and the binding limit).
 * @example trainerMlpBlocks(finemedLayerConfig(32, 128256), 1024, 8, 2); // { rows: 256, blocks: 4, unit: 64 }
 */
export function trainerMlpBlocks(config: LlamaConfig, maxTokens: number, rank: number, actBytes: number, rows?: number, limits?: BindingLimits): { rows: number; blocks: number; unit: number } {
  const C = config.hiddenSize, F = config.intermediateSize;
  const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;
  const unit = [C * actBytes, C * 4, rank * 4].reduce((u, w) => lcm(u, STORAGE_OFFSET_ALIGN / gcd(STORAGE_OFFSET_ALIGN, w)), 64);
  const budget = limits ? Math.min(MLP_BLOCK_BUDGET, bindingLimit(limits)) : MLP_BLOCK_BUDGET;
  const whole = Math.ceil(maxTokens / unit) * unit;
  const r = Math.min(whole, rows ?? Math.max(unit, Math.floor(budget / (F * 4) / unit) * unit));
  return { rows: r, blocks: Math.ceil(maxTokens / r), unit };
}

/**
 * GpuTrainer's buffers made in allocate(), keyed by label. Two entries stand for several buffers:
 * `ttt x` is each layer's saved input (numLayers + 1 buffers `ttt x0`..), `xa` the saved x A^T of
 * each target (`xa q_proj`, ...). `probs` (the attention probabilities of a query block) is
 * there only when the block does not fit the model's score buffer (trainerAttentionBlocks).
 * @example trainerBuffers(config, 1024, 8, 2, lossHeadChunks(1024, config.vocabSize), { probsBytes: 0 }, { rows: 256 }).dact.bytes;
 */
export function trainerBuffers(config: LlamaConfig, maxTokens: number, rank: number, actBytes: number, head: { chunkRows: number; rowsPadded: number }, attention: { probsBytes: number }, mlp: { rows: number }) {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = config;
  const Tm = maxTokens, e = actBytes, { chunkRows, rowsPadded } = head, R = mlp.rows;
  const s = (bytes: number): BufferSpec => ({ bytes, kind: 'storage' });
  const probs: { probs?: BufferSpec } = attention.probsBytes ? { probs: s(attention.probsBytes) } : {};
  return {
    'ttt run': { bytes: 16, kind: 'uniform' } as BufferSpec,
    'ttt ids': s(Tm * 4),
    'ttt targets': s(Tm * 4),
    'ttt x': s(Tm * C * e),
    'ttt hn': s(rowsPadded * C * e),
    'ttt dhn': s(rowsPadded * C * 4),
    'ttt logits': s(Math.min(rowsPadded, chunkRows) * V * 4),
    'ttt loss rows': s(Tm * 4),
    'ttt loss': s(16),
    'ttt readback': { bytes: 16, kind: 'readback' } as BufferSpec,
    xn1: s(Tm * C * e), q: s(Tm * H * D * e), k: s(Tm * KV * D * e), 'k rotated': s(Tm * KV * D * e),
    v: s(Tm * KV * D * e), ...probs, att: s(Tm * H * D * e),
    x1: s(Tm * C * e), xn2: s(Tm * C * e), gate: s(R * F * e), up: s(R * F * e), act: s(R * F * e),
    dx: s(Tm * C * 4), dxn: s(Tm * C * 4), dq: s(Tm * H * D * 4), dk: s(Tm * KV * D * 4),
    dv: s(Tm * KV * D * 4), datt: s(Tm * H * D * 4), dact: s(R * F * 4), dup: s(R * F * 4),
    dxa: s(Tm * rank * 4),
    xa: s(Tm * rank * 4),
  };
}

/**
 * The trainer buffers that may live in a KV slab: each layer's saved input. WebGPU forbids one
 * buffer bound writable and read-only in the same dispatch, whatever the ranges, so buffers sharing
 * a slab must never meet in one dispatch with different access; no dispatch binds two of these
 * (layer l reads x_l and writes x_l+1 in different dispatches), and no KV binding is used while
 * training.
 */
const BORROWABLE = /^ttt x\d+$/;

/**
 * GpuTrainer.allocate's buffers in creation order (trainerBuffers expanded: `ttt x0`.., `xa
 * <target>`), each with where it lives: `borrow` set for those placed in the idle KV-cache slabs
 * `pool` (bytes per slab; borrowFromPool; BORROWABLE), else a buffer of its own.
 * @example trainerAllocations(sizes, 32, ['q_proj'], [256 * 2 ** 20]).filter((a) => a.borrow).length;
 */
export function trainerAllocations(sizes: Record<string, BufferSpec>, numLayers: number, targets: readonly string[], pool: number[]): { label: string; key: string; spec: BufferSpec; borrow?: { slab: number; offset: number } }[] {
  const list: { label: string; key: string; spec: BufferSpec }[] = [];
  for (const [key, spec] of Object.entries(sizes)) {
    if (key === 'ttt x') for (let l = 0; l <= numLayers; l++) list.push({ label: `ttt x${l}`, key, spec });
    else if (key === 'xa') for (const t of targets) list.push({ label: `xa ${t}`, key, spec });
    else list.push({ label: key, key, spec });
  }
  const placed = borrowFromPool(pool, list.filter((a) => BORROWABLE.test(a.label)).map((a) => ({ label: a.label, bytes: a.spec.bytes })));
  return list.map((a) => { const borrow = placed.get(a.label); return borrow ? { ...a, borrow } : a; });
}

/** Storage-buffer bindings must start at multiples of 256 bytes: LoRA slots align to 64 floats. */
export const LORA_ALIGN_FLOATS = 64;

/** Where one projection's A (r, in) and B (out, r) live inside the flat LoRA buffers (in floats). */
export interface LoraSlot {
  layer: number;
  proj: Projection;
  inDim: number;
  outDim: number;
  aOffset: number;
  bOffset: number;
}

/**
 * The flat layout of all LoRA parameters: per layer, the present projections in PROJECTIONS
 * order, A then B, each padded to LORA_ALIGN_FLOATS; `floats` is the buffer length (>= 64).
 * @example loraLayout([{ q_proj: { inDim: 64, outDim: 64 } }], 8).floats; // 1024
 */
export function loraLayout(layers: Partial<Record<Projection, { inDim: number; outDim: number }>>[], rank: number): { slots: LoraSlot[]; floats: number } {
  const align = (n: number) => Math.ceil(n / LORA_ALIGN_FLOATS) * LORA_ALIGN_FLOATS;
  const slots: LoraSlot[] = [];
  let off = 0;
  layers.forEach((layer, l) => {
    for (const proj of PROJECTIONS) {
      const pair = layer[proj];
      if (!pair) continue;
      const aOffset = off;
      off += align(rank * pair.inDim);
      const bOffset = off;
      off += align(pair.outDim * rank);
      slots.push({ layer: l, proj, inDim: pair.inDim, outDim: pair.outDim, aOffset, bOffset });
    }
  });
  return { slots, floats: Math.max(off, LORA_ALIGN_FLOATS) };
}

/**
 * The bytes of a small uniform (16 bytes per 4 words: u32 words, f32 at the indices in `floatAt`), or an
 * ArrayBuffer as given. GpuLlama caches uniforms by these bytes (uniformKey), so equal contents
 * share one buffer.
 * @example uniformKey(packUniform([64, 0, 1e-5, 0], [2]));
 */
export function packUniform(words: ArrayLike<number> | ArrayBuffer, floatAt: number[] = []): ArrayBuffer {
  if (words instanceof ArrayBuffer) return words;
  const data = new ArrayBuffer(Math.max(1, Math.ceil(words.length / 4)) * 16); // whole 16-byte rows
  const u = new Uint32Array(data), f = new Float32Array(data);
  for (let i = 0; i < words.length; i++) {
    if (floatAt.includes(i)) f[i] = words[i];
    else u[i] = words[i];
  }
  return data;
}

/** The cache key of a uniform's bytes. */
export function uniformKey(data: ArrayBuffer): string {
  return Array.from(new Uint32Array(data)).join(',');
}
