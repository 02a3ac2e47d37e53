/**
 * Backward halves of the reference ops in ./ops.ts, for LoRA training with frozen base weights:
 * only input gradients, never weight gradients. Gradients ACCUMULATE (`+=`) into their outputs
 * unless stated, so residual branches and GQA head groups can sum without temporaries.
 * Shapes: T tokens, C hidden, N/K matmul out/in, H heads, KV kv-heads, D head dim, V vocab.
 * Sums run in f64 (JS numbers) and are stored as f32, like the forward ops.
 */

/**
 * Backward of `matmul` (out = x W^T) for the input only: dx (T, K) += dy (T, N) @ W (N, K).
 * @example
 *   const dx = new Float32Array(T * K);
 *   matmulBackwardInput(dx, dy, w, T, K, N); // w frozen: no dW
 */
export function matmulBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, T: number, K: number, N: number): void {
  const acc = new Float64Array(K);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    const yo = t * N;
    // (N) x (N, K): walk W row by row so the inner loop is contiguous.
    for (let n = 0; n < N; n++) {
      const g = dy[yo + n];
      if (g === 0) continue;
      const wo = n * K;
      for (let k = 0; k < K; k++) acc[k] += g * w[wo + k];
    }
    const xo = t * K;
    for (let k = 0; k < K; k++) dx[xo + k] += acc[k];
  }
}

/**
 * Backward of `rmsnorm` (y = x * inv * w, inv = 1 / sqrt(mean(x^2) + eps)) for x only:
 * dx_i += inv * w_i dy_i - inv^3 / C * x_i * sum_j(w_j dy_j x_j). x, dy, dx (T, C); w (C).
 * @example rmsnormBackward(dx, dy, x, L.inputNorm, T, C, cfg.rmsNormEps);
 */
export function rmsnormBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, w: Float32Array, T: number, C: number, eps: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * C;
    let ss = 0, dot = 0;
    for (let c = 0; c < C; c++) {
      ss += x[o + c] * x[o + c];
      dot += w[c] * dy[o + c] * x[o + c];
    }
    const inv = 1 / Math.sqrt(ss / C + eps);
    const k = (inv * inv * inv * dot) / C;
    for (let c = 0; c < C; c++) dx[o + c] += inv * w[c] * dy[o + c] - k * x[o + c];
  }
}

/**
 * Backward of `rope` in place: the rotation is orthogonal, so its transpose is the rotation by
 * -angle. x (T, nh, D) holds d/d(rotated) on entry and d/d(unrotated) on exit; same cos/sin (T, D/2).
 * @example ropeBackward(dq, cos, sin, T, H, D);
 */
export function ropeBackward(dx: Float32Array, cos: Float32Array, sin: Float32Array, T: number, nh: number, D: number): void {
  const half = D / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nh; h++) {
      const o = (t * nh + h) * D;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i], s = sin[t * half + i];
        const g1 = dx[o + i], g2 = dx[o + i + half];
        dx[o + i] = g1 * c + g2 * s;
        dx[o + i + half] = g2 * c - g1 * s;
      }
    }
  }
}

/**
 * Backward of causal GQA `attention` from position 0 (training: P = T). q, dq (T, H, D);
 * k, v, dk, dv (T, KV, D); dout (T, H, D); probs (H, T, T) as saved by `attention(..., probs)`.
 * Query heads of a group add into the same dk/dv rows.
 * softmax backward: dscore_j = p_j (dp_j - sum_i p_i dp_i), dp_j = dout . v_j.
 * @example attentionBackward(dq, dk, dv, datt, q, k, v, probs, T, H, KV, D);
 */
export function attentionBackward(
  dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array,
  T: number, H: number, KV: number, D: number,
): void {
  const group = H / KV;
  const scale = 1 / Math.sqrt(D);
  const dp = new Float64Array(T);
  const dqAcc = new Float64Array(D);
  for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const qo = (t * H + h) * D;
      const po = (h * T + t) * T;
      const visible = t + 1;
      let pdp = 0;
      for (let j = 0; j < visible; j++) {
        const vo = (j * KV + kvh) * D;
        let s = 0;
        for (let d = 0; d < D; d++) s += dout[qo + d] * v[vo + d];
        dp[j] = s;
        pdp += probs[po + j] * s;
      }
      dqAcc.fill(0);
      for (let j = 0; j < visible; j++) {
        const p = probs[po + j];
        const ko = (j * KV + kvh) * D;
        const ds = p * (dp[j] - pdp) * scale; // d loss / d (q.k) including the 1/sqrt(D)
        for (let d = 0; d < D; d++) {
          dqAcc[d] += ds * k[ko + d];
          dk[ko + d] += ds * q[qo + d];
          dv[ko + d] += p * dout[qo + d];
        }
      }
      for (let d = 0; d < D; d++) dq[qo + d] += dqAcc[d];
    }
  }
}

/**
 * Backward of `swiglu` (out = silu(gate) * up), elementwise over (T, F):
 * dgate += dout * up * silu'(gate), dup += dout * silu(gate),
 * silu'(g) = sig(g) * (1 + g * (1 - sig(g))).
 * @example swigluBackward(dgate, dup, dact, gate, up);
 */
export function swigluBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < dout.length; i++) {
    const g = gate[i];
    const sig = 1 / (1 + Math.exp(-g));
    dgate[i] += dout[i] * up[i] * sig * (1 + g * (1 - sig));
    dup[i] += dout[i] * g * sig;
  }
}

/**
 * Weighted mean cross-entropy and its gradient in one pass. logits (T, V); targets (T), -1 =
 * ignored; weights (T) per-token loss weights (the loss mask). Returns
 * loss = sum_t w_t CE_t / sum_t w_t over non-ignored t, and OVERWRITES dlogits (T, V) with
 * d loss / d logits = w_t / W * (softmax - onehot). With no weight at all: loss 0, dlogits 0.
 * @example
 *   const loss = crossEntropyForwardBackward(dlogits, logits, targets, mask, T, V);
 */
export function crossEntropyForwardBackward(
  dlogits: Float32Array, logits: Float32Array, targets: ArrayLike<number>, weights: ArrayLike<number>, T: number, V: number,
): number {
  let wsum = 0;
  for (let t = 0; t < T; t++) if (targets[t] >= 0) wsum += weights[t];
  dlogits.fill(0, 0, T * V);
  if (wsum === 0) return 0;
  let loss = 0;
  for (let t = 0; t < T; t++) {
    const y = targets[t], wt = weights[t];
    if (y < 0 || wt === 0) continue;
    const o = t * V;
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[o + i] > max) max = logits[o + i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i] - max);
    const lse = max + Math.log(sum);
    loss += wt * (lse - logits[o + y]);
    const g = wt / wsum;
    for (let i = 0; i < V; i++) dlogits[o + i] = g * Math.exp(logits[o + i] - lse);
    dlogits[o + y] -= g;
  }
  return loss / wsum;
}
