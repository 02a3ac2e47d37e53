import { acquireGpu, type GpuContext } from '../../models/gpu/device.ts';
import { nodeGpu } from '../../models/gpu/node-gpu.ts';

const contexts = new Map<boolean, Promise<GpuContext>>();
/** WebGPU validation errors seen so far; tests assert it stays empty (a validation error is a bug). */
export const gpuErrors: string[] = [];

/** One Dawn device per precision per test file (devices are expensive on lavapipe). */
export function gpuContext(f16: boolean): Promise<GpuContext> {
  let c = contexts.get(f16);
  if (!c) {
    c = acquireGpu(nodeGpu(), { f16 }).then((ctx) => {
      if (f16 && !ctx.f16) throw new Error('This adapter has no shader-f16 (lavapipe from bookworm-backports has it).');
      ctx.device.addEventListener('uncapturederror', (e) => {
        gpuErrors.push((e as GPUUncapturedErrorEvent).error.message);
      });
      return ctx;
    });
    contexts.set(f16, c);
  }
  return c;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** KL(p || q) of softmax(a) and softmax(b), in nats. */
export function klDivergence(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const logSoftmax = (x: ArrayLike<number>) => {
    let max = -Infinity;
    for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]);
    let s = 0;
    for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - max);
    const ls = Math.log(s) + max;
    return Array.from(x, (v) => v - ls);
  };
  const lp = logSoftmax(a), lq = logSoftmax(b);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
  return kl;
}
