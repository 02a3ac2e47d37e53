import { beforeAll, describe, expect, it } from 'vitest';
import { matmulBackwardInput } from '../../../models/cpu/ops-backward.ts';
import { f16BitsToF32 as f16val, f32ToF16Bits as f16bits } from '../../../models/safetensors/dtype.ts';
import { dequantizeQ4, quantizeQ4 } from '../../../models/quant/q4.ts';
import { matmulBackwardInputGrid, matmulBackwardInputWgsl } from '../../../models/gpu/wgsl/matmul-backward.ts';
import { matmulParams, matmulTiledWgsl } from '../../../models/gpu/wgsl/matmul.ts';
import { expectNoGpuErrors, gpuContext, relErr } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

// dx (+)= dy W for a frozen W (f32 or packed Q4) against matmulBackwardInput (models/cpu/
// ops-backward.ts) with dequantizeQ4(quantizeQ4(w)) as the effective weights, f32 path, on
// shapes off the 32 x 64 tile and the 32-wide groups, plus one f16-activation case.
const rand = mulberry32(4242);
const randn = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);

describe('matmulBackwardInput kernel vs the CPU reference (Dawn)', () => {
  let h: KernelHarness;
  beforeAll(async () => { h = new KernelHarness(await gpuContext(false)); });
  expectNoGpuErrors();

  // K=150: the last tile's second group is past G (5 groups); K=172: its last group is padded;
  // N=14337: a long reduction; T=70 and grid for 96 tokens: idle tiles from a larger dispatch.
  const shapes: [number, number, number][] = [[37, 75, 150], [70, 33, 172], [3, 14337, 70], [1, 40, 64]];
  for (const weights of ['f32', 'q4'] as const) {
    for (const accumulate of [false, true]) {
      for (const [T, N, K] of shapes) {
        it(`${weights} ${accumulate ? 'dx +=' : 'dx ='} dy W, T=${T} N=${N} K=${K}`, async () => {
          const dy = randn(T * N), w = randn(N * K, 0.2);
          const q = quantizeQ4(w, N, K);
          const wEff = weights === 'q4' ? dequantizeQ4(q) : w;
          const dx0 = accumulate ? randn(T * K) : new Float32Array(T * K).fill(NaN); // = must not read dx
          const ref = accumulate ? dx0.slice() : new Float32Array(T * K);
          matmulBackwardInput(ref, dy, wEff, T, K, N);
          const dx = h.storage(dx0);
          const wb = weights === 'q4' ? [h.storage(q.qweight), h.storage(q.scales)] : [h.storage(w), null];
          await h.run(matmulBackwardInputWgsl({ f16: false, weights, accumulate }),
            [h.uniform([T, 0, T, 0]), h.uniform(matmulParams(N, K)), h.storage(dy), wb[0], wb[1], dx],
            matmulBackwardInputGrid(T + 26, K));
          expect(relErr(await h.readF32(dx, T * K), ref)).toBeLessThan(1e-6);
        });
      }
    }
    // W in row blocks (a split lm_head): dx = dy W = sum over blocks of dy[:, r0..r0+rows] W_block,
    // the first block '=', the others '+=', each reading its columns of dy (row stride N).
    it(`${weights} dx = dy W over row blocks (first =, then +=), T=37 N=150 K=96`, async () => {
      const T = 37, N = 150, K = 96, dy = randn(T * N), w = randn(N * K, 0.2);
      const wEff = weights === 'q4' ? dequantizeQ4(quantizeQ4(w, N, K)) : w;
      const ref = new Float32Array(T * K);
      matmulBackwardInput(ref, dy, wEff, T, K, N);
      const dx = h.storage(new Float32Array(T * K).fill(NaN)), dyb = h.storage(dy);
      for (const [i, [r0, rows]] of [[0, 64], [64, 64], [128, 22]].entries()) {
        const wb = w.subarray(r0 * K, (r0 + rows) * K), q = quantizeQ4(wb, rows, K);
        const bufs = weights === 'q4' ? [h.storage(q.qweight), h.storage(q.scales)] : [h.storage(wb), null];
        await h.run(matmulBackwardInputWgsl({ f16: false, weights, accumulate: i > 0 }),
          [h.uniform([T, 0, T, 0]), h.uniform(matmulParams(rows, K, { yOff: r0, ldy: N })), dyb, bufs[0], bufs[1], dx], matmulBackwardInputGrid(T, K));
      }
      expect(relErr(await h.readF32(dx, T * K), ref)).toBeLessThan(1e-6);
    });
  }

  it('f16 activations: dy and dx in f16, q4 weights, accumulate', async () => {
    const h16 = new KernelHarness(await gpuContext(true));
    const T = 45, N = 99, K = 136;
    const dy16 = Uint16Array.from(randn(T * N), (v) => f16bits(v)), dx16 = Uint16Array.from(randn(T * K), (v) => f16bits(v));
    const q = quantizeQ4(randn(N * K, 0.2), N, K);
    const ref = Float32Array.from(dx16, f16val);
    matmulBackwardInput(ref, Float32Array.from(dy16, f16val), dequantizeQ4(q), T, K, N);
    const dx = h16.storage(dx16);
    await h16.run(matmulBackwardInputWgsl({ f16: true, weights: 'q4', accumulate: true }),
      [h16.uniform([T, 0, T, 0]), h16.uniform(matmulParams(N, K)), h16.storage(dy16), h16.storage(q.qweight), h16.storage(q.scales), dx],
      matmulBackwardInputGrid(T, K));
    const got = Float32Array.from(new Uint16Array(await h16.read(dx)).subarray(0, T * K), f16val);
    expect(relErr(got, ref)).toBeLessThan(1e-3); // one f16 rounding of dx
  });

  // FineMedLM-o1's down projection transposed (and gate/up's shape for the forward): 60 GFLOP per
  // kernel, ~30 s each on lavapipe, so opt-in: MATMUL_BENCH=1.
  it.runIf(process.env.MATMUL_BENCH)('timing: q4 backward input vs forward tiled, T=512 N=14336 K=4096', async () => {
    const T = 512, N = 14336, K = 4096, G = K / 32;
    // Values do not change the timing: random packed nibbles and small f16 scales.
    const qw = new Uint32Array(N * G * 4).map(() => (rand() * 2 ** 32) >>> 0);
    const sc = new Uint16Array(N * G).map(() => f16bits(0.01 * rand()));
    const qwb = h.storage(qw), scb = h.storage(sc);
    const run = h.uniform([T, 0, T, 0]), mm = h.uniform(matmulParams(N, K));
    const dy = h.storage(randn(T * N)), dx = h.empty(T * K * 4);
    const x = h.storage(randn(T * K)), y = h.empty(T * N * 4);
    const bwd = matmulBackwardInputWgsl({ f16: false, weights: 'q4', accumulate: false });
    const fwd = matmulTiledWgsl({ f16: false, weights: 'q4', out: 'T' });
    // Warm-up: compile both pipelines and touch every buffer with a one-tile dispatch.
    await h.run(bwd, [run, mm, dy, qwb, scb, dx], [1, 1, 1]);
    await h.run(fwd, [run, mm, x, qwb, scb, y], [1, 1, 1]);
    const flop = 2 * T * N * K;
    const time = async (f: () => Promise<void>) => { const t0 = performance.now(); await f(); return (performance.now() - t0) / 1000; };
    const tb = await time(() => h.run(bwd, [run, mm, dy, qwb, scb, dx], matmulBackwardInputGrid(T, K)));
    const tf = await time(() => h.run(fwd, [run, mm, x, qwb, scb, y], [Math.ceil(N / 64), Math.ceil(T / 32), 1]));
    const info = h.ctx.adapterInfo;
    console.log(`[${info.description || info.device || info.vendor}] T=${T} N=${N} K=${K} q4: `
      + `backward input dx = dy W ${tb.toFixed(3)} s (${(flop / tb / 1e9).toFixed(2)} GFLOP/s), `
      + `forward tiled y = x W^T ${tf.toFixed(3)} s (${(flop / tf / 1e9).toFixed(2)} GFLOP/s)`);
  }, 900_000);
});
