/**
 * The checks the numeric tests rely on must be able to fail: comparisons refuse empty or
 * mismatched input, and a WebGPU validation error on a watched device (gpuContext or
 * watchedGpu) really lands in gpuErrors, which expectNoGpuErrors asserts empty after each test.
 */
import { describe, expect, it } from 'vitest';
import { expectNoGpuErrors, gpuContext, gpuErrors, klDivergence, maxAbsDiff, relErr, vectorAgreement, watchedGpu } from '../../helpers/gpu.ts';

describe('comparison helpers refuse to pass vacuously', () => {
  it('maxAbsDiff / relErr / vectorAgreement / klDivergence throw on empty or mismatched input', () => {
    for (const f of [maxAbsDiff, relErr, vectorAgreement, klDivergence] as ((a: ArrayLike<number>, b: ArrayLike<number>) => unknown)[]) {
      expect(() => f([], [])).toThrow(/empty/);
      expect(() => f([1, 2], [1, 2, 3])).toThrow(/length 2 vs 3/);
    }
    expect(() => relErr([1, 2], [0, 0])).toThrow(/all zero/);
    expect(maxAbsDiff([1, 2], [1, 2.5])).toBe(0.5);
    expect(maxAbsDiff([1, NaN], [1, 2])).toBeNaN(); // NaN fails any `< bound`
    expect(relErr([3, 0], [3, 4])).toBeCloseTo(0.8, 12);
  });

  it('an all-zero gradient fails a cosine bound (NaN) and a norm-ratio bound', () => {
    const s = vectorAgreement([0, 0, 0], [1, -2, 3]);
    expect(s.rel).toBe(1); // what `rel < 1.2` let through
    expect(s.cosine).toBeNaN();
    expect(s.normRatio).toBe(0);
  });
});

describe('validation errors on watched devices are seen', () => {
  expectNoGpuErrors();

  it('gpuContext and watchedGpu devices report an invalid buffer into gpuErrors', async () => {
    const ctx = await gpuContext(false);
    const adapter = await (await watchedGpu()).requestAdapter();
    const own = await adapter!.requestDevice();
    for (const device of [ctx.device, own]) {
      const before = gpuErrors.length;
      // MAP_READ with MAP_WRITE is invalid: an uncaptured validation error.
      device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE });
      await device.queue.onSubmittedWorkDone();
      expect(gpuErrors.length).toBe(before + 1);
    }
    gpuErrors.splice(0); // seen on purpose; expectNoGpuErrors would fail this test otherwise
    own.destroy();
  });
});
