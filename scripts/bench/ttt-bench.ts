/**
 * The TTT benchmark, the same code in Node (Dawn) and in Chromium (navigator.gpu): time per
 * training step (forward + loss head + per-layer recompute + backward + Adam, loss readback) of
 * GpuTrainer through its public API, and the GPU time of every dispatch of one step by kernel
 * family (KernelTimer: timestamp queries, one pass per dispatch), for
 *   - stories260K (golden ids) at its golden length and at 256 tokens, f32 and q4 weights;
 *   - one FineMedLM-o1-shaped layer (synthetic, q4, rank 8, all seven targets);
 *   - the loss head alone (a 0-layer model of FineMedLM-o1's width) at the largest vocabulary the
 *     device can bind, up to 128256;
 * and a projection for the whole 8B model: 32 x layer + loss head (vocab 128256) + 32 x Adam.
 *
 * Token counts are options: software adapters (lavapipe, SwiftShader) are too slow for 512 tokens
 * of an 8B layer, so the scripts measure fewer and scale: attention families by (target/T)^2, all
 * other families linearly in tokens (and the loss head linearly in vocabulary).
 */
import { openCheckpoint, type Checkpoint } from '../../models/checkpoint.ts';
import { PROJECTIONS } from '../../models/config.ts';
import { acquireGpu, type GpuContext } from '../../models/gpu/device.ts';
import { GpuLlama, type Step } from '../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../models/gpu/gpu-trainer.ts';
import { Q4_GROUP } from '../../models/quant/q4.ts';
import type { ModelSource } from '../../models/io/source.ts';
import { initLora, type LoraConfig } from '../../models/lora/adapter.ts';
import { KernelTimer, type TimedDispatch } from './kernel-timer.ts';
import { finemedLayerConfig, syntheticCheckpoint } from './synthetic-checkpoint.ts';
import { FINEMED_LAYERS, FINEMED_VOCAB, repeatingCheckpoint } from './ttt-memory.ts';

export const FAMILIES = [
  'matmul fwd', 'bwd matmul (dx = dy W)', 'LoRA gemms', 'attention fwd', 'attention bwd',
  'norms/elementwise', 'lm_head + CE', 'Adam',
] as const;
export type Family = (typeof FAMILIES)[number];

export type Phase = 'embed' | 'forward' | 'loss head' | 'recompute' | 'backward' | 'adam' | 'other';
export const PHASES: Phase[] = ['embed', 'forward', 'loss head', 'recompute', 'backward', 'adam', 'other'];

const TTT_LORA: LoraConfig = { rank: 8, alpha: 16, targets: [...PROJECTIONS] };

/**
 * Kernel family of a trainer step label (models/gpu/gpu-trainer.ts names them "L3 gate dx",
 * "attn block 0 dq", "lm_head chunk 0", ...; tests/scripts/bench/ttt-bench.test.ts checks them
 * against a real trainer's steps). RoPE, residual adds, SwiGLU, copies, the embedding and RMSNorm (both
 * directions) count as norms/elementwise.
 */
export function familyOf(label: string): Family {
  if (/^(grad norm|adam)/.test(label)) return 'Adam';
  if (/^(lm_head|ce |loss mean)/.test(label)) return 'lm_head + CE';
  if (/ (xa|y|dB|dxa|dA|dx lora)$/.test(label)) return 'LoRA gemms';
  if (/ dx$/.test(label)) return 'bwd matmul (dx = dy W)';
  if (/^L\d+ (q|k|v|o|gate|up|down)$/.test(label)) return 'matmul fwd';
  if (/ (scores|softmax|values)$/.test(label)) return 'attention fwd';
  if (/^attn block \d+ (dv|ds|dq|dk)$/.test(label)) return 'attention bwd';
  return 'norms/elementwise';
}

/**
 * How a dispatch's work grows with the number of tokens T, to scale a measurement at few tokens:
 * the tiled frozen matmuls (forward, dx = dy W, lm_head and its dx) run one workgroup row per 32
 * tokens whatever T is inside it, so they grow with ceil(T/32); causal attention grows with T^2;
 * Adam does not depend on T; the rest (LoRA gemms, elementwise, norms, cross-entropy) grow with T.
 */
export function tokenScale(label: string, from: number, to: number): number {
  const fam = familyOf(label);
  if (fam === 'Adam') return 1;
  if (fam === 'matmul fwd' || fam === 'bwd matmul (dx = dy W)' || /^lm_head (chunk|dx)/.test(label)) return Math.ceil(to / 32) / Math.ceil(from / 32);
  if (fam === 'attention fwd' || fam === 'attention bwd') return (to / from) ** 2;
  return to / from;
}

interface StepName { label: string; list: 'embed' | 'fwd' | 'bwd' | 'head' | 'adam' }

/**
 * Bind group -> step label and list, from the trainer's step lists. A step in two lists (the MLP
 * forward, run again as the backward's recompute) keeps the first: a forward seen twice is the recompute.
 */
function stepNames(trainer: GpuTrainer): Map<GPUBindGroup, StepName> {
  const map = new Map<GPUBindGroup, StepName>();
  for (const [list, steps] of Object.entries(trainer.stepLists()) as [StepName['list'], Step[]][]) {
    for (const s of steps) if (!map.has(s.bind)) map.set(s.bind, { label: s.label, list });
  }
  return map;
}

export interface KernelBreakdown {
  timing: 'timestamp-query' | 'wall time per dispatch (replayed)';
  dispatches: number;
  /** GPU ms of one step per family, per phase, and of layer-labelled dispatches per family (all layers). */
  families: Record<Family, number>;
  phases: Record<Phase, number>;
  layerFamilies: Record<Family, number>;
  totalMs: number;
  /** The same, each dispatch scaled by tokenScale from the measured T to `scaledTo` tokens. */
  scaledTo: number;
  scaled: { families: Record<Family, number>; phases: Record<Phase, number>; layerFamilies: Record<Family, number> };
  /** The most expensive step kinds (label without its layer / chunk number), GPU ms summed over the step. */
  top: { label: string; ms: number }[];
  /** Dispatches no step list named (labelled by pipeline): 0 unless the trainer changed shape. */
  unnamed: number;
}

const zeros = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

function breakdown(times: TimedDispatch[], names: Map<GPUBindGroup, StepName>, timing: KernelBreakdown['timing'], T: number, target: number): KernelBreakdown {
  const families = zeros(FAMILIES), phases = zeros(PHASES), layerFamilies = zeros(FAMILIES);
  const scaled = { families: zeros(FAMILIES), phases: zeros(PHASES), layerFamilies: zeros(FAMILIES) };
  const seen = new Set<GPUBindGroup>();
  const byLabel = new Map<string, number>();
  let unnamed = 0, total = 0;
  for (const d of times) {
    const g = d.groups[0];
    const name = g ? names.get(g) : undefined;
    if (!name) unnamed++;
    const label = name?.label ?? d.pipeline.label ?? '?';
    const ms = d.ns / 1e6;
    const fam = familyOf(label);
    let phase: Phase = 'other';
    if (name) {
      if (name.list === 'fwd') phase = seen.has(g!) ? 'recompute' : 'forward';
      else phase = ({ embed: 'embed', bwd: 'backward', head: 'loss head', adam: 'adam' } as const)[name.list];
      seen.add(g!);
    }
    const layer = /^L\d+ /.test(label);
    const kind = label.replace(/^L\d+ /, '').replace(/ \d+$/, '');
    byLabel.set(kind, (byLabel.get(kind) ?? 0) + ms);
    families[fam] += ms;
    phases[phase] += ms;
    if (layer) layerFamilies[fam] += ms;
    const sms = ms * tokenScale(label, T, target);
    scaled.families[fam] += sms;
    scaled.phases[phase] += sms;
    if (layer) scaled.layerFamilies[fam] += sms;
    total += ms;
  }
  const top = [...byLabel].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([label, ms]) => ({ label, ms }));
  return { timing, dispatches: times.length, families, phases, layerFamilies, totalMs: total, scaledTo: target, scaled, top, unnamed };
}

export interface TttCaseResult {
  name: string;
  /** Dense FLOPs of the frozen matmuls of one step (forward, recompute, dx) / their GPU time, in GFLOP/s. */
  frozenMatmulGflops: number;
  weights: 'f32' | 'q4';
  tokens: number;
  layers: number;
  vocab: number;
  loadMs: number;
  /** Wall ms per step: median of the uninstrumented steps, else the instrumented one. */
  stepMs: number;
  stepMsAll: number[];
  /** Wall ms of the instrumented step (one pass per dispatch, so a little slower). */
  instrumentedStepMs: number;
  losses: number[];
  kernels: KernelBreakdown;
}

export interface TttCaseOptions {
  name: string;
  weights: 'f32' | 'q4';
  tokens: number;
  ids: number[];
  mask: number[];
  /** Steps run: the first instrumented, the rest timed clean. */
  steps: number;
  lr?: number;
  /** Tokens to scale the kernel times to (KernelBreakdown.scaled); default `tokens`. */
  scaleTo?: number;
}

/** Loads `ckpt`, builds a trainer and runs `steps` Adam steps (the first instrumented). */
export async function benchTrainerCase(ctx: GpuContext, ckpt: Checkpoint, o: TttCaseOptions): Promise<TttCaseResult> {
  const t0 = performance.now();
  const m = await GpuLlama.load(ckpt, ctx, { weights: o.weights, maxContext: o.tokens });
  try {
    const trainer = await GpuTrainer.create(m, initLora(m.config, TTT_LORA, 7), { maxTokens: o.tokens });
    await ctx.device.queue.onSubmittedWorkDone();
    const loadMs = performance.now() - t0;
    const names = stepNames(trainer);
    const timer = new KernelTimer(ctx.device);
    const stepMs: number[] = [], losses: number[] = [];
    const stop = new AbortController();
    timer.install();
    try {
      // Cancelling after the last step skips train()'s closing forward-only pass (steps stay whole).
      await trainer.train(o.ids, o.mask, { steps: o.steps, lr: o.lr ?? 1e-4, signal: stop.signal }, (e) => {
        stepMs.push(e.ms);
        losses.push(e.loss);
        timer.uninstall();
        if (e.step === e.steps) stop.abort();
      });
    } catch (e) {
      if ((e as Error).name !== 'AbortError') throw e;
    } finally {
      timer.uninstall();
    }
    const times = await timer.results();
    const kernels = breakdown(times, names, timer.timestamps ? 'timestamp-query' : 'wall time per dispatch (replayed)', o.tokens, o.scaleTo ?? o.tokens);
    const clean = stepMs.slice(1).sort((a, b) => a - b);
    const mid = clean.length >> 1;
    const median = clean.length % 2 ? clean[mid] : (clean[mid - 1] + clean[mid]) / 2;
    const c = m.config;
    const perToken = c.numLayers * c.hiddenSize * (2 * c.numHeads * c.headDim + 2 * c.numKvHeads * c.headDim + 3 * c.intermediateSize);
    const frozenMs = kernels.families['matmul fwd'] + kernels.families['bwd matmul (dx = dy W)'];
    return {
      frozenMatmulGflops: (3 * 2 * o.tokens * perToken) / (frozenMs * 1e6),
      name: o.name, weights: o.weights, tokens: o.tokens, layers: m.config.numLayers, vocab: m.config.vocabSize, loadMs,
      stepMs: clean.length ? median : stepMs[0], stepMsAll: stepMs, instrumentedStepMs: stepMs[0], losses, kernels,
    };
  } finally {
    m.dispose();
  }
}

/** Largest vocabulary <= 128256 whose q4 lm_head (and embedding) fits one storage binding of this device. */
export function maxBindableVocab(ctx: GpuContext, hidden = 4096): number {
  const rowBytes = Math.ceil(hidden / Q4_GROUP) * 16; // q4 words of one row (the scales are smaller)
  const byLimit = Math.floor(ctx.device.limits.maxStorageBufferBindingSize / rowBytes);
  return Math.min(FINEMED_VOCAB, Math.floor(byLimit / 64) * 64);
}

export interface Projection8B {
  targetTokens: number;
  /** One layer's GPU ms at targetTokens (forward + recompute + backward of its dispatches). */
  layerMs: number;
  layerMeasuredAt: number;
  /** Loss head GPU ms at targetTokens and vocab 128256 (embedding, final norm, lm_head, CE, dx). */
  headMs: number;
  headMeasuredAt: { tokens: number; vocab: number };
  /** Adam over 32 layers of adapters (32 x one layer's, scaled from the measured adapter size). */
  adamMs: number;
  totalMs: number;
  /** Wall / GPU time of the measured layer step: the projection is GPU time; this is the overhead seen. */
  wallOverGpu: number;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** 32 x one layer (scaled to the target tokens) + the loss head (scaled to target tokens and vocab 128256) + 32 x Adam. */
export function project8B(layer: TttCaseResult, head: TttCaseResult | undefined, targetTokens: number): Projection8B {
  if (layer.kernels.scaledTo !== targetTokens || (head && head.kernels.scaledTo !== targetTokens)) throw new Error('project8B: cases were scaled to other token counts.');
  const layerMs = sum(layer.kernels.scaled.layerFamilies) / layer.layers;
  const k = head?.kernels;
  const headMs = k && head ? (k.scaled.phases['loss head'] + k.scaled.phases.embed) * (FINEMED_VOCAB / head.vocab) : NaN;
  const adamMs = layer.kernels.families.Adam * (FINEMED_LAYERS / layer.layers);
  return {
    targetTokens, layerMs, layerMeasuredAt: layer.tokens, headMs,
    headMeasuredAt: { tokens: head?.tokens ?? 0, vocab: head?.vocab ?? 0 },
    adamMs, totalMs: FINEMED_LAYERS * layerMs + headMs + adamMs,
    wallOverGpu: layer.instrumentedStepMs / layer.kernels.totalMs,
  };
}

export interface TttBenchOptions {
  /** stories260K (HF layout, f32) and its golden training sequence; skipped when absent. */
  stories?: { source: ModelSource; ids: number[]; mask: number[] };
  /** Token counts for stories260K; 0 = the golden length. */
  storiesTokens: number[];
  storiesSteps: number;
  /** Tokens of the FineMedLM-o1 layer (512 in the issue; scaled to `targetTokens` when fewer). */
  layerTokens: number;
  layerSteps: number;
  /** Tokens of the loss-head measurement, and its vocabulary (0 = the largest bindable up to 128256). */
  headTokens: number;
  headVocab: number;
  targetTokens: number;
  /** Skip the stories / layer / head cases (0 tokens also skips). */
  skip?: { stories?: boolean; layer?: boolean; head?: boolean };
  log?: (line: string) => void;
}

export interface TttBenchResult {
  adapter: string;
  f16: boolean;
  timestamps: boolean;
  cases: TttCaseResult[];
  projection?: Projection8B;
  notes: string[];
}

/** A sequence of `T` tokens from the golden one (repeated), mask: prompt = first 12, then trained. */
export function stretchSequence(ids: number[], mask: number[], T: number): { ids: number[]; mask: number[] } {
  if (T <= ids.length) return { ids: ids.slice(0, T), mask: mask.slice(0, T) };
  return { ids: Array.from({ length: T }, (_, i) => ids[i % ids.length]), mask: Array.from({ length: T }, (_, i) => (i < 12 ? 0 : 1)) };
}

const fmtFamilies = (k: KernelBreakdown) => FAMILIES.filter((f) => k.families[f] > 0)
  .map((f) => `${f} ${(100 * k.families[f] / k.totalMs).toFixed(1)}%`).join(', ');

export async function runTttBench(gpu: GPU, opts: TttBenchOptions): Promise<TttBenchResult> {
  const log = opts.log ?? (() => {});
  const ctx = await acquireGpu(gpu, { f16: true });
  const a = ctx.adapterInfo;
  const adapter = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') + (a.isFallback ? ' (fallback)' : '');
  log(`adapter: ${adapter}, shader-f16: ${ctx.f16}, timestamp-query: ${ctx.hasTimestamps}, maxStorageBufferBindingSize ${(ctx.device.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`);
  const result: TttBenchResult = { adapter, f16: ctx.f16, timestamps: ctx.hasTimestamps, cases: [], notes: [] };
  const done = (r: TttCaseResult) => {
    result.cases.push(r);
    log(`${r.name}: ${r.stepMs.toFixed(0)} ms/step (steps ${r.stepMsAll.map((x) => x.toFixed(0)).join(', ')}; first instrumented), loss ${r.losses.map((x) => x.toFixed(3)).join(' -> ')}, load ${(r.loadMs / 1000).toFixed(1)} s`);
    log(`  GPU ${r.kernels.totalMs.toFixed(0)} ms in ${r.kernels.dispatches} dispatches: ${fmtFamilies(r.kernels)}`);
    log(`  top: ${r.kernels.top.slice(0, 8).map((x) => `${x.label} ${(100 * x.ms / r.kernels.totalMs).toFixed(1)}%`).join(', ')}`);
    if (r.kernels.unnamed) log(`  warning: ${r.kernels.unnamed} dispatches were not found in GpuTrainer's step lists (did it change?): they are classified by pipeline label`);
  };

  if (opts.stories && !opts.skip?.stories) {
    const ckpt = await openCheckpoint(opts.stories.source);
    for (const weights of ['f32', 'q4'] as const) {
      for (const want of opts.storiesTokens) {
        const T = want || opts.stories.ids.length;
        const seq = stretchSequence(opts.stories.ids, opts.stories.mask, T);
        done(await benchTrainerCase(ctx, ckpt, { name: `stories260K ${weights} T=${T}`, weights, tokens: T, ...seq, steps: opts.storiesSteps }));
      }
    }
  }

  const seqOf = (T: number, V: number) => ({
    ids: Array.from({ length: T }, (_, i) => (i * 7919 + 13) % V),
    mask: Array.from({ length: T }, (_, i) => (i < Math.min(12, T >> 2) ? 0 : 1)),
  });
  let layer: TttCaseResult | undefined, head: TttCaseResult | undefined;
  if (opts.layerTokens > 0 && !opts.skip?.layer) {
    // finemedLayerConfig's vocabulary (256): the layer case's loss head is negligible; the real
    // one (128256) is the separate loss-head case below.
    const T = opts.layerTokens;
    layer = await benchTrainerCase(ctx, syntheticCheckpoint(finemedLayerConfig(1)), { name: `FineMedLM-o1 layer q4 T=${T}`, weights: 'q4', tokens: T, ...seqOf(T, 256), steps: opts.layerSteps, scaleTo: opts.targetTokens });
    done(layer);
  }
  if (opts.headTokens > 0 && !opts.skip?.head) {
    const V = opts.headVocab || maxBindableVocab(ctx);
    if (V < FINEMED_VOCAB) result.notes.push(`loss head measured at vocab ${V} (${opts.headVocab ? 'as asked' : 'the largest q4 lm_head this device binds'}; its kernels are linear in V) and scaled x${(FINEMED_VOCAB / V).toFixed(3)} to 128256`);
    const T = opts.headTokens;
    head = await benchTrainerCase(ctx, repeatingCheckpoint(finemedLayerConfig(0, V)), { name: `FineMedLM-o1 loss head q4 V=${V} T=${T}`, weights: 'q4', tokens: T, ...seqOf(T, V), steps: 1, scaleTo: opts.targetTokens });
    done(head);
  }
  if (layer) {
    result.projection = project8B(layer, head, opts.targetTokens);
    const p = result.projection;
    const how = 'tiled matmuls by 32-token tiles, attention by T^2, LoRA gemms/elementwise/CE by T, Adam fixed';
    if (layer.tokens !== opts.targetTokens) result.notes.push(`layer measured at ${layer.tokens} tokens, each dispatch scaled to ${opts.targetTokens} (${how})`);
    if (head && head.tokens !== opts.targetTokens) result.notes.push(`loss head measured at ${head.tokens} tokens, scaled to ${opts.targetTokens} (${how})`);
    if (head) log(`8B projection at ${p.targetTokens} tokens: 32 x layer ${p.layerMs.toFixed(0)} ms + loss head ${p.headMs.toFixed(0)} ms + Adam ${p.adamMs.toFixed(0)} ms = ${(p.totalMs / 1000).toFixed(1)} s of GPU time per step (wall/GPU on the layer step: ${p.wallOverGpu.toFixed(2)})`);
    else log(`8B projection at ${p.targetTokens} tokens: 32 x layer ${p.layerMs.toFixed(0)} ms + Adam ${p.adamMs.toFixed(0)} ms, loss head not measured (headTokens 0)`);
  }
  for (const n of result.notes) log('note: ' + n);
  ctx.device.destroy();
  return result;
}
