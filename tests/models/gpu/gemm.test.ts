import { beforeAll, describe, expect, it } from 'vitest';
import { loraBackward, loraForward } from '../../../models/cpu/lora-ops.ts';
import { f16BitsToF32 as f16val, f32ToF16Bits as f16bits } from '../../../models/safetensors/dtype.ts';
import {
  gemmDim, gemmGrid, gemmParams, gemmWgsl, pickGemmTile, type GemmOptions, type GemmShape, type GemmTile,
} from '../../../models/gpu/wgsl/gemm.ts';
import { expectNoGpuErrors, gpuContext, relErr } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

// The LoRA-training gemm against the CPU reference (models/cpu/lora-ops.ts), f32 path, on shapes
// that are not multiples of any tile, plus one f16-activation case.
const rand = mulberry32(777);
const randn = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);

/** C (M, N) = alpha op(A) op(B) + beta C in f64, same storage conventions as gemmWgsl. */
function gemmRef(c: Float32Array, a: Float32Array, b: Float32Array, M: number, N: number, K: number,
  transA: boolean, transB: boolean, alpha: number, beta: number): void {
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (transA ? a[k * M + m] : a[m * K + k]) * (transB ? b[n * K + k] : b[k * N + n]);
      c[m * N + n] = alpha * s + (beta !== 0 ? beta * c[m * N + n] : 0);
    }
  }
}

/** Records gemm calls as a trainer would: one pipeline per option set, 32-byte Gemm uniform. */
class Gemm {
  constructor(readonly h: KernelHarness) {}

  params(p: GemmShape): GPUBuffer {
    const b = this.h.ctx.device.createBuffer({ size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.h.ctx.device.queue.writeBuffer(b, 0, gemmParams(p));
    return b;
  }

  /** `gridT`: the T the grid is sized for where a dimension is 'T'. */
  async run(o: GemmOptions & { tile: GemmTile }, run: GPUBuffer, p: GemmShape,
    a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, gridT = 0): Promise<void> {
    await this.h.run(gemmWgsl(o), [run, this.params(p), a, b, c], gemmGrid(o.tile, gemmDim(p.M, gridT), gemmDim(p.N, gridT)));
  }
}

describe('gemm (LoRA products) vs the CPU reference (Dawn)', () => {
  let h: KernelHarness;
  let g: Gemm;
  beforeAll(async () => { h = new KernelHarness(await gpuContext(false)); g = new Gemm(h); });
  expectNoGpuErrors();

  it('picks tiles that follow the product shape', () => {
    expect(pickGemmTile(1024, 8)).toEqual({ m: 128, n: 8 });
    expect(pickGemmTile(8, 14336)).toEqual({ m: 8, n: 128 });
    expect(pickGemmTile(14336, 64)).toEqual({ m: 16, n: 64 });
    expect(pickGemmTile(1024, 4)).toEqual({ m: 256, n: 4 });
    expect(pickGemmTile(1024, 4096)).toEqual({ m: 32, n: 32 });
    expect(() => gemmWgsl({ f16: false, transA: false, transB: false, a: 'f32', b: 'f32', c: 'f32', tile: { m: 8, n: 8 } })).toThrow(/tile/);
  });

  // Every transpose combination and tile family, alpha and beta != 1, sizes off every tile.
  const cases: [number, number, number, GemmTile][] = [
    [37, 45, 70, { m: 32, n: 32 }], [131, 7, 300, { m: 128, n: 8 }], [5, 150, 41, { m: 8, n: 128 }],
    [19, 61, 33, { m: 16, n: 64 }], [300, 3, 29, { m: 256, n: 4 }],
  ];
  for (const [M, N, K, tile] of cases) {
    for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      it(`C = a op(A) op(B) + b C, M=${M} N=${N} K=${K} tile ${tile.m}x${tile.n} transA=${transA} transB=${transB}`, async () => {
        const A = randn(M * K), B = randn(K * N), C = randn(M * N);
        const ref = C.slice();
        gemmRef(ref, A, B, M, N, K, transA, transB, 0.7, -1.5);
        const cb = h.storage(C);
        const o = { f16: false, transA, transB, a: 'f32', b: 'f32', c: 'f32', tile } as const;
        await g.run(o, h.uniform([1, 0, 1, 0]), { M, N, K, alpha: 0.7, beta: -1.5 }, h.storage(A), h.storage(B), cb);
        expect(relErr(await h.readF32(cb, M * N), ref)).toBeLessThan(1e-6);
      });
    }
  }

  it('beta = 0 never reads C (NaN there stays out), sizes from run.T', async () => {
    // M and K both from run.T (= 23), not from the uniform (0 there): one bind group for every T.
    const T = 23, N = 9;
    const A = randn(T * T), B = randn(T * N);
    const ref = new Float32Array(T * N);
    gemmRef(ref, A, B, T, N, T, false, false, 2, 0);
    const cb = h.storage(new Float32Array(40 * N).fill(NaN));
    const tile = pickGemmTile(64, N);
    await g.run({ f16: false, transA: false, transB: false, a: 'f32', b: 'f32', c: 'f32', tile }, h.uniform([T, 0, T, 0]),
      { M: 'T', N, K: 'T', alpha: 2, beta: 0 }, h.storage(A), h.storage(B), cb, 40);
    const got = await h.readF32(cb, 40 * N);
    expect(relErr(got.subarray(0, T * N), ref)).toBeLessThan(1e-6);
    expect(got.subarray(T * N).every((v) => Number.isNaN(v))).toBe(true); // rows >= T untouched
  });

  // Forward xa, y, then backward dB, dxa, dA, dx, exactly as the GPU trainer composes them.
  const lora: [string, number, number, number, number][] = [
    ['odd shapes', 37, 300, 173, 5],
    ['long reduction over N (dxa)', 21, 100, 14337, 16],
    ['long reduction over K (xa) and T (dA, dB)', 1023, 4099, 45, 8],
  ];
  for (const [name, T, K, N, r] of lora) {
    it(`LoRA forward + backward composed from gemm: ${name} (T=${T} K=${K} N=${N} r=${r})`, async () => {
      const scale = 16 / r;
      const x = randn(T * K), A = randn(r * K, 1 / Math.sqrt(K)), B = randn(N * r, 0.1), dy = randn(T * N);
      // Accumulators start near the size of the LoRA terms, so the f32 rounding of (start + term) does
      // not swamp the term's own error in the delta checks below.
      const y0 = randn(T * N, 0.1), dx0 = randn(T * K, 0.01), dA0 = randn(r * K, 0.1), dB0 = randn(N * r, 0.1);
      // CPU reference.
      const yRef = y0.slice(), xaRef = new Float32Array(T * r);
      loraForward(yRef, x, A, B, T, K, N, r, scale, xaRef);
      const dxRef = dx0.slice(), dARef = dA0.slice(), dBRef = dB0.slice();
      loraBackward(dxRef, dARef, dBRef, dy, x, xaRef, A, B, T, K, N, r, scale);

      const run = h.uniform([T, 0, T, 0]);
      const xb = h.storage(x), Ab = h.storage(A), Bb = h.storage(B), dyb = h.storage(dy);
      const xa = h.empty(T * r * 4), dxa = h.empty(T * r * 4);
      const y = h.storage(y0), dx = h.storage(dx0), dA = h.storage(dA0), dB = h.storage(dB0);
      const f = { f16: false, a: 'f32', b: 'f32', c: 'f32' } as const;
      // M or K 'T': from run.T, as in training
      // xa (T, r) = x (T, K) A^T
      await g.run({ ...f, transA: false, transB: true, tile: pickGemmTile(1024, r) }, run, { M: 'T', N: r, K }, xb, Ab, xa, T);
      // y (T, N) += scale * xa B^T
      await g.run({ ...f, transA: false, transB: true, tile: pickGemmTile(1024, N) }, run, { M: 'T', N, K: r, alpha: scale, beta: 1 }, xa, Bb, y, T);
      // dB (N, r) += scale * dy^T xa   (reduction over T)
      await g.run({ ...f, transA: true, transB: false, tile: pickGemmTile(N, r) }, run, { M: N, N: r, K: 'T', alpha: scale, beta: 1 }, dyb, xa, dB);
      // dxa (T, r) = scale * dy B   (reduction over N)
      await g.run({ ...f, transA: false, transB: false, tile: pickGemmTile(1024, r) }, run, { M: 'T', N: r, K: N, alpha: scale }, dyb, Bb, dxa, T);
      // dA (r, K) += dxa^T x   (reduction over T)
      await g.run({ ...f, transA: true, transB: false, tile: pickGemmTile(r, K) }, run, { M: r, N: K, K: 'T', beta: 1 }, dxa, xb, dA);
      // dx (T, K) += dxa A
      await g.run({ ...f, transA: false, transB: false, tile: pickGemmTile(1024, K) }, run, { M: 'T', N: K, K: r, beta: 1 }, dxa, Ab, dx, T);

      const errs = {
        xa: relErr(await h.readF32(xa, T * r), xaRef),
        y: relErr(await h.readF32(y, T * N), yRef),
        // The LoRA part of each accumulator alone, so the check is not diluted by the initial values.
        yDelta: relErr((await h.readF32(y, T * N)).map((v, i) => v - y0[i]), yRef.map((v, i) => v - y0[i])),
        dB: relErr((await h.readF32(dB, N * r)).map((v, i) => v - dB0[i]), dBRef.map((v, i) => v - dB0[i])),
        dA: relErr((await h.readF32(dA, r * K)).map((v, i) => v - dA0[i]), dARef.map((v, i) => v - dA0[i])),
        dx: relErr((await h.readF32(dx, T * K)).map((v, i) => v - dx0[i]), dxRef.map((v, i) => v - dx0[i])),
      };
      console.log(`gemm LoRA ${name}: rel errors ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
      for (const v of Object.values(errs)) expect(v).toBeLessThan(1e-5);
    });
  }

  it('f16 activations: xa = x A^T from f16 x, then y (f16) += scale * xa B^T', async () => {
    const h16 = new KernelHarness(await gpuContext(true));
    const g16 = new Gemm(h16);
    const T = 29, K = 136, N = 75, r = 6, scale = 2;
    const x16 = Uint16Array.from(randn(T * K), (v) => f16bits(v)), y16 = Uint16Array.from(randn(T * N), (v) => f16bits(v));
    const A = randn(r * K, 0.1), B = randn(N * r, 0.3);
    const yRef = Float32Array.from(y16, f16val), xaRef = new Float32Array(T * r);
    loraForward(yRef, Float32Array.from(x16, f16val), A, B, T, K, N, r, scale, xaRef);
    const run = h16.uniform([T, 0, T, 0]);
    const xa = h16.empty(T * r * 4), y = h16.storage(y16);
    await g16.run({ f16: true, transA: false, transB: true, a: 'T', b: 'f32', c: 'f32', tile: pickGemmTile(T, r) }, run, { M: T, N: r, K }, h16.storage(x16), h16.storage(A), xa);
    await g16.run({ f16: true, transA: false, transB: true, a: 'f32', b: 'f32', c: 'T', tile: pickGemmTile(T, N) }, run, { M: T, N, K: r, alpha: scale, beta: 1 }, xa, h16.storage(B), y);
    expect(relErr(await h16.readF32(xa, T * r), xaRef)).toBeLessThan(1e-5); // f32 math on exact f16 inputs
    const got = Float32Array.from(new Uint16Array(await h16.read(y)).subarray(0, T * N), f16val);
    expect(relErr(got, yRef)).toBeLessThan(1e-3); // one f16 rounding of y
  });
});
