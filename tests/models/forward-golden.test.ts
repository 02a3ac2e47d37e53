import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../models/checkpoint.ts';
import { CpuLlama } from '../../models/cpu/cpu-llama.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import { NodeDirSource } from '../../models/io/node-source.ts';
import { argmax } from '../../models/sampling.ts';
import { gpuContext, gpuErrors, klDivergence, maxAbsDiff } from '../helpers/gpu.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

warnIfNoShared('golden forward tests (forward-stories260K.json, forward-tiny-llama31-random.json)');

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
  const g = HAS_SHARED ? golden('stories260K') : null!;
  let models: [string, Forward][];
  beforeAll(async () => {
    models = await engines(await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/f32'))), 'f32');
  });
  afterAll(() => expect(gpuErrors).toEqual([]));

  it('last-position logits within 1e-3 and argmax at every position', async () => {
    for (const [name, m] of models) {
      for (const c of g.cases) {
        m.resetCache();
        const all = await m.forward(c.ids, { allLogits: true });
        const V = c.last_logits.length;
        expect(maxAbsDiff(all.subarray((c.ids.length - 1) * V), c.last_logits), `${name} ids=${c.ids.length}`).toBeLessThan(1e-3);
        const am = c.ids.map((_, t) => argmax(all.subarray(t * V, (t + 1) * V)));
        expect(am, name).toEqual(c.argmax_all_positions);
      }
    }
  });

  it('32 greedy tokens identical to the reference', async () => {
    for (const [name, m] of models) {
      for (const c of g.cases) expect(await greedy(m, c.ids, 32), name).toEqual(c.greedy_32);
    }
  });

  it('sharded checkpoint gives the same logits as the single file', async () => {
    const sharded = await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/sharded')));
    const gpu = await GpuLlama.load(sharded, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    const single = models[1][1];
    single.resetCache();
    expect(Array.from(await gpu.forward(g.cases[0].ids))).toEqual(Array.from(await single.forward(g.cases[0].ids)));
    gpu.dispose();
  });

  it('bf16 checkpoint reproduces bf16_weights_case', async () => {
    const ck = await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/bf16')));
    const c = g.bf16_weights_case;
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: 64 });
    expect(maxAbsDiff(cpu.forward(c.ids), c.last_logits)).toBeLessThan(1e-3);
    const gpu = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    expect(maxAbsDiff(await gpu.forward(c.ids), c.last_logits)).toBeLessThan(1e-3);
    gpu.dispose();
  });
});

describe.skipIf(!HAS_SHARED)('tiny-llama31-random golden (llama3 rope, GQA 8:2, untied head)', () => {
  const g = HAS_SHARED ? golden('tiny-llama31-random') : null!;
  let ck: Checkpoint;
  beforeAll(async () => { ck = await openCheckpoint(new NodeDirSource(sharedPath('golden/tiny-llama31-random'))); });

  it('logits within 2e-3 on CPU and WebGPU, incl. the 300-token prompt; greedy identical', async () => {
    for (const [name, m] of await engines(ck, 'f32')) {
      for (const c of g.cases) {
        m.resetCache();
        expect(maxAbsDiff(await m.forward(c.ids), c.last_logits), `${name} ids=${c.ids.length}`).toBeLessThan(2e-3);
        if (c.greedy_32) expect(await greedy(m, c.ids, 32), name).toEqual(c.greedy_32);
      }
    }
  });

  it('prefill-then-decode (and chunked prefill) equals one long prefill', async () => {
    const c = g.cases.find((x) => x.ids.length === 300)!;
    const gpu = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 512, maxBatch: 64 });
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: 512 });
    for (const m of [gpu, cpu] as Forward[]) {
      m.resetCache();
      await m.forward(c.ids.slice(0, 280)); // 280 = 4 full chunks of 64 + 24 on the GPU
      let last: Float32Array = new Float32Array();
      for (const id of c.ids.slice(280)) last = await m.forward([id]);
      expect(maxAbsDiff(last, c.last_logits)).toBeLessThan(2e-3);
    }
    gpu.dispose();
  });
});

describe.skipIf(!HAS_SHARED)('4-bit weights and the f16 path on stories260K', () => {
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
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-3);
      expect(argmax(b)).toBe(c.greedy_32![0]);
      kl += klDivergence(c.last_logits, b);
      const toks = await greedy(gpuQ4, c.ids, 32);
      agree += toks.filter((t, i) => t === c.greedy_32![i]).length;
      total += 32;
    }
    console.log(`[q4 stories260K] greedy agreement ${agree}/${total}, mean KL(f32 || q4) ${(kl / g.cases.length).toExponential(3)} nats`);
    expect(kl / g.cases.length).toBeLessThan(0.1);
    gpuQ4.dispose();
  });

  it('f16 activations (lavapipe shader-f16) agree with f32 within 5e-2 and greedy tokens match', async () => {
    const f16 = await GpuLlama.load(ck, await gpuContext(true), { weights: 'f32', maxContext: 512 });
    expect(f16.precision).toBe('f16');
    let worst = 0;
    for (const c of g.cases) {
      f16.resetCache();
      worst = Math.max(worst, maxAbsDiff(await f16.forward(c.ids), c.last_logits));
      expect(await greedy(f16, c.ids, 32)).toEqual(c.greedy_32);
    }
    console.log(`[f16 stories260K] worst |logit - golden| = ${worst.toExponential(3)}`);
    expect(worst).toBeLessThan(5e-2);
    f16.dispose();
  });
});
