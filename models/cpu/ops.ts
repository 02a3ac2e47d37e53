/**
 * The reference ops in plain TypeScript (f32 storage, f64 accumulation where cheap): the oracle
 * for every WebGPU kernel. Shapes in comments: T tokens, C hidden, N/K matmul out/in, H heads,
 * KV kv-heads, D head dim, P keys visible (start + T).
 */

/** out = x W^T. x (T, K), W (N, K) row-major as stored by HF, out (T, N). */
export function matmul(out: Float32Array, x: Float32Array, w: Float32Array, T: number, K: number, N: number): void {
  for (let t = 0; t < T; t++) {
    const xo = t * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * w[wo + k];
      out[t * N + n] = s;
    }
  }
}

/** RMSNorm: out = x / sqrt(mean(x^2) + eps) * w. x (T, C), w (C). */
export function rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, T: number, C: number, eps: number): void {
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[t * C + c] * x[t * C + c];
    const inv = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) out[t * C + c] = Math.fround(x[t * C + c] * inv) * w[c];
  }
}

/**
 * RoPE in place, HF rotate_half convention: pairs (i, i + D/2). x (T, nh, D); cos/sin (T, D/2)
 * for the tokens' absolute positions.
 */
export function rope(x: Float32Array, cos: Float32Array, sin: Float32Array, T: number, nh: number, D: number): void {
  const half = D / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nh; h++) {
      const o = (t * nh + h) * D;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i], s = sin[t * half + i];
        const x1 = x[o + i], x2 = x[o + i + half];
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
}

/**
 * Causal grouped-query attention over a KV cache. q (T, H, D) at positions start..start+T-1;
 * kCache/vCache (>= P, KV, D) hold keys/values of positions 0..P-1; out (T, H, D).
 * probs (H, T, P), if given, receives the softmax (for the backward pass).
 */
export function attention(
  out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array,
  T: number, start: number, H: number, KV: number, D: number, probs?: Float32Array,
): void {
  const P = start + T;
  const group = H / KV;
  const scale = 1 / Math.sqrt(D);
  const scores = new Float64Array(P);
  for (let t = 0; t < T; t++) {
    const visible = start + t + 1; // causal: keys 0..start+t
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group);
      const qo = (t * H + h) * D;
      let max = -Infinity;
      for (let j = 0; j < visible; j++) {
        const ko = (j * KV + kvh) * D;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qo + d] * kCache[ko + d];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
      }
      let sum = 0;
      for (let j = 0; j < visible; j++) { scores[j] = Math.exp(scores[j] - max); sum += scores[j]; }
      for (let d = 0; d < D; d++) out[qo + d] = 0;
      for (let j = 0; j < visible; j++) {
        const p = scores[j] / sum;
        if (probs) probs[(h * T + t) * P + j] = p;
        const vo = (j * KV + kvh) * D;
        for (let d = 0; d < D; d++) out[qo + d] += p * vCache[vo + d];
      }
      if (probs) for (let j = visible; j < P; j++) probs[(h * T + t) * P + j] = 0;
    }
  }
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** SwiGLU: out = silu(gate) * up, elementwise over (T, F). */
export function swiglu(out: Float32Array, gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = silu(gate[i]) * up[i];
}

/** x += y elementwise. */
export function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

/**
 * Embedding lookup: out (T, C) row t = table row ids[t]. table (V, C).
 * @example const x = new Float32Array(ids.length * C); embedding(x, weights.embed, ids, C);
 */
export function embedding(out: Float32Array, table: Float32Array, ids: ArrayLike<number>, C: number): void {
  for (let t = 0; t < ids.length; t++) out.set(table.subarray(ids[t] * C, (ids[t] + 1) * C), t * C);
}
