import { acquireGpu, type GpuContext } from '../../models/gpu/device.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import type { ModelSource } from '../../models/io/source.ts';
import { LlamaModel } from '../../models/llama-model.ts';
import { type BandwidthResult, matvecBandwidth } from './bandwidth.ts';
import { finemedLayerConfig, syntheticCheckpoint } from './synthetic-checkpoint.ts';

export interface EngineBenchOptions {
  /** stories260K in HF layout; skipped when absent. */
  stories?: ModelSource;
  /** Prompt tokens of the FineMedLM-shaped layer's prefill (512 in the issue; software adapters may use fewer). */
  layerPrefillTokens: number;
  decodeSteps: number;
  log?: (line: string) => void;
}

export interface EngineBenchResult {
  adapter: string;
  f16: boolean;
  stories?: { weights: string; prefillTokens: number; prefillTokPerS: number; decodeTokPerS: number }[];
  layer: { prefillTokens: number; prefillMs: number; decodeMsPerToken: number; weightBytes: number };
  bandwidth: BandwidthResult[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The engine benchmark, same code in Node (Dawn) and in Chromium: stories260K prefill/decode
 * tokens/s, one FineMedLM-o1-shaped layer (random 4-bit weights) for decode and prefill, and the
 * 4-bit matvec's effective bandwidth relative to a copy kernel.
 */
export async function runEngineBench(gpu: GPU, opts: EngineBenchOptions): Promise<EngineBenchResult> {
  const log = opts.log ?? (() => {});
  const ctx: GpuContext = await acquireGpu(gpu, { f16: true });
  const a = ctx.adapterInfo;
  const adapter = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') + (a.isFallback ? ' (fallback)' : '');
  log(`adapter: ${adapter}, shader-f16: ${ctx.f16}`);
  const result: EngineBenchResult = { adapter, f16: ctx.f16, layer: { prefillTokens: 0, prefillMs: 0, decodeMsPerToken: 0, weightBytes: 0 }, bandwidth: [] };

  if (opts.stories) {
    result.stories = [];
    for (const weights of ['q4', 'f32'] as const) {
      const m = await LlamaModel.load(opts.stories, { backend: 'webgpu', gpu, weights });
      const prompt = [1, ...Array.from({ length: 127 }, (_, i) => 260 + (i % 200))];
      await m.generate(prompt.slice(0, 8), { maxNewTokens: 4 }); // warm-up: compile and caches
      const r = await m.generate(prompt, { maxNewTokens: opts.decodeSteps, stopIds: [], sampling: { kind: 'greedy' } });
      result.stories.push({ weights, prefillTokens: prompt.length, prefillTokPerS: r.timings.prefillTokensPerSecond, decodeTokPerS: r.timings.decodeTokensPerSecond });
      log(`stories260K ${weights}: prefill ${r.timings.prefillTokensPerSecond.toFixed(0)} tok/s, decode ${r.timings.decodeTokensPerSecond.toFixed(1)} tok/s`);
      m.dispose();
    }
  }

  const T = opts.layerPrefillTokens;
  const layer = await GpuLlama.load(syntheticCheckpoint(finemedLayerConfig(1)), ctx, { weights: 'q4', maxContext: Math.max(T, 64) + opts.decodeSteps + 1 });
  const ids = Array.from({ length: T }, (_, i) => (i * 7) % 256);
  await layer.forward(ids.slice(0, 4)); // warm-up
  layer.resetCache();
  let t0 = performance.now();
  await layer.forward(ids);
  const prefillMs = performance.now() - t0;
  const steps: number[] = [];
  for (let i = 0; i < opts.decodeSteps; i++) {
    t0 = performance.now();
    await layer.forward([i % 256]);
    steps.push(performance.now() - t0);
  }
  result.layer = { prefillTokens: T, prefillMs, decodeMsPerToken: median(steps), weightBytes: layer.memory().weights };
  log(`FineMedLM-o1 layer (q4, ${(result.layer.weightBytes / 2 ** 20).toFixed(0)} MiB): prefill ${T} tokens ${prefillMs.toFixed(0)} ms, decode ${result.layer.decodeMsPerToken.toFixed(1)} ms/token`);
  layer.dispose();

  for (const [N, K] of [[14336, 4096], [4096, 14336], [4096, 4096]]) {
    const b = await matvecBandwidth(ctx, N, K);
    result.bandwidth.push(b);
    log(`q4 matvec ${b.matrix}: ${b.matvecGBps.toFixed(2)} GB/s of weights vs copy ${b.copyGBps.toFixed(2)} GB/s -> ${(100 * b.ratio).toFixed(0)}%`);
  }
  ctx.device.destroy();
  return result;
}
