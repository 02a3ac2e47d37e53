/**
 * The measured runs of `npm run bench` (scripts/bench.ts): load a model, then exactly `tokens`
 * greedy tokens after `prompt`, with our LlamaModel or with transformers.js. The same functions
 * run in the browser page (e2e/bench-harness.ts) and in Node. Times: load (config + weights +
 * pipelines, until the model object is ready), time to first token (generate call -> first new
 * token), decode tokens/s over the tokens after the first; cold (the first generation after the
 * load) and warm (the same generation again).
 */
import { AutoModelForCausalLM, Tensor } from '@huggingface/transformers';
import { GpuLlama, type GpuCounters } from '../models/gpu/gpu-llama.ts';
import { LlamaModel } from '../models/llama-model.ts';
import type { ModelSource } from '../models/io/source.ts';

export interface DecodeRun {
  impl: 'ours' | 'transformers.js';
  device: string;
  weights: 'f32' | 'q4';
  loadMs: number;
  ttftMs: number;
  decodeTokensPerSecond: number;
  /** The generated ids (exactly `tokens` of them unless the run stopped early). */
  ids: number[];
  /** The same generation again on the loaded model (pipelines compiled, caches filled): TTFT and tokens/s, and whether its ids are the cold run's. */
  warm?: { ttftMs: number; decodeTokensPerSecond: number; sameIds: boolean };
  /** Ours only: GPU work per decode token and pipelines compiled (GpuLlama.counters). */
  counts?: DecodeCounts;
  /**
   * Ours only: compiling what the load left for first need (the prefill's kernels, which a
   * prompt of more than 8 tokens needs), timed after the run with LlamaModel.warmUp. The app
   * runs it in the background after a load.
   */
  warmUpMs?: number;
  /** Ours only: the pipelines compiled by the end of the run (before the warm-up), ms each (PipelineCache.compiles). */
  compiles?: { label: string; ms: number }[];
}

export interface DecodeCounts {
  dispatchesPerToken: number;
  passesPerToken: number;
  submitsPerToken: number;
  readbacksPerToken: number;
  pipelines: number;
}

export interface DecodeSpec {
  prompt: number[];
  tokens: number;
  weights: 'f32' | 'q4';
}

/** Tokens/s over the tokens after the first, from the times each token arrived. */
function rate(times: number[]): number {
  return times.length > 1 ? (times.length - 1) / ((times.at(-1)! - times[0]) / 1000) : 0;
}

/** Our engine on WebGPU (`gpu`: navigator.gpu or Dawn's). */
export async function runOurs(source: ModelSource, gpu: GPU, spec: DecodeSpec): Promise<DecodeRun> {
  const t0 = performance.now();
  const model = await LlamaModel.load(source, { backend: 'webgpu', gpu, weights: spec.weights, maxContext: spec.prompt.length + spec.tokens });
  const loadMs = performance.now() - t0;
  try {
    // The counters once the first token is out (prefill done) and at the end: per decode token.
    let mid: GpuCounters | null = null;
    const gen = async (onFirst: () => void) => {
      const times: number[] = [];
      const g0 = performance.now();
      const r = await model.generate(spec.prompt, { maxNewTokens: spec.tokens, onToken: () => { if (!times.length) onFirst(); times.push(performance.now()); } });
      return { r, ttftMs: (times[0] ?? performance.now()) - g0, rate: rate(times) };
    };
    const cold = await gen(() => { mid = model.counters(); });
    const end = model.counters(), start = mid as GpuCounters | null;
    const steps = Math.max(1, cold.r.timings.decodeTokens);
    const per = (k: 'dispatches' | 'passes' | 'submits' | 'readbacks') => (end && start ? (end[k] - start[k]) / steps : 0);
    const compiles = model.engine instanceof GpuLlama ? model.engine.pipelines.compiles.map((c) => ({ label: c.label, ms: Math.round(c.ms) })) : undefined;
    const again = await gen(() => {});
    const w0 = performance.now();
    await model.warmUp();
    const warmUpMs = performance.now() - w0;
    return {
      impl: 'ours', device: 'webgpu', weights: spec.weights, loadMs, ttftMs: cold.ttftMs, decodeTokensPerSecond: cold.rate, ids: cold.r.ids,
      warm: { ttftMs: again.ttftMs, decodeTokensPerSecond: again.rate, sameIds: again.r.ids.join() === cold.r.ids.join() },
      warmUpMs, compiles,
      counts: { dispatchesPerToken: per('dispatches'), passesPerToken: per('passes'), submitsPerToken: per('submits'), readbacksPerToken: per('readbacks'), pipelines: end?.pipelines ?? 0 },
    };
  } finally {
    model.dispose();
  }
}

/** transformers.js' AutoModelForCausalLM on `device` (its env configured by the caller). */
export async function runTheirs(model: string, device: string, spec: DecodeSpec): Promise<DecodeRun> {
  const t0 = performance.now();
  const m = await AutoModelForCausalLM.from_pretrained(model, { device: device as 'webgpu', dtype: spec.weights === 'q4' ? 'q4' : 'fp32' });
  const loadMs = performance.now() - t0;
  try {
    const P = spec.prompt.length;
    const input_ids = new Tensor('int64', BigInt64Array.from(spec.prompt.map(BigInt)), [1, P]);
    const gen = async () => {
      const times: number[] = [];
      // generate() passes the prompt to the streamer first, then each new token.
      const streamer = { put: (v: bigint[][]) => void (v[0]?.length === P ? undefined : times.push(performance.now())), end: () => {} };
      const g0 = performance.now();
      const out = await m.generate({ input_ids, max_new_tokens: spec.tokens, min_new_tokens: spec.tokens, do_sample: false, streamer: streamer as never }) as Tensor;
      return { ids: Array.from(out.data as BigInt64Array, Number).slice(P), ttftMs: (times[0] ?? performance.now()) - g0, rate: rate(times) };
    };
    const cold = await gen();
    const again = await gen();
    return {
      impl: 'transformers.js', device, weights: spec.weights, loadMs, ttftMs: cold.ttftMs, decodeTokensPerSecond: cold.rate, ids: cold.ids,
      warm: { ttftMs: again.ttftMs, decodeTokensPerSecond: again.rate, sameIds: again.ids.join() === cold.ids.join() },
    };
  } finally {
    await m.dispose();
  }
}
