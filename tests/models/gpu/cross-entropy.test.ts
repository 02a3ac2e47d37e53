import { beforeAll, describe, expect, it } from 'vitest';
import { crossEntropyForwardBackward } from '../../../models/cpu/ops-backward.ts';
import { crossEntropyWgsl, IGNORE_TARGET, lossMeanWgsl } from '../../../models/gpu/wgsl/cross-entropy.ts';
import { expectNoGpuErrors, gpuContext, maxAbsDiff } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

const rand = mulberry32(99);

/** Runs the CE kernel over rows [row0, row0 + rows) of `logits` (whole sequence) in chunks. */
async function gpuCrossEntropy(h: KernelHarness, logits: Float32Array, targets: Uint32Array, V: number, chunks: number[]) {
  const R = targets.length;
  const active = targets.filter((y) => y !== IGNORE_TARGET).length;
  const tb = h.storage(targets), lossB = h.empty(R * 4), out = h.empty(16);
  const dlogits = new Float32Array(R * V);
  let row0 = 0;
  for (const rows of chunks) {
    // One small logits buffer per chunk, as a trainer would reuse between lm_head chunks.
    const lb = h.storage(logits.subarray(row0 * V, (row0 + rows) * V));
    await h.run(crossEntropyWgsl(), [h.uniform([rows, V, row0, 1 / active], [3]), tb, lb, lossB], [rows, 1, 1]);
    dlogits.set(await h.readF32(lb, rows * V), row0 * V);
    row0 += rows;
  }
  await h.run(lossMeanWgsl(), [h.uniform([R, 2, 1 / active, 0], [2]), lossB, out], [1, 1, 1]);
  return { dlogits, rowLoss: await h.readF32(lossB, R), mean: (await h.readF32(out, 4))[2] };
}

function cpuReference(logits: Float32Array, targets: Uint32Array, V: number) {
  const R = targets.length;
  const t = Array.from(targets, (y) => (y === IGNORE_TARGET ? -1 : y));
  const dl = new Float32Array(R * V);
  const mean = crossEntropyForwardBackward(dl, logits, t, new Array<number>(R).fill(1), R, V);
  return { dl, mean };
}

describe('cross-entropy forward+backward kernel vs crossEntropyForwardBackward (Dawn)', () => {
  let h: KernelHarness;
  beforeAll(async () => { h = new KernelHarness(await gpuContext(false)); });
  expectNoGpuErrors();

  it('odd V, large logits, an ignored row, rows in two chunks', async () => {
    const V = 1237, targets = new Uint32Array([5, IGNORE_TARGET, 1236, 0, 700]);
    const R = targets.length;
    // Large magnitudes check the max subtraction; one row is constant (uniform softmax).
    const logits = Float32Array.from({ length: R * V }, () => (rand() * 2 - 1) * 30);
    logits.fill(3, 3 * V, 4 * V);
    const ref = cpuReference(logits, targets, V);
    const got = await gpuCrossEntropy(h, logits, targets, V, [2, 3]);
    expect(Math.abs(got.mean - ref.mean) / ref.mean).toBeLessThan(1e-6);
    expect(got.rowLoss[1]).toBe(0);
    expect(got.rowLoss[3]).toBeCloseTo(Math.log(V), 5);
    expect(maxAbsDiff(got.dlogits, ref.dl)).toBeLessThan(1e-7);
    expect(got.dlogits.subarray(V, 2 * V).every((x) => x === 0)).toBe(true);
  });

  it('Llama-3 vocabulary (V = 128256), 2 rows', async () => {
    const V = 128256, targets = new Uint32Array([128009, 17]);
    const logits = Float32Array.from({ length: 2 * V }, () => (rand() * 2 - 1) * 8);
    const ref = cpuReference(logits, targets, V);
    const got = await gpuCrossEntropy(h, logits, targets, V, [2]);
    expect(Math.abs(got.mean - ref.mean) / ref.mean).toBeLessThan(1e-5);
    expect(maxAbsDiff(got.dlogits, ref.dl)).toBeLessThan(1e-8);
  });
});
