/**
 * Test helpers for the engine's numeric checks: one watched Dawn device per precision, a per-test
 * check that no WebGPU validation error happened, and comparisons that refuse to pass vacuously
 * (length mismatch, empty input, an all-zero reference). Dawn is imported only when a device is
 * asked for, so CPU-only tests (and e2e tests, which run in Node too) can use the comparisons.
 */
import { afterAll, afterEach, expect } from 'vitest';
import { acquireGpu, type GpuContext } from '../../models/gpu/device.ts';

const contexts = new Map<boolean, Promise<GpuContext>>();
/** Devices whose uncaptured errors land in gpuErrors (and whose queues afterEach drains). */
const watched = new Set<GPUDevice>();
/** WebGPU validation errors seen so far; tests assert it stays empty (a validation error is a bug). */
export const gpuErrors: string[] = [];

function watch(device: GPUDevice): void {
  watched.add(device);
  device.addEventListener('uncapturederror', (e) => {
    gpuErrors.push((e as GPUUncapturedErrorEvent).error.message);
  });
  void device.lost.then(() => watched.delete(device));
}

async function dawn(): Promise<GPU> {
  return (await import('../../node/gpu/node-gpu.ts')).nodeGpu();
}

/** One Dawn device per precision per test file (devices are expensive on lavapipe). */
export function gpuContext(f16: boolean): Promise<GpuContext> {
  let c = contexts.get(f16);
  if (!c) {
    c = dawn().then((gpu) => acquireGpu(gpu, { f16 })).then((ctx) => {
      if (f16 && !ctx.f16) throw new Error('This adapter has no shader-f16 (lavapipe from bookworm-backports has it).');
      watch(ctx.device);
      return ctx;
    });
    contexts.set(f16, c);
  }
  return c;
}

/**
 * Dawn's GPU object, but every device requested through it reports its validation errors into
 * gpuErrors: for code that acquires its own device (LlamaModel.load({ gpu })).
 * @example
 *   const m = await LlamaModel.load(src, { backend: 'webgpu', gpu: await watchedGpu() });
 */
export async function watchedGpu(): Promise<GPU> {
  const gpu = await dawn();
  const requestAdapter = async (o?: GPURequestAdapterOptions): Promise<GPUAdapter | null> => {
    const adapter = await gpu.requestAdapter(o);
    if (!adapter) return null;
    return new Proxy(adapter, {
      get(target, prop) {
        if (prop === 'requestDevice') {
          return async (d?: GPUDeviceDescriptor) => {
            const device = await target.requestDevice(d);
            watch(device);
            return device;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  return new Proxy(gpu, {
    get(target, prop) {
      if (prop === 'requestAdapter') return requestAdapter;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * Call inside every describe block that touches the GPU: after each test, waits for the queues of
 * every watched device and asserts no validation error was reported (the list is emptied, so a
 * failure names the test that caused it).
 * @example
 *   describe('kernels', () => { expectNoGpuErrors(); it(...); });
 */
export function expectNoGpuErrors(): void {
  afterEach(async () => {
    await Promise.all([...watched].map((d) => d.queue.onSubmittedWorkDone().catch(() => {})));
    expect(gpuErrors.splice(0), 'WebGPU validation errors').toEqual([]);
  });
}

function assertComparable(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} vs ${b.length}; nothing compared.`);
  if (a.length === 0) throw new Error(`${what}: empty input; nothing compared.`);
}

/** max |a - b|; throws on a length mismatch or empty input (a vacuous 0 would pass any bound). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertComparable(a, b, 'maxAbsDiff');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN propagates: NaN < bound fails
  }
  return m;
}

/** norm(got - ref) / norm(ref), in f64; throws on a length mismatch, empty input or ref = 0. */
export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  assertComparable(got, ref, 'relErr');
  let d = 0, r = 0;
  for (let i = 0; i < ref.length; i++) { d += (got[i] - ref[i]) ** 2; r += ref[i] ** 2; }
  if (r === 0) throw new Error('relErr: the reference is all zero; a relative error means nothing.');
  return Math.sqrt(d / r);
}

/** Agreement of two vectors: relative error (vs ref), cosine, and norm ratio |got| / |ref|. */
export function vectorAgreement(got: ArrayLike<number>, ref: ArrayLike<number>): { rel: number; cosine: number; normRatio: number } {
  assertComparable(got, ref, 'vectorAgreement');
  let d = 0, g2 = 0, r2 = 0, dot = 0;
  for (let i = 0; i < ref.length; i++) { d += (got[i] - ref[i]) ** 2; g2 += got[i] ** 2; r2 += ref[i] ** 2; dot += got[i] * ref[i]; }
  if (r2 === 0) throw new Error('vectorAgreement: the reference is all zero.');
  // An all-zero `got` gives cosine NaN, which fails any `> bound` check.
  return { rel: Math.sqrt(d / r2), cosine: dot / Math.sqrt(g2 * r2), normRatio: Math.sqrt(g2 / r2) };
}

/** Concatenates arrays (e.g. every LoRA gradient into one vector). */
export function concatAll(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p as ArrayLike<number>, o); o += p.length; }
  return out;
}

/** KL(p || q) of softmax(a) and softmax(b), in nats. */
export function klDivergence(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertComparable(a, b, 'klDivergence');
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

const measured: string[] = [];

/**
 * Asserts `value < bound` and records both; printMeasured() logs the file's figures once, so
 * every run shows how much margin each tolerance has.
 * @example
 *   expectBelow('cpu stories260K logits', maxAbsDiff(got, ref), 1e-4);
 */
export function expectBelow(label: string, value: number, bound: number): void {
  measured.push(`${label}: ${value.toExponential(2)} (bound ${bound.toExponential(1)})`);
  expect(value, `${label}: ${value} is not below ${bound}`).toBeLessThan(bound);
}

/** Registers an afterAll that prints every expectBelow figure of this file under `tag`. */
export function printMeasured(tag: string): void {
  afterAll(() => {
    if (measured.length) console.log(`\n[${tag}] ${measured.splice(0).join(`\n[${tag}] `)}\n`);
  });
}
