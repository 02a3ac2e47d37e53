/**
 * Every backward op against central finite differences of its forward op. The ops only index their
 * arrays, so the finite differences run them on Float64Arrays (cast) to stay clear of f32 rounding;
 * the analytic gradients run on the same f64 data. Objective: L = sum(G * out) for a random G.
 */
import { describe, expect, it } from 'vitest';
import { attention, matmul, rmsnorm, rope, swiglu } from '../../../models/cpu/ops.ts';
import {
  attentionBackward, crossEntropyForwardBackward, matmulBackwardInput, rmsnormBackward, ropeBackward, swigluBackward,
} from '../../../models/cpu/ops-backward.ts';
import { loraBackward, loraForward } from '../../../models/cpu/lora-ops.ts';
import { ropeInvFreq, ropeTables } from '../../../models/rope.ts';
import { parseLlamaConfig } from '../../../models/config.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

type F = Float32Array;
const f64 = (n: number) => new Float64Array(n) as unknown as F;
const rand = mulberry32(1234);
function randn(n: number, scale = 1): F {
  const a = f64(n);
  for (let i = 0; i < n; i++) a[i] = scale * (2 * rand() - 1);
  return a;
}
const dot = (a: F, b: F) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };

/**
 * Relative error between the analytic directional derivative <grad, u> and the central difference
 * (L(x + h u) - L(x - h u)) / 2h, for a random direction u over `x` (perturbed in place, restored).
 */
function directionalError(loss: () => number, x: F, grad: F, h = 1e-4): number {
  const u = randn(x.length);
  const x0 = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) x[i] = x0[i] + h * u[i];
  const lp = loss();
  for (let i = 0; i < x.length; i++) x[i] = x0[i] - h * u[i];
  const lm = loss();
  x.set(x0);
  const fd = (lp - lm) / (2 * h);
  const an = dot(grad, u);
  const err = Math.abs(fd - an) / Math.max(Math.abs(fd), Math.abs(an), 1e-12);
  if (process.env.PRINT_FD) console.log("fd err", err.toExponential(2), "fd", fd.toFixed(4));
  return err;
}

describe('ops-backward vs finite differences', () => {
  it('matmulBackwardInput', () => {
    const T = 3, K = 5, N = 4;
    const x = randn(T * K), w = randn(N * K), G = randn(T * N);
    const out = f64(T * N);
    const loss = () => { matmul(out, x, w, T, K, N); return dot(out, G); };
    const dx = f64(T * K);
    matmulBackwardInput(dx, G, w, T, K, N);
    expect(directionalError(loss, x, dx)).toBeLessThan(1e-3);
    // accumulates
    const dx2 = Float64Array.from(dx) as unknown as F;
    matmulBackwardInput(dx2, G, w, T, K, N);
    for (let i = 0; i < dx.length; i++) expect(dx2[i]).toBeCloseTo(2 * dx[i], 12);
  });

  it('rmsnormBackward', () => {
    const T = 3, C = 8, eps = 1e-5;
    const x = randn(T * C), w = randn(C), G = randn(T * C);
    const out = f64(T * C);
    const loss = () => { rmsnorm(out, x, w, T, C, eps); return dot(out, G); };
    const dx = f64(T * C);
    rmsnormBackward(dx, G, x, w, T, C, eps);
    // rmsnorm rounds x * inv to f32 (Math.fround): a larger step keeps that noise small.
    expect(directionalError(loss, x, dx, 1e-3)).toBeLessThan(1e-3);
  });

  it('ropeBackward (plain and llama3-scaled tables)', () => {
    for (const scaled of [false, true]) {
      const cfg = parseLlamaConfig({
        model_type: 'llama', hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2,
        num_key_value_heads: 1, vocab_size: 10, rope_theta: scaled ? 500000 : 10000,
        ...(scaled && { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }),
      });
      const T = 5, nh = 2, D = 8;
      const { cos, sin } = ropeTables(ropeInvFreq(cfg), 0, T);
      const x = randn(T * nh * D), G = randn(T * nh * D);
      const loss = () => { const y = Float64Array.from(x) as unknown as F; rope(y, cos, sin, T, nh, D); return dot(y, G); };
      const dx = Float64Array.from(G) as unknown as F;
      ropeBackward(dx, cos, sin, T, nh, D);
      expect(directionalError(loss, x, dx)).toBeLessThan(1e-3);
    }
  });

  it('attentionBackward (causal GQA, q/k/v)', () => {
    const T = 5, H = 4, KV = 2, D = 4;
    const q = randn(T * H * D), k = randn(T * KV * D), v = randn(T * KV * D), G = randn(T * H * D);
    const out = f64(T * H * D), probs = f64(H * T * T);
    const loss = () => { attention(out, q, k, v, T, 0, H, KV, D); return dot(out, G); };
    attention(out, q, k, v, T, 0, H, KV, D, probs);
    const dq = f64(q.length), dk = f64(k.length), dv = f64(v.length);
    attentionBackward(dq, dk, dv, G, q, k, v, probs, T, H, KV, D);
    expect(directionalError(loss, q, dq)).toBeLessThan(1e-3);
    expect(directionalError(loss, k, dk)).toBeLessThan(1e-3);
    expect(directionalError(loss, v, dv)).toBeLessThan(1e-3);
  });

  it('swigluBackward', () => {
    const n = 20;
    const gate = randn(n, 3), up = randn(n), G = randn(n);
    const out = f64(n);
    const loss = () => { swiglu(out, gate, up); return dot(out, G); };
    const dg = f64(n), du = f64(n);
    swigluBackward(dg, du, G, gate, up);
    expect(directionalError(loss, gate, dg)).toBeLessThan(1e-3);
    expect(directionalError(loss, up, du)).toBeLessThan(1e-3);
  });

  it('crossEntropyForwardBackward (weights, ignored targets)', () => {
    const T = 4, V = 7;
    const logits = randn(T * V, 2);
    const targets = [3, -1, 0, 6], weights = [1, 1, 0.5, 2];
    const d = f64(T * V);
    const loss = () => crossEntropyForwardBackward(f64(T * V), logits, targets, weights, T, V);
    const L = crossEntropyForwardBackward(d, logits, targets, weights, T, V);
    // direct value: sum w CE / sum w over t = 0, 2, 3
    let ref = 0;
    for (const t of [0, 2, 3]) {
      let s = 0;
      for (let i = 0; i < V; i++) s += Math.exp(logits[t * V + i]);
      ref += weights[t] * (Math.log(s) - logits[t * V + targets[t]]);
    }
    expect(L).toBeCloseTo(ref / 3.5, 10);
    expect(directionalError(loss, logits, d)).toBeLessThan(1e-3);
    for (let i = V; i < 2 * V; i++) expect(d[i]).toBe(0); // ignored row
    // no active target: zero loss, zero gradient (overwrites)
    d.fill(5);
    expect(crossEntropyForwardBackward(d, logits, [-1, -1, -1, -1], weights, T, V)).toBe(0);
    expect(d.every((g) => g === 0)).toBe(true);
  });

  it('loraForward / loraBackward (x, A, B)', () => {
    const T = 3, K = 6, N = 5, r = 2, scale = 2;
    const x = randn(T * K), A = randn(r * K), B = randn(N * r), G = randn(T * N);
    const y = f64(T * N), xa = f64(T * r);
    const loss = () => { y.fill(0); loraForward(y, x, A, B, T, K, N, r, scale, f64(T * r)); return dot(y, G); };
    // the forward adds to y
    const base = randn(T * N);
    const y2 = Float64Array.from(base) as unknown as F;
    loraForward(y2, x, A, B, T, K, N, r, scale, xa);
    loss();
    for (let i = 0; i < y.length; i++) expect(y2[i]).toBeCloseTo(base[i] + y[i], 12);
    const dx = f64(x.length), dA = f64(A.length), dB = f64(B.length);
    loraBackward(dx, dA, dB, G, x, xa, A, B, T, K, N, r, scale);
    expect(directionalError(loss, x, dx)).toBeLessThan(1e-3);
    expect(directionalError(loss, A, dA)).toBeLessThan(1e-3);
    expect(directionalError(loss, B, dB)).toBeLessThan(1e-3);
  });
});
