import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../models/checkpoint.ts';
import { CpuLlama } from '../../models/cpu/cpu-llama.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { argmax } from '../../models/sampling.ts';
import { expectBelow, expectNoGpuErrors, gpuContext, maxAbsDiff, printMeasured } from '../helpers/gpu.ts';
import { writeRandomLlama } from '../helpers/random-model.ts';

printMeasured('forward random');

// Bounds: max |logit difference|, absolute (logits of these random models are O(1)), measured on
// lavapipe, bound = margin x the worst.
/** WebGPU f32 path vs the CPU reference, same weights (f32, or the same dequantized q4): measured 1.8e-7 .. 8.3e-7, x ~12. */
const GPU_VS_CPU = 1e-5;
/** f16 activations vs the CPU reference (q4 weights): f16 rounding, measured 8.9e-4, x ~4.5 (10x f16 noise would hide real mistakes). */
const F16_VS_CPU = 4e-3;

// Runs on a fresh clone (no ../shared): seeded random Llama models generated here keep the
// CPU reference vs WebGPU agreement tested, with shapes chosen to hit the kernels' edge cases
// (K not a multiple of 32, odd row counts, GQA, llama3 rope, untied head, chunked prefill).
describe('seeded random Llama: WebGPU (Dawn) vs CPU reference', () => {
  let dir: string;
  let ck: Checkpoint;
  const ids = Array.from({ length: 70 }, (_, i) => (i * 37 + 11) % 200);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rand-llama-'));
    await writeRandomLlama(dir, { seed: 7, hiddenSize: 96, intermediateSize: 200, numLayers: 2, numHeads: 6, numKvHeads: 2, vocabSize: 203, tie: false, ropeScaling: true });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  expectNoGpuErrors();
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const weights of ['f32', 'q4'] as const) {
    it(`${weights} weights: all-position logits within 2e-3, chunked prefill + decode equal`, async () => {
      const cpu = await CpuLlama.load(ck.config, ck, { weights, maxContext: 128 });
      const gpu = await GpuLlama.load(ck, await gpuContext(false), { weights, maxContext: 128, maxBatch: 16 });
      const ref = cpu.forward(ids, { allLogits: true });
      gpu.resetCache();
      expect(ref).toHaveLength(ids.length * ck.config.vocabSize);
      expectBelow(`${weights} all-position logits, webgpu vs cpu`, maxAbsDiff(await gpu.forward(ids, { allLogits: true }), ref), GPU_VS_CPU);
      // Prefill 60 in chunks of 16, then decode 10 one by one: the last logits must match.
      gpu.resetCache();
      await gpu.forward(ids.slice(0, 60));
      let last: Float32Array = new Float32Array();
      for (const id of ids.slice(60)) last = await gpu.forward([id]);
      const V = ck.config.vocabSize;
      expectBelow(`${weights} 60 prefill (chunks of 16) + 10 decode last logits, webgpu vs cpu`, maxAbsDiff(last, ref.subarray((ids.length - 1) * V)), GPU_VS_CPU);
      gpu.dispose();
    });
  }

  it('f16 activations stay within f16 rounding of the CPU reference and pick the same argmax', async () => {
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'q4', maxContext: 128 });
    const gpu = await GpuLlama.load(ck, await gpuContext(true), { weights: 'q4', maxContext: 128 });
    const a = cpu.forward(ids), b = await gpu.forward(ids);
    expectBelow('f16 activations, q4 weights, last logits vs cpu', maxAbsDiff(a, b), F16_VS_CPU);
    expect(argmax(b)).toBe(argmax(a));
    gpu.dispose();
  });

  it('rejects ids outside the vocabulary and sequences longer than the context, and stays usable', async () => {
    const gpu = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 32 });
    await expect(gpu.forward([1, 203])).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(gpu.forward(Array(33).fill(1))).rejects.toThrow(/exceeds the context of 32/);
    expect(gpu.position).toBe(0);
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: 32 });
    expectBelow('f32 after refused inputs, webgpu vs cpu', maxAbsDiff(await gpu.forward([1, 2, 3]), cpu.forward([1, 2, 3])), GPU_VS_CPU);
    gpu.dispose();
    await expect(gpu.forward([1])).rejects.toThrow(/disposed/);
  });

  it('accounts every buffer: weights match the Q4 size formula, nothing left after dispose', async () => {
    const gpu = await GpuLlama.load(ck, await gpuContext(false), { weights: 'q4', maxContext: 64 });
    const mem = gpu.memory();
    const c = ck.config;
    expect(mem.kvCache).toBe(2 * c.numLayers * 64 * c.numKvHeads * c.headDim * 4);
    expect(mem.weights).toBeGreaterThan(0);
    expect(mem.total).toBe(mem.weights + mem.kvCache + mem.activations);
    gpu.dispose();
    expect(gpu.alloc.total).toBe(0);
  });
});

describe('GPU device loss', () => {
  expectNoGpuErrors(); // the lost device is its own (unwatched): the other devices stay clean
  it('a lost device turns into DeviceLostError, not a hang', async () => {
    const { acquireGpu } = await import('../../models/gpu/device.ts');
    const { nodeGpu } = await import('../../node/gpu/node-gpu.ts');
    const dir = await mkdtemp(join(tmpdir(), 'lost-'));
    await writeRandomLlama(dir, { seed: 1, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2, numKvHeads: 1, vocabSize: 50 });
    const ctx = await acquireGpu(nodeGpu(), { f16: false });
    const gpu = await GpuLlama.load(await openCheckpoint(new NodeDirSource(dir)), ctx, { weights: 'f32', maxContext: 16 });
    ctx.device.destroy();
    await expect(gpu.forward([1, 2])).rejects.toMatchObject({ code: 'device-lost' });
    await rm(dir, { recursive: true, force: true });
  });
});
