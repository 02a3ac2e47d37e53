/**
 * Accounted GPU memory of test-time training for FineMedLM-o1's real shape, from the allocator:
 * load 1- and 2-layer models of the real width and vocabulary (4096 hidden, 14336 FFN, 32/8 heads,
 * vocab 128256, untied lm_head; random 4-bit weights), attach a GpuTrainer (rank 8, all seven
 * targets, 1024 tokens), read GpuAllocator.byCategory(), and set each against the memory plan
 * (models/memory-plan.ts) of the same model on the same device: they must be equal, buffer for
 * buffer in the tests. The 32-layer figure is then the plan's. (It used to be scaled by layers,
 * mem(1) + 31 x (mem(2) - mem(1)); since the trainer borrows the idle KV-cache slabs, which grow
 * with the layers while the trainer's buffers do not, that scaling no longer holds.)
 * The requirement (issue 3): total < 4-bit weights + 1.5 GB.
 *
 * The weights come from `repeatingCheckpoint` (one block of random rows returned for every row
 * block), so loading costs GPU time only; the figures are the allocator's either way.
 */
import type { Checkpoint } from '../../models/checkpoint.ts';
import { PROJECTIONS, type LlamaConfig } from '../../models/config.ts';
import type { MemoryCategory } from '../../models/gpu/allocator.ts';
import type { GpuContext } from '../../models/gpu/device.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../models/gpu/gpu-trainer.ts';
import { initLora, type LoraConfig } from '../../models/lora/adapter.ts';
import { planMemory, type MemoryPlan } from '../../models/memory-plan.ts';
import { finemedLayerConfig, syntheticCheckpoint } from './synthetic-checkpoint.ts';

export const FINEMED_LAYERS = 32;
export const FINEMED_VOCAB = 128256;
/** "below the 4-bit weights plus 1.5 GB" (decimal GB: the stricter reading; 1.5 GiB would allow 7% more). */
export const TTT_OVERHEAD_BUDGET = 1.5e9;

export const CATEGORIES: MemoryCategory[] = ['weights', 'kvCache', 'activations', 'lora', 'optimizer', 'staging'];
export type Bytes = Record<MemoryCategory, number>;

/**
 * syntheticCheckpoint's tensors, but readRows returns the first random block of each width again
 * for every row range: loading a 128256 x 4096 embedding costs no CPU time (only the upload and
 * the GPU quantize kernel). For memory accounting and kernel timing, where values do not matter.
 */
export function repeatingCheckpoint(config: LlamaConfig, seed = 1): Checkpoint {
  const base = syntheticCheckpoint(config, seed);
  const blocks = new Map<number, Float32Array>();
  return {
    ...base,
    readRows: async (name, rowStart, rowCount, signal) => {
      const shape = base.tensors.get(name)!.shape;
      const cols = shape.length === 1 ? shape[0] : shape[1];
      let block = blocks.get(cols);
      if (!block || block.length < rowCount * cols) {
        block = await base.readRows(name, 0, rowCount, signal);
        blocks.set(cols, block);
      }
      void rowStart;
      return block.subarray(0, rowCount * cols);
    },
  };
}

export interface TttMemoryOptions {
  /** Training tokens (the trainer's maxTokens). */
  tokens: number;
  /** The model's context (KV cache, prefill scores); default = tokens. The app loads 4096. */
  maxContext?: number;
  lora: LoraConfig;
  vocab?: number;
}

export const TTT_MEMORY_DEFAULTS: TttMemoryOptions = { tokens: 1024, lora: { rank: 8, alpha: 16, targets: [...PROJECTIONS] }, vocab: FINEMED_VOCAB };

/** A storage binding larger than the device allows (the kernel using it fails validation there). */
export interface OversizeBinding {
  buffer: string;
  bytes: number;
  limit: number;
}

export interface MemorySnapshot {
  layers: number;
  byCategory: Bytes;
  /** Live bytes once the trainer is built (TTT allocates everything up front). */
  total: number;
  /** The allocator's high-water mark (loading's staging buffers included). */
  peak: number;
  oversize: OversizeBinding[];
  /** First validation error while loading/building (oversize bindings cause them), if any. */
  validationError?: string;
  ms: number;
}

/**
 * Loads a `layers`-layer FineMedLM-o1-shaped q4 model on `ctx`, builds a GpuTrainer and reads the
 * allocator. Throws GpuOutOfMemoryError (models/errors.ts) if the device refuses an allocation.
 */
export async function measureTttMemory(ctx: GpuContext, layers: number, opts: TttMemoryOptions = TTT_MEMORY_DEFAULTS): Promise<MemorySnapshot> {
  const t0 = performance.now();
  const config = finemedLayerConfig(layers, opts.vocab ?? FINEMED_VOCAB);
  const device = ctx.device;
  const limit = device.limits.maxStorageBufferBindingSize;
  const oversize = new Map<string, OversizeBinding>();
  // Watch bind groups for storage bindings over the device limit (restored below).
  const d = device as GPUDevice & { createBindGroup: GPUDevice['createBindGroup'] };
  const ownProp = Object.prototype.hasOwnProperty.call(d, 'createBindGroup');
  const original = d.createBindGroup;
  const create = original.bind(d);
  d.createBindGroup = (desc: GPUBindGroupDescriptor) => {
    for (const e of desc.entries) {
      const r = e.resource as GPUBufferBinding;
      if (!r || typeof r !== 'object' || !('buffer' in r)) continue;
      if (r.buffer.usage & GPUBufferUsage.UNIFORM) continue;
      const bytes = r.size ?? r.buffer.size - (r.offset ?? 0);
      if (bytes > limit) oversize.set(r.buffer.label, { buffer: r.buffer.label, bytes, limit });
    }
    return create(desc);
  };
  device.pushErrorScope('validation');
  let m: GpuLlama | null = null;
  let snapshot: Pick<MemorySnapshot, 'byCategory' | 'total' | 'peak'>;
  let validationError: string | undefined;
  try {
    m = await GpuLlama.load(repeatingCheckpoint(config), ctx, { weights: 'q4', maxContext: opts.maxContext ?? opts.tokens });
    await GpuTrainer.create(m, initLora(config, opts.lora, 1), { maxTokens: opts.tokens });
    await device.queue.onSubmittedWorkDone();
    snapshot = { byCategory: { ...m.alloc.byCategory() }, total: m.alloc.total, peak: m.alloc.peak };
  } finally {
    const err = await device.popErrorScope();
    if (err) validationError = err.message.split('\n')[0];
    if (ownProp) d.createBindGroup = original;
    else delete (d as unknown as Record<string, unknown>).createBindGroup;
    m?.dispose();
  }
  return { layers, ...snapshot, oversize: [...oversize.values()], validationError, ms: performance.now() - t0 };
}

export interface TttMemoryReport {
  options: TttMemoryOptions & { maxContext: number };
  device: { maxStorageBufferBindingSize: number; maxBufferSize: number; f16: boolean };
  one: MemorySnapshot;
  two: MemorySnapshot;
  /** The memory plan (models/memory-plan.ts) of 1 and 2 layers on this device, to set against what was measured. */
  plannedOne: Bytes;
  plannedTwo: Bytes;
  /** The measured snapshots equal their plans, category by category, total and peak. */
  planExact: boolean;
  /** The plan of FineMedLM-o1's 32 layers, per category (exact where planExact). */
  planned: Bytes;
  plannedTotal: number;
  plannedPeak: number;
  /** The 4-bit weights + 1.5 GB. */
  bound: number;
  /** Everything but the weights (what must stay under 1.5 GB). */
  overhead: number;
  ok: boolean;
}

/** The plan of a `layers`-layer model as measureTttMemory loads it on `ctx`. */
export function planTttMemory(ctx: Pick<GpuContext, 'f16' | 'limits'>, layers: number, opts: TttMemoryOptions = TTT_MEMORY_DEFAULTS): MemoryPlan {
  const config = finemedLayerConfig(layers, opts.vocab ?? FINEMED_VOCAB);
  return planMemory(config, { weights: 'q4', precision: ctx.f16 ? 'f16' : 'f32', maxContext: opts.maxContext ?? opts.tokens, ttt: { ...opts.lora, maxTokens: opts.tokens }, limits: ctx.limits });
}

const same = (m: MemorySnapshot, p: MemoryPlan) => CATEGORIES.every((c) => m.byCategory[c] === p.byCategory[c]) && m.total === p.total && m.peak === p.peak;

/**
 * measureTttMemory on 1 and 2 layers, each set against its memory plan; the 32-layer figure is
 * the plan's. (Per-layer scaling no longer holds: the trainer places its buffers in the KV-cache
 * slabs, whose size grows with the layers while the trainer's does not.)
 */
export async function tttMemoryReport(ctx: GpuContext, opts: TttMemoryOptions = TTT_MEMORY_DEFAULTS): Promise<TttMemoryReport> {
  const one = await measureTttMemory(ctx, 1, opts);
  const two = await measureTttMemory(ctx, 2, opts);
  const l = ctx.device.limits;
  const p1 = planTttMemory(ctx, 1, opts), p2 = planTttMemory(ctx, 2, opts), p32 = planTttMemory(ctx, FINEMED_LAYERS, opts);
  const bound = p32.byCategory.weights + TTT_OVERHEAD_BUDGET;
  const top = Math.max(p32.total, p32.peak);
  return {
    options: { ...opts, maxContext: opts.maxContext ?? opts.tokens },
    device: { maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize, f16: ctx.f16 },
    one, two, plannedOne: p1.byCategory, plannedTwo: p2.byCategory, planExact: same(one, p1) && same(two, p2),
    planned: p32.byCategory, plannedTotal: p32.total, plannedPeak: p32.peak, bound, overhead: top - p32.byCategory.weights, ok: top < bound,
  };
}

const MiB = (b: number) => (b / 2 ** 20).toFixed(1);
const GB = (b: number) => (b / 1e9).toFixed(3);

/** A plain-text table of the report (MiB per category: 1 and 2 layers measured, and the 32-layer plan). */
export function formatTttMemory(r: TttMemoryReport): string {
  const rows = [['category', '1 layer', '2 layers', '32 layers (plan)']];
  for (const c of CATEGORIES) rows.push([c, MiB(r.one.byCategory[c]), MiB(r.two.byCategory[c]), MiB(r.planned[c])]);
  rows.push(['total (live)', MiB(r.one.total), MiB(r.two.total), MiB(r.plannedTotal)]);
  rows.push(['peak', MiB(r.one.peak), MiB(r.two.peak), MiB(r.plannedPeak)]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((x) => x[i].length)));
  const o = r.options;
  const lines = [
    `TTT memory, FineMedLM-o1 shape (32 layers, vocab ${o.vocab}), ${o.tokens} tokens, context ${o.maxContext}, rank ${o.lora.rank}, targets ${o.lora.targets.length}, activations ${r.device.f16 ? 'f16' : 'f32'} (MiB):`,
    ...rows.map((x) => x.map((v, i) => (i ? v.padStart(w[i]) : v.padEnd(w[i]))).join('  ')),
    `1 and 2 layers measured ${r.planExact ? '=' : '!='} their plans; 32 layers planned ${GB(Math.max(r.plannedTotal, r.plannedPeak))} GB; bound = 4-bit weights ${GB(r.planned.weights)} GB + 1.5 GB = ${GB(r.bound)} GB -> ${r.ok ? 'OK' : 'OVER'} (overhead ${GB(r.overhead)} GB of 1.5)`,
  ];
  const over = [...r.one.oversize, ...r.two.oversize.filter((b) => !r.one.oversize.some((a) => a.buffer === b.buffer))];
  if (over.length) lines.push(`bindings over this device's maxStorageBufferBindingSize (${MiB(r.device.maxStorageBufferBindingSize)} MiB): ${over.map((b) => `${b.buffer} ${MiB(b.bytes)} MiB`).join(', ')}`);
  return lines.join('\n');
}
