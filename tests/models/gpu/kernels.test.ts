import { beforeAll, describe, expect, it } from 'vitest';
import { attention, matmul, rmsnorm, rope, swiglu } from '../../../models/cpu/ops.ts';
import { grid1D } from '../../../models/gpu/pipelines.ts';
import { f16BitsToF32 as f16val, f32ToF16Bits as f16bits } from '../../../models/safetensors/dtype.ts';
import { dequantizeQ4, quantizeQ4 } from '../../../models/quant/q4.ts';
import { ropeTables } from '../../../models/rope.ts';
import { attnScoresWgsl, attnValuesWgsl, ropeWgsl, softmaxWgsl, toCacheWgsl } from '../../../models/gpu/wgsl/attention.ts';
import { addWgsl, embedWgsl, rmsnormWgsl, swigluWgsl } from '../../../models/gpu/wgsl/elementwise.ts';
import { matmulParams, matmulTiledWgsl, matvecWgsl } from '../../../models/gpu/wgsl/matmul.ts';
import { quantizeQ4Wgsl } from '../../../models/gpu/wgsl/quantize.ts';
import { expectNoGpuErrors, gpuContext, maxAbsDiff } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

// Every kernel against the CPU reference (models/cpu/ops.ts, models/quant/q4.ts), f32 path,
// on shapes that are not multiples of the tile sizes.
const rand = mulberry32(1234);
const randn = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);
const F32 = { f16: false };

describe('WGSL kernels vs the CPU reference (Dawn)', () => {
  let h: KernelHarness;
  beforeAll(async () => { h = new KernelHarness(await gpuContext(false)); });
  expectNoGpuErrors();

  it('quantize_q4 packs exactly like quantizeQ4 (K not a multiple of 32, odd rows)', async () => {
    const N = 37, K = 172, G = Math.ceil(K / 32);
    const w = randn(N * K, 0.3);
    const ref = quantizeQ4(w, N, K);
    const qw = h.empty(N * G * 16), sc = h.empty(Math.ceil((N * G) / 2) * 4);
    // Two chunks, as the streaming uploader does: rows 0..19 then 20..36.
    for (const [r0, R] of [[0, 20], [20, 17]]) {
      await h.run(quantizeQ4Wgsl(), [h.uniform([R, K, G, r0]), h.storage(w.subarray(r0 * K, (r0 + R) * K)), qw, sc], grid1D(Math.ceil((R * G) / 2), 64));
    }
    const gotQ = new Uint32Array(await h.read(qw));
    const gotS = new Uint16Array(await h.read(sc)).subarray(0, N * G);
    let nibbleMismatch = 0;
    for (let i = 0; i < gotQ.length; i++) for (let j = 0; j < 8; j++) if (((gotQ[i] >>> (4 * j)) & 15) !== ((ref.qweight[i] >>> (4 * j)) & 15)) nibbleMismatch++;
    expect(Array.from(gotS)).toEqual(Array.from(ref.scales));
    expect(nibbleMismatch).toBeLessThanOrEqual(2); // rounding ties of 1/d (WGSL division is not correctly rounded)
    const deq = dequantizeQ4({ N, K, G, qweight: gotQ, scales: gotS });
    expect(maxAbsDiff(deq, dequantizeQ4(ref))).toBeLessThan(0.3 / 7);
  });

  for (const weights of ['f32', 'q4'] as const) {
    for (const [M, N, K] of [[1, 45, 172], [5, 45, 172], [33, 130, 64], [70, 7, 96]] as const) {
      it(`matmul ${weights} M=${M} N=${N} K=${K} (${M === 1 ? 'matvec' : 'tiled'})`, async () => {
        const x = randn(M * K), w = randn(N * K, 0.2);
        const q = quantizeQ4(w, N, K);
        const wEff = weights === 'q4' ? dequantizeQ4(q) : w;
        const ref = new Float32Array(M * N);
        matmul(ref, x, wEff, M, K, N);
        const y = h.empty(M * N * 4);
        const wb = weights === 'q4' ? [h.storage(q.qweight), h.storage(q.scales)] : [h.storage(w), null];
        const o = { f16: false, weights, out: 'T' } as const;
        const code = M === 1 ? matvecWgsl(o) : matmulTiledWgsl(o);
        const grid: [number, number, number] = M === 1 ? grid1D(N, 8) : [Math.ceil(N / 64), Math.ceil(M / 32), 1];
        await h.run(code, [h.uniform([M, 0, M, 0]), h.uniform(matmulParams(N, K)), h.storage(x), wb[0], wb[1], y], grid);
        expect(maxAbsDiff(await h.readF32(y, M * N), ref)).toBeLessThan(1e-4 * Math.sqrt(K));
      });
    }
    // A matrix split in row blocks (the 128,256-row lm_head over a binding limit): each block's
    // dispatch writes its own columns r0..r0+rows of the full (M, N) output (row stride N).
    for (const M of [1, 37]) {
      it(`matmul ${weights} in row blocks M=${M} N=150 K=96: blocks write their columns of y`, async () => {
        const N = 150, K = 96, x = randn(M * K), w = randn(N * K, 0.2);
        const wEff = weights === 'q4' ? dequantizeQ4(quantizeQ4(w, N, K)) : w;
        const ref = new Float32Array(M * N);
        matmul(ref, x, wEff, M, K, N);
        const y = h.storage(new Float32Array(M * N).fill(NaN)); // every element must be written once
        const o = { f16: false, weights, out: 'f32' } as const;
        for (const [r0, rows] of [[0, 64], [64, 64], [128, 22]]) {
          const wb = w.subarray(r0 * K, (r0 + rows) * K);
          const q = quantizeQ4(wb, rows, K);
          const bufs = weights === 'q4' ? [h.storage(q.qweight), h.storage(q.scales)] : [h.storage(wb), null];
          const code = M === 1 ? matvecWgsl(o) : matmulTiledWgsl(o);
          const grid: [number, number, number] = M === 1 ? grid1D(rows, 8) : [Math.ceil(rows / 64), Math.ceil(M / 32), 1];
          await h.run(code, [h.uniform([M, 0, M, 0]), h.uniform(matmulParams(rows, K, { yOff: r0, ldy: N })), h.storage(x), bufs[0], bufs[1], y], grid);
        }
        expect(maxAbsDiff(await h.readF32(y, M * N), ref)).toBeLessThan(1e-4 * Math.sqrt(K));
      });
    }
  }

  it('matmul f16 activations (shader-f16) within f16 rounding of the reference', async () => {
    const h16 = new KernelHarness(await gpuContext(true));
    const M = 9, N = 40, K = 96;
    const x = randn(M * K), w = randn(N * K, 0.2);
    const x16 = Uint16Array.from(x, (v) => f16bits(v));
    const ref = new Float32Array(M * N);
    matmul(ref, Float32Array.from(x16, f16val), w, M, K, N);
    const y = h16.empty(M * N * 4);
    await h16.run(matmulTiledWgsl({ f16: true, weights: 'f32', out: 'f32' }), [h16.uniform([M, 0, M, 0]), h16.uniform(matmulParams(N, K)), h16.storage(x16), h16.storage(w), null, y], [1, 1, 1]);
    expect(maxAbsDiff(await h16.readF32(y, M * N), ref)).toBeLessThan(1e-3);
  });

  it('rmsnorm (all rows, and last row only)', async () => {
    const T = 3, C = 300, eps = 1e-5;
    const x = randn(T * C), w = randn(C);
    const ref = new Float32Array(T * C);
    rmsnorm(ref, x, w, T, C, eps);
    const y = h.empty(T * C * 4);
    await h.run(rmsnormWgsl(F32), [h.uniform([T, 0, T, 0]), h.uniform([C, 0, eps, 0], [2]), h.storage(x), h.storage(w), y], [T, 1, 1]);
    expect(maxAbsDiff(await h.readF32(y, T * C), ref)).toBeLessThan(1e-5);
    const last = h.empty(C * 4);
    await h.run(rmsnormWgsl(F32), [h.uniform([T, 0, T, 0]), h.uniform([C, 1, eps, 0], [2]), h.storage(x), h.storage(w), last], [1, 1, 1]);
    expect(maxAbsDiff(await h.readF32(last, C), ref.subarray((T - 1) * C))).toBeLessThan(1e-5);
  });

  it('rope in place and into the cache at position start', async () => {
    const T = 4, nh = 3, D = 8, start = 5, S = 12;
    const inv = Float64Array.from({ length: D / 2 }, (_, i) => 1 / Math.pow(10000, (2 * i) / D));
    const full = ropeTables(inv, 0, S);
    const part = ropeTables(inv, start, T);
    const x = randn(T * nh * D);
    const ref = x.slice();
    rope(ref, part.cos, part.sin, T, nh, D);
    const run = h.uniform([T, start, start + T, 0]);
    const xb = h.storage(x);
    await h.run(ropeWgsl({ f16: false, mode: 'inplace' }), [run, h.uniform([nh, D]), h.storage(full.cos), h.storage(full.sin), xb], grid1D(T * nh * D / 2, 256));
    expect(maxAbsDiff(await h.readF32(xb, T * nh * D), ref)).toBeLessThan(1e-5);
    const cache = h.empty(S * nh * D * 4);
    await h.run(ropeWgsl({ f16: false, mode: 'to-cache' }), [run, h.uniform([nh, D]), h.storage(full.cos), h.storage(full.sin), h.storage(x), cache], grid1D(T * nh * D / 2, 256));
    const got = await h.readF32(cache, S * nh * D);
    expect(maxAbsDiff(got.subarray(start * nh * D, (start + T) * nh * D), ref)).toBeLessThan(1e-5);
    expect(got.subarray(0, start * nh * D).every((v) => v === 0)).toBe(true);
  });

  it('attention: scores, softmax and values (GQA, start > 0) match attention()', async () => {
    const T = 3, start = 6, P = start + T, H = 4, KV = 2, D = 8;
    const q = randn(T * H * D), k = randn(P * KV * D), v = randn(P * KV * D);
    const ref = new Float32Array(T * H * D), probs = new Float32Array(H * T * P);
    attention(ref, q, k, v, T, start, H, KV, D, probs);
    const run = h.uniform([T, start, P, 0]);
    const att = h.uniform([H, KV, D, 1 / Math.sqrt(D)], [3]);
    const scores = h.empty(H * T * P * 4), out = h.empty(T * H * D * 4), vc = h.storage(v);
    await h.run(attnScoresWgsl(F32), [run, att, h.storage(q), h.storage(k), scores], [Math.ceil(P / 64), T, H]);
    await h.run(softmaxWgsl(F32), [run, scores], [T, H, 1]);
    expect(maxAbsDiff(await h.readF32(scores, H * T * P), probs)).toBeLessThan(1e-6);
    await h.run(attnValuesWgsl(F32), [run, att, scores, vc, out], grid1D(T * H * D, 64));
    expect(maxAbsDiff(await h.readF32(out, T * H * D), ref)).toBeLessThan(1e-5);
  });

  it('swiglu, residual add, v-to-cache and embedding gather (f32 and q4)', async () => {
    const T = 3, n = 50, run = h.uniform([T, 2, T + 2, 0]);
    const g = randn(T * n), u = randn(T * n);
    const ref = new Float32Array(T * n);
    swiglu(ref, g, u);
    const gb = h.storage(g);
    await h.run(swigluWgsl(F32), [run, h.uniform([n]), gb, h.storage(u)], grid1D(T * n, 256));
    expect(maxAbsDiff(await h.readF32(gb, T * n), ref)).toBeLessThan(1e-6);
    const xb = h.storage(g);
    await h.run(addWgsl(F32), [run, h.uniform([n]), xb, h.storage(u)], grid1D(T * n, 256));
    expect(maxAbsDiff(await h.readF32(xb, T * n), g.map((v, i) => v + u[i]))).toBeLessThan(1e-6);
    const cache = h.empty((T + 2) * n * 4);
    await h.run(toCacheWgsl(F32), [run, h.uniform([n]), h.storage(u), cache], grid1D(T * n, 256));
    expect(Array.from((await h.readF32(cache, (T + 2) * n)).subarray(2 * n))).toEqual(Array.from(u));

    const V = 11, C = 40, ids = new Uint32Array([3, 0, 10]);
    const emb = randn(V * C), q = quantizeQ4(emb, V, C), deq = dequantizeQ4(q);
    for (const weights of ['f32', 'q4'] as const) {
      const x = h.empty(T * C * 4);
      const wb = weights === 'q4' ? [h.storage(q.qweight), h.storage(q.scales)] : [h.storage(emb), null];
      await h.run(embedWgsl({ f16: false, weights }), [run, h.uniform([C, 0, V, 0]), h.storage(ids), wb[0], wb[1], x], grid1D(T * C, 256));
      const src = weights === 'q4' ? deq : emb;
      const want = new Float32Array(T * C);
      ids.forEach((id, t) => want.set(src.subarray(id * C, (id + 1) * C), t * C));
      expect(maxAbsDiff(await h.readF32(x, T * C), want)).toBe(0);
      // The same table in row blocks (rows 0..5, 6..10), one dispatch each: every id from its block.
      const xb = h.storage(new Float32Array(T * C).fill(NaN));
      for (const [r0, rows] of [[0, 6], [6, 5]]) {
        const part = emb.subarray(r0 * C, (r0 + rows) * C), qp = quantizeQ4(part, rows, C);
        const bb = weights === 'q4' ? [h.storage(qp.qweight), h.storage(qp.scales)] : [h.storage(part), null];
        await h.run(embedWgsl({ f16: false, weights }), [run, h.uniform([C, r0, rows, 0]), h.storage(ids), bb[0], bb[1], xb], grid1D(T * C, 256));
      }
      expect(maxAbsDiff(await h.readF32(xb, T * C), want)).toBe(0);
    }
  });
});
