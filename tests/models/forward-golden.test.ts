/**
 * The forward pass against the float64 PyTorch reference in ../shared/golden (CPU reference and
 * WebGPU on Dawn): last-position logits, argmax at every position, greedy tokens, sharded and bf16
 * checkpoints, 4-bit weights against the CPU 4-bit oracle, and f16 activations. Every bound is set
 * from the error measured on lavapipe with the margin stated beside it.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../models/checkpoint.ts';
import { CpuLlama } from '../../models/cpu/cpu-llama.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { argmax } from '../../models/sampling.ts';
import { expectBelow, expectNoGpuErrors, gpuContext, klDivergence, maxAbsDiff, printMeasured } from '../helpers/gpu.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

warnIfNoShared('golden forward tests (forward-stories260K.json, forward-tiny-llama31-random.json)');
printMeasured('forward golden');

// Bounds: max |logit - golden|, absolute (logits up to 18 for stories260K, 5.4 for tiny-llama31),
// measured on lavapipe (and SwiftShader, e2e/worker.test.ts), bound = margin x the worst.
/** f32 weights, CPU and WebGPU f32 vs the float64 golden: measured 6.6e-7 .. 9.5e-6 (CPU at 300 tokens), x ~10. */
const F32_LOGITS = 1e-4;
/** bf16 checkpoint vs bf16_weights_case: measured 2.2e-6 (CPU), 6.1e-6 (WebGPU), x ~16. */
const BF16_LOGITS = 1e-4;
/** WebGPU q4 vs the CPU q4 oracle (same dequantized weights, f32 rounding only): measured 3.8e-6 .. 7.6e-6, x ~13. */
const Q4_VS_CPU_Q4 = 1e-4;
/** Mean KL(golden f32 || 4-bit body + 8-bit head): 4-bit noise, not rounding (measured 5.4e-2 nats; 5.8e-2 with a 4-bit head): a sanity bound only. */
const Q4_KL = 0.1;
/**
 * f16 activations (lavapipe shader-f16) vs the golden: measured 1.8e-2, i.e. about 2u x |logit|
 * (u = 2^-11, logits up to 18). x ~3 rather than 10: 10x f16 noise would be a 0.2 logit slack.
 */
const F16_LOGITS = 5e-2;

interface GoldenCase { ids: number[]; last_logits: number[]; argmax_all_positions: number[]; greedy_32: number[] | null }
interface Golden { cases: GoldenCase[]; bf16_weights_case: { ids: number[]; last_logits: number[] } }
const golden = (name: string): Golden => JSON.parse(readFileSync(sharedPath('golden', `forward-${name}.json`), 'utf8'));

interface Forward { forward(ids: number[], o?: { allLogits?: boolean }): Promise<Float32Array> | Float32Array; resetCache(): void }

async function greedy(m: Forward, ids: number[], n: number): Promise<number[]> {
  m.resetCache();
  let logits = await m.forward(ids);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(argmax(logits));
    logits = await m.forward([out[i]]);
  }
  return out;
}

async function engines(ck: Checkpoint, weights: 'f32' | 'q4'): Promise<[string, Forward][]> {
  return [
    ['cpu', await CpuLlama.load(ck.config, ck, { weights, maxContext: 512 })],
    ['webgpu-f32', await GpuLlama.load(ck, await gpuContext(false), { weights, maxContext: 512 })],
  ];
}

describe.skipIf(!HAS_SHARED)('stories260K golden, f32 weights (CPU and WebGPU/Dawn)', () => {
  expectNoGpuErrors();
  const g = HAS_SHARED ? golden('stories260K') : null!;
  let models: [string, Forward][];
  beforeAll(async () => {
    models = await engines(await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/f32'))), 'f32');
  });

  it('last-position logits near the golden and argmax at every position', async () => {
    expect(g.cases.length).toBeGreaterThan(0);
    for (const [name, m] of models) {
      for (const c of g.cases) {
        m.resetCache();
        const all = await m.forward(c.ids, { allLogits: true });
        const V = c.last_logits.length;
        expect(all).toHaveLength(c.ids.length * V);
        expectBelow(`${name} stories260K ids=${c.ids.length} last logits`, maxAbsDiff(all.subarray((c.ids.length - 1) * V), c.last_logits), F32_LOGITS);
        const am = c.ids.map((_, t) => argmax(all.subarray(t * V, (t + 1) * V)));
        expect(am, name).toEqual(c.argmax_all_positions);
      }
    }
  });

  it('32 greedy tokens identical to the reference', async () => {
    for (const [name, m] of models) {
      for (const c of g.cases) {
        expect(c.greedy_32).toHaveLength(32);
        expect(await greedy(m, c.ids, 32), name).toEqual(c.greedy_32);
      }
    }
  });

  it('sharded checkpoint gives the same logits as the single file', async () => {
    const sharded = await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/sharded')));
    const gpu = await GpuLlama.load(sharded, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    const single = models[1][1];
    single.resetCache();
    const a = await gpu.forward(g.cases[0].ids), b = await single.forward(g.cases[0].ids);
    expect(a).toHaveLength(512);
    expect(Array.from(a)).toEqual(Array.from(b));
    gpu.dispose();
  });

  it('bf16 checkpoint reproduces bf16_weights_case', async () => {
    const ck = await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/bf16')));
    const c = g.bf16_weights_case;
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: 64 });
    expectBelow('cpu stories260K bf16 logits', maxAbsDiff(cpu.forward(c.ids), c.last_logits), BF16_LOGITS);
    const gpu = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    expectBelow('webgpu-f32 stories260K bf16 logits', maxAbsDiff(await gpu.forward(c.ids), c.last_logits), BF16_LOGITS);
    gpu.dispose();
  });
});

describe.skipIf(!HAS_SHARED)('tiny-llama31-random golden (llama3 rope, GQA 8:2, untied head)', () => {
  expectNoGpuErrors();
  const g = HAS_SHARED ? golden('tiny-llama31-random') : null!;
  let ck: Checkpoint;
  beforeAll(async () => { ck = await openCheckpoint(new NodeDirSource(sharedPath('golden/tiny-llama31-random'))); });

  it('logits near the golden on CPU and WebGPU, incl. the 300-token prompt; greedy identical', async () => {
    expect(g.cases.some((c) => c.ids.length === 300)).toBe(true);
    for (const [name, m] of await engines(ck, 'f32')) {
      for (const c of g.cases) {
        m.resetCache();
        expectBelow(`${name} tiny-llama31 ids=${c.ids.length} last logits`, maxAbsDiff(await m.forward(c.ids), c.last_logits), F32_LOGITS);
        if (c.greedy_32) expect(await greedy(m, c.ids, 32), name).toEqual(c.greedy_32);
      }
    }
  });

  it('prefill-then-decode (and chunked prefill) equals one long prefill', async () => {
    const c = g.cases.find((x) => x.ids.length === 300)!;
    const gpu = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 512, maxBatch: 64 });
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: 512 });
    for (const [name, m] of [['webgpu-f32', gpu], ['cpu', cpu]] as [string, Forward][]) {
      m.resetCache();
      await m.forward(c.ids.slice(0, 280)); // 280 = 4 full chunks of 64 + 24 on the GPU
      let last: Float32Array = new Float32Array();
      for (const id of c.ids.slice(280)) last = await m.forward([id]);
      expectBelow(`${name} tiny-llama31 280 prefill + 20 decode last logits`, maxAbsDiff(last, c.last_logits), F32_LOGITS);
    }
    gpu.dispose();
  });
});

describe.skipIf(!HAS_SHARED)('4-bit weights and the f16 path on stories260K', () => {
  expectNoGpuErrors();
  const g = HAS_SHARED ? golden('stories260K') : null!;
  let ck: Checkpoint;
  beforeAll(async () => { ck = await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/f32'))); });

  it('q4 on the GPU equals the CPU q4 oracle; first greedy token matches golden; KL to f32 is small', async () => {
    const cpuQ4 = await CpuLlama.load(ck.config, ck, { weights: 'q4', maxContext: 512 });
    const gpuQ4 = await GpuLlama.load(ck, await gpuContext(false), { weights: 'q4', maxContext: 512 });
    let agree = 0, total = 0, kl = 0;
    for (const c of g.cases) {
      cpuQ4.resetCache(); gpuQ4.resetCache();
      const a = cpuQ4.forward(c.ids), b = await gpuQ4.forward(c.ids);
      expectBelow(`webgpu q4 vs cpu q4 stories260K ids=${c.ids.length}`, maxAbsDiff(a, b), Q4_VS_CPU_Q4);
      expect(argmax(b)).toBe(c.greedy_32![0]);
      kl += klDivergence(c.last_logits, b);
      const toks = await greedy(gpuQ4, c.ids, 32);
      expect(toks).toHaveLength(32);
      agree += toks.filter((t, i) => t === c.greedy_32![i]).length;
      total += 32;
    }
    console.log(`[q4 stories260K] greedy agreement ${agree}/${total}`);
    expectBelow('q4 stories260K mean KL(f32 golden || q4) nats', kl / g.cases.length, Q4_KL);
    gpuQ4.dispose();
  });

  it('f16 activations (lavapipe shader-f16) agree with the f32 golden and greedy tokens match', async () => {
    const f16 = await GpuLlama.load(ck, await gpuContext(true), { weights: 'f32', maxContext: 512 });
    expect(f16.precision).toBe('f16');
    let worst = 0;
    for (const c of g.cases) {
      f16.resetCache();
      worst = Math.max(worst, maxAbsDiff(await f16.forward(c.ids), c.last_logits));
      expect(await greedy(f16, c.ids, 32)).toEqual(c.greedy_32);
    }
    expectBelow('webgpu-f16 stories260K worst last logits', worst, F16_LOGITS);
    f16.dispose();
  });
});
