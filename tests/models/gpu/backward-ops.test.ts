import { beforeAll, describe, expect, it } from 'vitest';
import { attention, rope } from '../../../models/cpu/ops.ts';
import { attnScoresWgsl, attnValuesWgsl, softmaxWgsl } from '../../../models/gpu/wgsl/attention.ts';
import { attentionBackward, rmsnormBackward, ropeBackward, swigluBackward } from '../../../models/cpu/ops-backward.ts';
import { grid1D } from '../../../models/gpu/pipelines.ts';
import { ropeTables } from '../../../models/rope.ts';
import { f16BitsToF32 as f16val, f32ToF16Bits as f16bits } from '../../../models/safetensors/dtype.ts';
import {
  addIntoWgsl, attnBackwardDkWgsl, attnBackwardDqWgsl, attnBackwardDvWgsl, attnBackwardScoresWgsl,
  rmsnormBackwardWgsl, ropeBackwardWgsl, swigluBackwardWgsl, type BackwardOptions,
} from '../../../models/gpu/wgsl/backward.ts';
import { expectNoGpuErrors, gpuContext, maxAbsDiff, relErr } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

// Backward kernels against models/cpu/ops-backward.ts on odd shapes (C > 256, D/2 odd, GQA groups
// of 3), f32 path, plus f16 activations where the type split matters.
const rand = mulberry32(4321);
const randn = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);
const F32: BackwardOptions = { f16: false };
/** Rounds through f16, for references fed the same inputs as an f16 kernel. */
const toF16 = (a: Float32Array) => Uint16Array.from(a, (v) => f16bits(v));
const viaF16 = (a: Float32Array) => Float32Array.from(toF16(a), f16val);


describe('backward WGSL kernels vs the CPU reference (Dawn)', () => {
  let h: KernelHarness;
  let h16: KernelHarness;
  beforeAll(async () => {
    h = new KernelHarness(await gpuContext(false));
    h16 = new KernelHarness(await gpuContext(true));
  });
  expectNoGpuErrors();

  it('rmsnorm backward accumulates into dx (f32)', async () => {
    const T = 5, C = 301, eps = 1e-5;
    const x = randn(T * C), w = randn(C), dy = randn(T * C), dx0 = randn(T * C);
    const ref = dx0.slice();
    rmsnormBackward(ref, dy, x, w, T, C, eps);
    const dx = h.storage(dx0);
    await h.run(rmsnormBackwardWgsl(F32), [h.uniform([T, 0, T, 0]), h.uniform([C, 0, eps, 0], [2]), h.storage(x), h.storage(w), h.storage(dy), dx], [T, 1, 1]);
    expect(maxAbsDiff(await h.readF32(dx, T * C), ref)).toBeLessThan(2e-5);
  });

  it('rmsnorm backward with f16 activations: f32 gradients, and f16 gradients', async () => {
    const T = 4, C = 300, eps = 1e-5;
    const x = viaF16(randn(T * C)), w = randn(C), dy = randn(T * C), dx0 = randn(T * C);
    // f32 gradients (the default): only x is rounded, so the reference sees the same inputs.
    const ref = dx0.slice();
    rmsnormBackward(ref, dy, x, w, T, C, eps);
    const dx = h16.storage(dx0);
    const args = (dyb: GPUBuffer, dxb: GPUBuffer) => [h16.uniform([T, 0, T, 0]), h16.uniform([C, 0, eps, 0], [2]), h16.storage(toF16(x)), h16.storage(w), dyb, dxb];
    await h16.run(rmsnormBackwardWgsl({ f16: true }), args(h16.storage(dy), dx), [T, 1, 1]);
    expect(maxAbsDiff(await h16.readF32(dx, T * C), ref)).toBeLessThan(2e-5);
    // grad: 'T' stores dy and dx in f16 too: within f16 rounding of the output.
    const dy16 = viaF16(dy), dx016 = viaF16(dx0);
    const ref16 = dx016.slice();
    rmsnormBackward(ref16, dy16, x, w, T, C, eps);
    const dxh = h16.storage(toF16(dx016));
    await h16.run(rmsnormBackwardWgsl({ f16: true, grad: 'T' }), args(h16.storage(toF16(dy16)), dxh), [T, 1, 1]);
    const got = Float32Array.from(new Uint16Array(await h16.read(dxh, T * C * 2)), f16val);
    expect(relErr(got, ref16)).toBeLessThan(1e-3);
  });

  it('rope backward inverts the rotation at positions start + t', async () => {
    const T = 5, nh = 3, D = 10, start = 4, S = 16;
    const inv = Float64Array.from({ length: D / 2 }, (_, i) => 1 / Math.pow(10000, (2 * i) / D));
    const full = ropeTables(inv, 0, S), part = ropeTables(inv, start, T);
    const g = randn(T * nh * D);
    const ref = g.slice();
    ropeBackward(ref, part.cos, part.sin, T, nh, D);
    const gb = h.storage(g);
    const bind = [h.uniform([T, start, start + T, 0]), h.uniform([nh, D]), h.storage(full.cos), h.storage(full.sin), gb];
    await h.run(ropeBackwardWgsl(F32), bind, grid1D((T * nh * D) / 2, 256));
    const got = await h.readF32(gb, T * nh * D);
    expect(maxAbsDiff(got, ref)).toBeLessThan(1e-6);
    // And it is the inverse of the forward rotation.
    rope(got, part.cos, part.sin, T, nh, D);
    expect(maxAbsDiff(got, g)).toBeLessThan(1e-5);
  });

  for (const f16 of [false, true]) {
    it(`attention backward (causal GQA, group 3, D=10): dv, dS in place, dq, dk${f16 ? ' with f16 activations' : ''}`, async () => {
      const k_ = f16 ? h16 : h;
      const T = 9, H = 6, KV = 2, D = 10;
      // Activations as the forward stored them (rounded to f16 on the f16 path).
      const round = f16 ? viaF16 : (a: Float32Array) => a;
      const q = round(randn(T * H * D)), k = round(randn(T * KV * D)), v = round(randn(T * KV * D));
      const out = new Float32Array(T * H * D), probs = new Float32Array(H * T * T);
      attention(out, q, k, v, T, 0, H, KV, D, probs);
      const dout = randn(T * H * D);
      const dq = new Float32Array(T * H * D), dk = new Float32Array(T * KV * D), dv = new Float32Array(T * KV * D);
      attentionBackward(dq, dk, dv, dout, q, k, v, probs, T, H, KV, D);

      const o: BackwardOptions = { f16 };
      const act = (a: Float32Array) => (f16 ? k_.storage(toF16(a)) : k_.storage(a));
      const run = k_.uniform([T, 0, T, 0]);
      const at = k_.uniform([H, KV, D, 1 / Math.sqrt(D)], [3]);
      const db = k_.storage(dout), qb = act(q), kb = act(k), vb = act(v);
      // probs and out from the forward kernels, as a recompute leaves them (start 0, P = T).
      const pb = k_.empty(H * T * T * 4), ob = k_.empty(T * H * D * (f16 ? 2 : 4));
      await k_.run(attnScoresWgsl(o), [run, at, qb, kb, pb], [Math.ceil(T / 64), T, H]);
      await k_.run(softmaxWgsl(o), [run, pb], [T, H, 1]);
      await k_.run(attnValuesWgsl(o), [run, at, pb, vb, ob], grid1D(T * H * D, 64));
      const dqb = k_.empty(T * H * D * 4), dkb = k_.empty(T * KV * D * 4), dvb = k_.empty(T * KV * D * 4);
      await k_.run(attnBackwardDvWgsl(o), [run, at, pb, db, dvb], grid1D(T * KV * D, 64));
      await k_.run(attnBackwardScoresWgsl(o), [run, at, pb, db, vb, ob], [T, H, 1]);
      await k_.run(attnBackwardDqWgsl(o), [run, at, pb, kb, dqb], grid1D(T * H * D, 64));
      await k_.run(attnBackwardDkWgsl(o), [run, at, pb, qb, dkb], grid1D(T * KV * D, 64));
      // f16: delta uses the stored (f16) attention output, not the exact one.
      const tol = f16 ? 1e-3 : 1e-6;
      expect(relErr(await k_.readF32(dvb, T * KV * D), dv)).toBeLessThan(tol);
      expect(relErr(await k_.readF32(dqb, T * H * D), dq)).toBeLessThan(tol);
      expect(relErr(await k_.readF32(dkb, T * KV * D), dk)).toBeLessThan(tol);
      // Past the diagonal dS stays 0 (dq/dk never read it, but the buffer stays clean).
      const ds = await k_.readF32(pb, H * T * T);
      expect(ds.every((x, i) => (i % T) <= Math.floor(i / T) % T || x === 0)).toBe(true);
    });
  }

  it('swiglu backward: dgate in place over dout, dup written', async () => {
    const T = 3, F = 77, n = T * F;
    const gate = randn(n, 4), up = randn(n), dact = randn(n);
    const dgate = new Float32Array(n), dup = new Float32Array(n);
    swigluBackward(dgate, dup, dact, gate, up);
    const gb = h.storage(dact), ub = h.empty(n * 4);
    await h.run(swigluBackwardWgsl(F32), [h.uniform([T, 0, T, 0]), h.uniform([F]), gb, h.storage(gate), h.storage(up), ub], grid1D(n, 256));
    expect(maxAbsDiff(await h.readF32(gb, n), dgate)).toBeLessThan(1e-5);
    expect(maxAbsDiff(await h.readF32(ub, n), dup)).toBeLessThan(1e-5);
  });

  it('addInto on f32 gradients with f16 activations enabled', async () => {
    const T = 3, n = 70;
    const a = randn(T * n), b = randn(T * n);
    const ab = h16.storage(a);
    await h16.run(addIntoWgsl({ f16: true }), [h16.uniform([T, 0, T, 0]), h16.uniform([n]), ab, h16.storage(b)], grid1D(T * n, 256));
    expect(maxAbsDiff(await h16.readF32(ab, T * n), a.map((x, i) => x + b[i]))).toBe(0);
  });
});
