/**
 * Issue 10, item 3: the fused decode kernels against the CPU reference (models/cpu/ops.ts), with
 * f32 and with f16 activations (shader-f16), on shapes that are not multiples of the tiles:
 * RoPE of q and k with the KV-cache write in one pass (ropeCacheWgsl), and the residual add folded
 * into the projection (matmul / matvec with `residual`, f32 and 4-bit weights), and gate and up
 * as one matvec with SwiGLU after it (matvecSwigluWgsl, f32, 4-bit and 8-bit weights), and the
 * decode attention in one pass with an online softmax over key blocks (decodeAttentionWgsl), and
 * RMSNorm folded into the matvecs that follow it (the same bits as rmsnorm, then matvec), and
 * norm1, q, k and v as one matvec over their rows in one buffer at qkvLayout's offsets.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { attention, matmul, rmsnorm, rope } from '../../../models/cpu/ops.ts';
import type { LlamaConfig } from '../../../models/config.ts';
import { qkvLayout, qkvSplitWords } from '../../../models/gpu/buffer-sizes.ts';
import { rmsnormWgsl } from '../../../models/gpu/wgsl/elementwise.ts';
import { DECODE_ATTENTION_BLOCK, decodeAttentionWgsl } from '../../../models/gpu/wgsl/decode-attention.ts';
import { grid1D } from '../../../models/gpu/pipelines.ts';
import { matmulParams, matmulTiledWgsl, matvecRows, matvecSwigluWgsl, matvecWgsl } from '../../../models/gpu/wgsl/matmul.ts';
import { ropeCacheThreads, ropeCacheWgsl } from '../../../models/gpu/wgsl/rope-cache.ts';
import { dequantizeQ4, quantizeQ4 } from '../../../models/quant/q4.ts';
import { dequantizeQ8, quantizeQ8 } from '../../../models/quant/q8.ts';
import { ropeTables } from '../../../models/rope.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../../models/safetensors/dtype.ts';
import { expectNoGpuErrors, gpuContext, maxAbsDiff } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

const rand = mulberry32(77);
const randn = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);

describe('fused kernels vs the CPU reference (Dawn)', () => {
  const harness: Partial<Record<'f16' | 'f32', KernelHarness>> = {};
  beforeAll(async () => {
    harness.f32 = new KernelHarness(await gpuContext(false));
    const c16 = await gpuContext(true);
    if (c16.f16) harness.f16 = new KernelHarness(c16);
  });
  expectNoGpuErrors();

  for (const act of ['f32', 'f16'] as const) {
    // Activations as the device stores them: f32, or f16 bits (the reference gets the same rounded inputs).
    const store = (h: KernelHarness, x: Float32Array) => (act === 'f16' ? h.storage(Uint16Array.from(x, f32ToF16Bits)) : h.storage(x));
    const round = (x: Float32Array) => (act === 'f16' ? Float32Array.from(x, (v) => f16BitsToF32(f32ToF16Bits(v))) : x);
    const load = async (h: KernelHarness, b: GPUBuffer, n: number) => (act === 'f16' ? Float32Array.from(new Uint16Array(await h.read(b, Math.ceil(n / 2) * 4)).subarray(0, n), f16BitsToF32) : h.readF32(b, n));
    const tol = act === 'f16' ? 2e-3 : 1e-5;

    for (const copyV of [true, false]) {
      it(`${act}: RoPE q and k, keys into the cache${copyV ? ', values copied' : ''}, at position start (GQA, T = 1 and 5)`, async (t) => {
        const h = harness[act];
        if (!h) return t.skip();
        for (const T of [1, 5]) {
          const H = 6, KV = 2, D = 10, start = 3, S = 12;
          const inv = Float64Array.from({ length: D / 2 }, (_, i) => 1 / Math.pow(500000, (2 * i) / D));
          const full = ropeTables(inv, 0, S), part = ropeTables(inv, start, T);
          const q = round(randn(T * H * D)), k = round(randn(T * KV * D)), v = round(randn(T * KV * D));
          const qRef = q.slice(), kRef = k.slice();
          rope(qRef, part.cos, part.sin, T, H, D);
          rope(kRef, part.cos, part.sin, T, KV, D);
          const qb = store(h, q), kc = store(h, new Float32Array(S * KV * D)), vc = store(h, new Float32Array(S * KV * D).fill(7));
          const run = h.uniform([T, start, start + T, 0]);
          const att = h.uniform([H, KV, D, 1 / Math.sqrt(D)], [3]);
          const bufs = [run, att, h.storage(full.cos), h.storage(full.sin), qb, store(h, k), kc, ...(copyV ? [store(h, v), vc] : [])];
          await h.run(ropeCacheWgsl({ f16: act === 'f16', copyV }), bufs, grid1D(ropeCacheThreads(T, H, KV, D, copyV), 256));
          expect(maxAbsDiff(await load(h, qb, T * H * D), qRef)).toBeLessThan(tol);
          const kGot = await load(h, kc, S * KV * D);
          expect(kGot.length).toBe(S * KV * D);
          expect(maxAbsDiff(kGot.subarray(start * KV * D, (start + T) * KV * D), kRef)).toBeLessThan(tol);
          expect(kGot.subarray(0, start * KV * D).every((x) => x === 0)).toBe(true); // rows before start untouched
          expect(kGot.subarray((start + T) * KV * D).every((x) => x === 0)).toBe(true);
          const vGot = await load(h, vc, S * KV * D);
          if (copyV) expect(Array.from(vGot.subarray(start * KV * D, (start + T) * KV * D))).toEqual(Array.from(v));
          else expect(vGot.every((x) => x === 7)).toBe(true);
          expect(vGot.subarray(0, start * KV * D).every((x) => x === 7)).toBe(true);
        }
      });
    }

    for (const weights of ['f32', 'q4'] as const) {
      for (const [M, N, K, lanes] of [[1, 45, 172, 32], [1, 45, 172, 1], [7, 130, 96, 32]] as const) {
        it(`${act}: matmul ${weights} + residual M=${M} N=${N} K=${K} (${M === 1 ? `matvec, ${lanes} lane(s) per row` : 'tiled'}): y = x W^T + res`, async (t) => {
          const h = harness[act];
          if (!h) return t.skip();
          const x = round(randn(M * K)), w = randn(N * K, 0.2), res = round(randn(M * N));
          const q = quantizeQ4(w, N, K);
          const ref = new Float32Array(M * N);
          matmul(ref, x, weights === 'q4' ? dequantizeQ4(q) : w, M, K, N);
          for (let i = 0; i < ref.length; i++) ref[i] += res[i];
          const y = store(h, new Float32Array(M * N).fill(NaN)); // every element written
          const wb = weights === 'q4' ? [h.storage(q.qweight), h.storage(q.scales)] : [h.storage(w), null];
          const o = { f16: act === 'f16', weights, out: 'T', residual: true, lanes } as const;
          const code = M === 1 ? matvecWgsl(o) : matmulTiledWgsl(o);
          const grid: [number, number, number] = M === 1 ? grid1D(N, matvecRows(lanes)) : [Math.ceil(N / 64), Math.ceil(M / 32), 1];
          await h.run(code, [h.uniform([M, 0, M, 0]), h.uniform(matmulParams(N, K)), store(h, x), wb[0], wb[1], y, store(h, res)], grid);
          const got = await load(h, y, M * N);
          expect(got.length).toBe(ref.length);
          // f16: one rounding of a value of magnitude ~3 (2^-10 relative) on top of the f32 error.
          expect(maxAbsDiff(got, ref)).toBeLessThan(act === 'f16' ? 1e-2 : 1e-4 * Math.sqrt(K));
        });
      }
    }

    for (const [weights, lanes] of [['f32', 32], ['q4', 32], ['q8', 32], ['f32', 1], ['q4', 1]] as const) {
      it(`${act}: gate and up as one matvec with SwiGLU, ${weights} weights, ${lanes} lane(s) per row (N=45, K=172): act = silu(x Wg^T) * (x Wu^T)`, async (t) => {
        const h = harness[act];
        if (!h) return t.skip();
        const N = 45, K = 172;
        const x = round(randn(K)), wg = randn(N * K, 0.2), wu = randn(N * K, 0.2);
        const pack = (w: Float32Array) => {
          if (weights === 'f32') return { eff: w, bufs: [h.storage(w), null] };
          if (weights === 'q4') { const q = quantizeQ4(w, N, K); return { eff: dequantizeQ4(q), bufs: [h.storage(q.qweight), h.storage(q.scales)] }; }
          const q = quantizeQ8(w, N, K);
          return { eff: dequantizeQ8(q), bufs: [h.storage(q.qweight), h.storage(q.scales)] };
        };
        const g = pack(wg), u = pack(wu);
        const gRef = new Float32Array(N), uRef = new Float32Array(N);
        matmul(gRef, x, g.eff, 1, K, N);
        matmul(uRef, x, u.eff, 1, K, N);
        const ref = Float32Array.from(gRef, (v, i) => (v / (1 + Math.exp(-v))) * uRef[i]);
        const y = store(h, new Float32Array(N).fill(NaN));
        await h.run(matvecSwigluWgsl({ f16: act === 'f16', weights, lanes }), [h.uniform([1, 0, 1, 0]), h.uniform(matmulParams(N, K)), store(h, x), g.bufs[0], g.bufs[1], y, u.bufs[0], u.bufs[1]], grid1D(N, matvecRows(lanes)));
        const got = await load(h, y, N);
        expect(got.length).toBe(N);
        expect(maxAbsDiff(got, ref)).toBeLessThan(act === 'f16' ? 1e-2 : 1e-4 * Math.sqrt(K));
      });
    }

    // One block, a block and a bit (P = BLOCK + 1), several blocks.
    for (const [P, D] of [[1, 8], [37, 8], [DECODE_ATTENTION_BLOCK + 1, 8], [1500, 16], [2100, 136]] as const) {
      it(`${act}: decode attention in one pass, P = ${P} keys${P > DECODE_ATTENTION_BLOCK ? ` (${Math.ceil(P / DECODE_ATTENTION_BLOCK)} blocks)` : ''}, D = ${D}, GQA: equals attention() for the last position`, async (t) => {
        const h = harness[act];
        if (!h) return t.skip();
        const H = 4, KV = 2, start = P - 1;
        const q = round(randn(H * D)), kc = round(randn(P * KV * D)), vc = round(randn(P * KV * D));
        const ref = new Float32Array(H * D);
        attention(ref, q, kc, vc, 1, start, H, KV, D);
        const out = store(h, new Float32Array(H * D).fill(NaN));
        const bufs = [h.uniform([1, start, P, 0]), h.uniform([H, KV, D, 1 / Math.sqrt(D)], [3]), store(h, q), store(h, kc), store(h, vc), out];
        await h.run(decodeAttentionWgsl({ f16: act === 'f16', D }), bufs, [H, 1, 1]);
        const got = await load(h, out, H * D);
        expect(got.length).toBe(ref.length);
        expect(maxAbsDiff(got, ref)).toBeLessThan(act === 'f16' ? 2e-3 : 2e-5);
      });
    }

    for (const [weights, lanes, K] of [['f32', 32, 300], ['q4', 32, 300], ['q4', 1, 172], ['f32', 1, 100]] as const) {
      it(`${act}: norm1, q, k and v as one matvec over their fused rows, ${weights} weights, ${lanes} lane(s) per row, K = ${K}: each part as rmsnorm then its own matvec (f32: the same bits), padding rows dropped`, async (t) => {
        const h = harness[act];
        if (!h) return t.skip();
        const eps = 1e-5, f16 = act === 'f16';
        // 5 heads of 9 (45 q rows) and 3 kv heads (27 k and v rows): parts that need padding rows.
        const layout = qkvLayout({ hiddenSize: K, numHeads: 5, numKvHeads: 3, headDim: 9 } as LlamaConfig, weights)!;
        const rows = [layout.qRows, layout.kvRows, layout.kvRows];
        expect(layout.kStart).toBeGreaterThan(layout.qRows); // the shapes exercise the padding
        const x = round(randn(K, 3)), nw = randn(K);
        const mats = rows.map((N) => randn(N * K, 0.2));
        // The fused buffers: each part's own bytes at its offset, as WeightUploader.qkv writes them.
        const wBytes = new Uint8Array(layout.wBytes), scBytes = new Uint8Array(Math.max(4, layout.scBytes));
        const parts = mats.map((m, i) => {
          const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
          if (weights === 'f32') {
            wBytes.set(bytes(m), layout.w[i][0]);
            return { eff: m, bufs: [h.storage(m), null] };
          }
          const q = quantizeQ4(m, rows[i], K);
          wBytes.set(bytes(q.qweight), layout.w[i][0]);
          scBytes.set(bytes(q.scales), layout.sc![i][0]);
          return { eff: dequantizeQ4(q), bufs: [h.storage(q.qweight), h.storage(q.scales)] };
        });
        const wBuf = h.storage(new Uint32Array(wBytes.buffer)), scBuf = weights === 'q4' ? h.storage(new Uint32Array(scBytes.buffer)) : null;
        const run = h.uniform([1, 0, 1, 0]), normU = h.uniform([K, 0, eps, 0], [2]);
        const xb = store(h, x), nwb = h.storage(nw);
        // Unfused: rmsnorm into xn, then each part's matvec into its own buffer.
        const xn = store(h, new Float32Array(K));
        await h.run(rmsnormWgsl({ f16 }), [run, normU, xb, nwb, xn], [1, 1, 1]);
        const unfused: Float32Array[] = [];
        for (const [i, N] of rows.entries()) {
          const y = store(h, new Float32Array(N));
          await h.run(matvecWgsl({ f16, weights, out: 'T', lanes }), [run, h.uniform(matmulParams(N, K)), xn, parts[i].bufs[0], parts[i].bufs[1], y], grid1D(N, matvecRows(lanes)));
          unfused.push(await load(h, y, N));
        }
        // Fused, into outputs one element longer than their part: the extra element must stay 7.
        const ys = rows.map((N) => store(h, new Float32Array(N + 1).fill(7)));
        await h.run(matvecWgsl({ f16, weights, out: 'T', lanes, norm: true, qkv: true }), [run, h.uniform(matmulParams(layout.rows, K)), xb, wBuf, scBuf, ys[0], null, nwb, normU, h.uniform(qkvSplitWords(layout)), ys[1], ys[2]], grid1D(layout.rows, matvecRows(lanes)));
        const xnRef = new Float32Array(K);
        rmsnorm(xnRef, x, nw, 1, K, eps);
        for (const [i, N] of rows.entries()) {
          const got = await load(h, ys[i], N + 1);
          expect(got.length).toBe(N + 1);
          expect(got[N]).toBe(7);
          const part = got.subarray(0, N);
          if (act === 'f32') expect(Array.from(part)).toEqual(Array.from(unfused[i]));
          else expect(maxAbsDiff(part, unfused[i])).toBeLessThan(8e-3); // as the folded norm's bound below
          const ref = new Float32Array(N);
          matmul(ref, round(xnRef), parts[i].eff, 1, K, N);
          expect(maxAbsDiff(part, ref)).toBeLessThan(act === 'f16' ? 2e-2 : 1e-4 * Math.sqrt(K));
        }
      });
    }

    for (const [weights, lanes] of [['f32', 32], ['q4', 32], ['q4', 1]] as const) {
      it(`${act}: RMSNorm folded into the matvec and into gate + up + SwiGLU, ${weights} weights, ${lanes} lane(s) per row: as rmsnorm then the matvec (f32: the same bits)`, async (t) => {
        const h = harness[act];
        if (!h) return t.skip();
        const N = 45, K = 300, eps = 1e-5; // K > 256 and not a multiple of 32: several elements per reducing thread
        const x = round(randn(K, 3)), nw = randn(K), w = randn(N * K, 0.2), wu = randn(N * K, 0.2);
        const pack = (m: Float32Array) => {
          if (weights === 'f32') return { eff: m, bufs: [h.storage(m), null] };
          const q = quantizeQ4(m, N, K);
          return { eff: dequantizeQ4(q), bufs: [h.storage(q.qweight), h.storage(q.scales)] };
        };
        const g = pack(w), u = pack(wu);
        const run = h.uniform([1, 0, 1, 0]), mm = h.uniform(matmulParams(N, K)), normU = h.uniform([K, 0, eps, 0], [2]);
        const xb = store(h, x), nwb = h.storage(nw), f16 = act === 'f16';
        // Unfused: rmsnorm into xn, then the kernels on xn.
        const xn = store(h, new Float32Array(K));
        await h.run(rmsnormWgsl({ f16 }), [run, normU, xb, nwb, xn], [1, 1, 1]);
        const y1 = store(h, new Float32Array(N)), y2 = store(h, new Float32Array(N).fill(NaN));
        await h.run(matvecWgsl({ f16, weights, out: 'T', lanes }), [run, mm, xn, g.bufs[0], g.bufs[1], y1], grid1D(N, matvecRows(lanes)));
        await h.run(matvecWgsl({ f16, weights, out: 'T', norm: true, lanes }), [run, mm, xb, g.bufs[0], g.bufs[1], y2, null, nwb, normU], grid1D(N, matvecRows(lanes)));
        const a1 = store(h, new Float32Array(N)), a2 = store(h, new Float32Array(N).fill(NaN));
        await h.run(matvecSwigluWgsl({ f16, weights, lanes }), [run, mm, xn, g.bufs[0], g.bufs[1], a1, u.bufs[0], u.bufs[1]], grid1D(N, matvecRows(lanes)));
        await h.run(matvecSwigluWgsl({ f16, weights, norm: true, lanes }), [run, mm, xb, g.bufs[0], g.bufs[1], a2, u.bufs[0], u.bufs[1], nwb, normU], grid1D(N, matvecRows(lanes)));
        const [u1, u2, s1, s2] = [await load(h, y1, N), await load(h, y2, N), await load(h, a1, N), await load(h, a2, N)];
        expect(u2.length).toBe(N);
        if (act === 'f32') {
          expect(Array.from(u2)).toEqual(Array.from(u1));
          expect(Array.from(s2)).toEqual(Array.from(s1));
        } else {
          // f16: the same normed inputs; measured at most 1 f16 ulp apart (the compiler orders the
          // f16 conversions differently); bound 4 ulps of values below 4.
          expect(maxAbsDiff(u2, u1)).toBeLessThan(8e-3);
          expect(maxAbsDiff(s2, s1)).toBeLessThan(8e-3);
        }
        // And against the CPU reference.
        const xnRef = new Float32Array(K);
        rmsnorm(xnRef, x, nw, 1, K, eps);
        const ref = new Float32Array(N);
        matmul(ref, round(xnRef), g.eff, 1, K, N);
        expect(maxAbsDiff(u2, ref)).toBeLessThan(act === 'f16' ? 2e-2 : 1e-4 * Math.sqrt(K));
      });
    }
  }
});
