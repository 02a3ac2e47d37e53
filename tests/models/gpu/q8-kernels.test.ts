import { beforeAll, describe, expect, it } from 'vitest';
import { matmul } from '../../../models/cpu/ops.ts';
import { matmulBackwardInput } from '../../../models/cpu/ops-backward.ts';
import { grid1D } from '../../../models/gpu/pipelines.ts';
import { embedWgsl } from '../../../models/gpu/wgsl/elementwise.ts';
import { matmulBackwardInputGrid, matmulBackwardInputWgsl } from '../../../models/gpu/wgsl/matmul-backward.ts';
import { matmulParams, matmulTiledWgsl, matvecWgsl } from '../../../models/gpu/wgsl/matmul.ts';
import { quantizeQ8Wgsl } from '../../../models/gpu/wgsl/quantize.ts';
import { dequantizeQ8, q8Bytes, quantizeQ8 } from '../../../models/quant/q8.ts';
import { f16BitsToF32 as f16val, f32ToF16Bits as f16bits } from '../../../models/safetensors/dtype.ts';
import { expectNoGpuErrors, gpuContext, maxAbsDiff, relErr } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

// The 8-bit lm_head format (models/quant/q8.ts): the CPU reference itself, then every q8 kernel
// (quantizer, forward matvec and tiled matmul, the trainer's input gradient, the tied-embedding
// lookup) against it with dequantizeQ8(quantizeQ8(w)) as the effective weights, f32 and f16
// activations, on shapes off the tiles and the 32-wide groups.
const rand = mulberry32(808);
const randn = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);

describe('Q8 reference (models/quant/q8.ts)', () => {
  it('round-trips within half a step per group, keeps the extreme exactly at +-127, zero-pads K', () => {
    const N = 9, K = 70, G = 3; // K not a multiple of 32
    const w = randn(N * K, 0.5);
    w[5] = -2; // an outlier: its group's step grows, the others' do not
    const q = quantizeQ8(w, N, K);
    expect(q.G).toBe(G);
    expect(q.qweight).toHaveLength(N * G * 8);
    expect(q.scales).toHaveLength(N * G);
    const d = dequantizeQ8(q);
    expect(d).toHaveLength(N * K);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < G; g++) {
        const step = f16val(q.scales[n * G + g]);
        let amax = 0;
        for (let k = g * 32; k < Math.min(K, g * 32 + 32); k++) amax = Math.max(amax, Math.abs(w[n * K + k]));
        // f16 rounding of the scale adds up to 127 * 2^-11 relative on the largest values.
        for (let k = g * 32; k < Math.min(K, g * 32 + 32); k++) expect(Math.abs(d[n * K + k] - w[n * K + k])).toBeLessThanOrEqual(step / 2 + amax * 2 ** -10);
      }
    }
    expect(d[5]).toBeCloseTo(-2, 2);
    // The padding of the last group (k = 70..95) holds q = 0.
    const lastWord = q.qweight[0 * G * 8 + 2 * 8 + 7];
    expect(lastWord).toBe(0);
    // Signed bytes: the outlier's byte is -127 (0x81).
    expect((q.qweight[1] >>> 8) & 255).toBe(0x81);
    expect(q8Bytes(N, K)).toBe(N * G * 32 + Math.ceil((N * G) / 2) * 4);
  });

  it('is 16x finer than q4 on the same matrix (error of a 512 x 64 Gaussian-ish matrix)', async () => {
    const { dequantizeQ4, quantizeQ4 } = await import('../../../models/quant/q4.ts');
    const N = 512, K = 64, w = randn(N * K, 0.1);
    const e8 = maxAbsDiff(dequantizeQ8(quantizeQ8(w, N, K)), w), e4 = maxAbsDiff(dequantizeQ4(quantizeQ4(w, N, K)), w);
    expect(e8).toBeLessThan(e4 / 10); // step amax/127 vs amax/8 (half steps: 1/254 vs 1/16)
  });
});

describe('Q8 kernels vs the CPU reference (Dawn)', () => {
  let h: KernelHarness;
  let h16: KernelHarness;
  beforeAll(async () => {
    h = new KernelHarness(await gpuContext(false));
    h16 = new KernelHarness(await gpuContext(true));
  });
  expectNoGpuErrors();

  it('quantize_q8 packs like quantizeQ8 (K not a multiple of 32, odd rows, two chunks)', async () => {
    const N = 37, K = 172, G = Math.ceil(K / 32);
    const w = randn(N * K, 0.3);
    const ref = quantizeQ8(w, N, K);
    const qw = h.empty(N * G * 32), sc = h.empty(Math.ceil((N * G) / 2) * 4);
    for (const [r0, R] of [[0, 20], [20, 17]]) {
      await h.run(quantizeQ8Wgsl(), [h.uniform([R, K, G, r0]), h.storage(w.subarray(r0 * K, (r0 + R) * K)), qw, sc], grid1D(Math.ceil((R * G) / 2), 64));
    }
    const gotQ = new Uint32Array(await h.read(qw));
    const gotS = new Uint16Array(await h.read(sc)).subarray(0, N * G);
    expect(gotQ).toHaveLength(ref.qweight.length);
    expect(Array.from(gotS)).toEqual(Array.from(ref.scales));
    let byteMismatch = 0;
    for (let i = 0; i < gotQ.length; i++) for (let j = 0; j < 4; j++) if (((gotQ[i] >>> (8 * j)) & 255) !== ((ref.qweight[i] >>> (8 * j)) & 255)) byteMismatch++;
    expect(byteMismatch).toBeLessThanOrEqual(2); // rounding ties of 1/d (WGSL division is not correctly rounded)
    const got = dequantizeQ8({ N, K, G, qweight: gotQ, scales: gotS });
    expect(maxAbsDiff(got, dequantizeQ8(ref))).toBeLessThan(0.3 / 100); // at most one step
  });

  for (const f16 of [false, true]) {
    const act = f16 ? 'f16' : 'f32';
    for (const [M, N, K] of [[1, 45, 172], [1, 130, 64], [5, 45, 172], [33, 130, 64], [70, 7, 96]] as const) {
      it(`matmul q8 ${act} activations M=${M} N=${N} K=${K} (${M === 1 ? 'matvec' : 'tiled'})`, async () => {
        const k = f16 ? h16 : h;
        const x = randn(M * K), w = randn(N * K, 0.2);
        const x16 = Uint16Array.from(x, (v) => f16bits(v));
        const q = quantizeQ8(w, N, K);
        const ref = new Float32Array(M * N);
        matmul(ref, f16 ? Float32Array.from(x16, f16val) : x, dequantizeQ8(q), M, K, N);
        const y = k.storage(new Float32Array(M * N).fill(NaN));
        const o = { f16, weights: 'q8', out: 'f32' } as const;
        const code = M === 1 ? matvecWgsl(o) : matmulTiledWgsl(o);
        const grid: [number, number, number] = M === 1 ? grid1D(N, 8) : [Math.ceil(N / 64), Math.ceil(M / 32), 1];
        await k.run(code, [k.uniform([M, 0, M, 0]), k.uniform(matmulParams(N, K)), k.storage(f16 ? x16 : x), k.storage(q.qweight), k.storage(q.scales), y], grid);
        const got = await k.readF32(y, M * N);
        expect(got.every(Number.isFinite)).toBe(true); // every output written
        expect(maxAbsDiff(got, ref)).toBeLessThan(1e-4 * Math.sqrt(K)); // f32 summation order only
      });
    }
  }

  for (const M of [1, 37]) {
    it(`matmul q8 in row blocks M=${M} N=150 K=96: blocks write their columns of y`, async () => {
      const N = 150, K = 96, x = randn(M * K), w = randn(N * K, 0.2);
      const ref = new Float32Array(M * N);
      matmul(ref, x, dequantizeQ8(quantizeQ8(w, N, K)), M, K, N);
      const y = h.storage(new Float32Array(M * N).fill(NaN));
      const o = { f16: false, weights: 'q8', out: 'f32' } as const;
      for (const [r0, rows] of [[0, 64], [64, 64], [128, 22]]) {
        const q = quantizeQ8(w.subarray(r0 * K, (r0 + rows) * K), rows, K);
        const code = M === 1 ? matvecWgsl(o) : matmulTiledWgsl(o);
        const grid: [number, number, number] = M === 1 ? grid1D(rows, 8) : [Math.ceil(rows / 64), Math.ceil(M / 32), 1];
        await h.run(code, [h.uniform([M, 0, M, 0]), h.uniform(matmulParams(rows, K, { yOff: r0, ldy: N })), h.storage(x), h.storage(q.qweight), h.storage(q.scales), y], grid);
      }
      expect(maxAbsDiff(await h.readF32(y, M * N), ref)).toBeLessThan(1e-4 * Math.sqrt(K));
    });
  }

  for (const [T, N, K, accumulate] of [[37, 75, 150, false], [70, 33, 172, true], [3, 1030, 70, false], [1, 40, 64, true]] as const) {
    it(`backward input q8 ${accumulate ? 'dx +=' : 'dx ='} dy W, T=${T} N=${N} K=${K}`, async () => {
      const dy = randn(T * N), w = randn(N * K, 0.2), q = quantizeQ8(w, N, K);
      const dx0 = accumulate ? randn(T * K) : new Float32Array(T * K).fill(NaN); // '=' must not read dx
      const ref = accumulate ? dx0.slice() : new Float32Array(T * K);
      matmulBackwardInput(ref, dy, dequantizeQ8(q), T, K, N);
      const dx = h.storage(dx0);
      await h.run(matmulBackwardInputWgsl({ f16: false, weights: 'q8', accumulate, grad: 'f32' }),
        [h.uniform([T, 0, T, 0]), h.uniform(matmulParams(N, K)), h.storage(dy), h.storage(q.qweight), h.storage(q.scales), dx],
        matmulBackwardInputGrid(T + 26, K));
      expect(relErr(await h.readF32(dx, T * K), ref)).toBeLessThan(1e-6);
    });
  }

  it('backward input q8 over row blocks (first =, then +=), T=37 N=150 K=96', async () => {
    const T = 37, N = 150, K = 96, dy = randn(T * N), w = randn(N * K, 0.2);
    const ref = new Float32Array(T * K);
    matmulBackwardInput(ref, dy, dequantizeQ8(quantizeQ8(w, N, K)), T, K, N);
    const dx = h.storage(new Float32Array(T * K).fill(NaN)), dyb = h.storage(dy);
    for (const [i, [r0, rows]] of [[0, 64], [64, 64], [128, 22]].entries()) {
      const q = quantizeQ8(w.subarray(r0 * K, (r0 + rows) * K), rows, K);
      await h.run(matmulBackwardInputWgsl({ f16: false, weights: 'q8', accumulate: i > 0, grad: 'f32' }),
        [h.uniform([T, 0, T, 0]), h.uniform(matmulParams(rows, K, { yOff: r0, ldy: N })), dyb, h.storage(q.qweight), h.storage(q.scales), dx], matmulBackwardInputGrid(T, K));
    }
    expect(relErr(await h.readF32(dx, T * K), ref)).toBeLessThan(1e-6);
  });

  it('backward input q8 with f16 dy and dx (accumulate)', async () => {
    const T = 45, N = 99, K = 136;
    const dy16 = Uint16Array.from(randn(T * N), (v) => f16bits(v)), dx16 = Uint16Array.from(randn(T * K), (v) => f16bits(v));
    const q = quantizeQ8(randn(N * K, 0.2), N, K);
    const ref = Float32Array.from(dx16, f16val);
    matmulBackwardInput(ref, Float32Array.from(dy16, f16val), dequantizeQ8(q), T, K, N);
    const dx = h16.storage(dx16);
    await h16.run(matmulBackwardInputWgsl({ f16: true, weights: 'q8', accumulate: true }),
      [h16.uniform([T, 0, T, 0]), h16.uniform(matmulParams(N, K)), h16.storage(dy16), h16.storage(q.qweight), h16.storage(q.scales), dx],
      matmulBackwardInputGrid(T, K));
    const got = Float32Array.from(new Uint16Array(await h16.read(dx)).subarray(0, T * K), f16val);
    expect(got).toHaveLength(ref.length);
    expect(relErr(got, ref)).toBeLessThan(1e-3); // one f16 rounding of dx
  });

  for (const f16 of [false, true]) {
    it(`embedding gather from a q8 table (a tied lm_head), ${f16 ? 'f16' : 'f32'} activations, whole and in row blocks`, async () => {
      const k = f16 ? h16 : h;
      const T = 3, V = 11, C = 40, ids = new Uint32Array([3, 0, 10]), run = k.uniform([T, 0, T, 0]);
      const emb = randn(V * C), deq = dequantizeQ8(quantizeQ8(emb, V, C));
      const want = new Float32Array(T * C);
      ids.forEach((id, t) => want.set(deq.subarray(id * C, (id + 1) * C), t * C));
      const read = async (x: GPUBuffer) => (f16 ? Float32Array.from(new Uint16Array(await k.read(x)).subarray(0, T * C), f16val) : k.readF32(x, T * C));
      const bound = f16 ? 2 ** -10 * 1.5 : 0; // one f16 rounding of |x| < 1.5
      const q = quantizeQ8(emb, V, C);
      const x = k.storage(new Float32Array(T * C).fill(NaN));
      await k.run(embedWgsl({ f16, weights: 'q8' }), [run, k.uniform([C, 0, V, 0]), k.storage(ids), k.storage(q.qweight), k.storage(q.scales), x], grid1D(T * C, 256));
      expect(maxAbsDiff(await read(x), want)).toBeLessThanOrEqual(bound);
      const xb = k.storage(new Float32Array(T * C).fill(NaN));
      for (const [r0, rows] of [[0, 6], [6, 5]]) {
        const qp = quantizeQ8(emb.subarray(r0 * C, (r0 + rows) * C), rows, C);
        await k.run(embedWgsl({ f16, weights: 'q8' }), [run, k.uniform([C, r0, rows, 0]), k.storage(ids), k.storage(qp.qweight), k.storage(qp.scales), xb], grid1D(T * C, 256));
      }
      expect(maxAbsDiff(await read(xb), want)).toBeLessThanOrEqual(bound);
    });
  }
});
