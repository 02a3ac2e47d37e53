/**
 * The LoRA term of a projection as a forward/backward pair (PEFT layout):
 * y += scale * (x A^T) B^T with A (r, K), B (N, r), scale = alpha / r.
 * Kept apart from the frozen matmul so the base path stays bit-identical when B = 0 is skipped.
 */

/**
 * y (T, N) += scale * (x A^T) B^T; saves xa (T, r) = x A^T (overwritten) for the backward pass.
 * x (T, K), A (r, K), B (N, r).
 * @example
 *   const xa = new Float32Array(T * r);
 *   loraForward(q, xn, A, B, T, C, H * D, r, alpha / r, xa);
 */
export function loraForward(
  y: Float32Array, x: Float32Array, A: Float32Array, B: Float32Array,
  T: number, K: number, N: number, r: number, scale: number, xa: Float32Array,
): void {
  for (let t = 0; t < T; t++) {
    const xo = t * K;
    for (let i = 0; i < r; i++) {
      const ao = i * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * A[ao + k];
      xa[t * r + i] = s;
    }
    for (let n = 0; n < N; n++) {
      const bo = n * r;
      let s = 0;
      for (let i = 0; i < r; i++) s += xa[t * r + i] * B[bo + i];
      y[t * N + n] += scale * s;
    }
  }
}

/**
 * Backward of `loraForward`, accumulating (+=) into dx (T, K), dA (r, K), dB (N, r):
 *   dB += scale * dy^T xa;  dxa = scale * dy B (T, r);  dA += dxa^T x;  dx += dxa A.
 * dy (T, N); x (T, K) and xa (T, r) as in the forward pass.
 * @example loraBackward(dxn, dA, dB, dq, xn, xa, A, B, T, C, H * D, r, alpha / r);
 */
export function loraBackward(
  dx: Float32Array, dA: Float32Array, dB: Float32Array, dy: Float32Array,
  x: Float32Array, xa: Float32Array, A: Float32Array, B: Float32Array,
  T: number, K: number, N: number, r: number, scale: number,
): void {
  const dxa = new Float64Array(r);
  // dB (N, r) += scale * dy^T (N, T) xa (T, r): accumulate in f64 over t before one f32 store.
  const dBacc = new Float64Array(N * r);
  const dAacc = new Float64Array(r * K);
  for (let t = 0; t < T; t++) {
    const yo = t * N, xo = t * K, ro = t * r;
    dxa.fill(0);
    for (let n = 0; n < N; n++) {
      const g = scale * dy[yo + n];
      if (g === 0) continue;
      const bo = n * r;
      for (let i = 0; i < r; i++) {
        dBacc[bo + i] += g * xa[ro + i];
        dxa[i] += g * B[bo + i];
      }
    }
    for (let i = 0; i < r; i++) {
      const g = dxa[i];
      if (g === 0) continue;
      const ao = i * K;
      for (let k = 0; k < K; k++) {
        dAacc[ao + k] += g * x[xo + k];
        dx[xo + k] += g * A[ao + k];
      }
    }
  }
  for (let i = 0; i < N * r; i++) dB[i] += dBacc[i];
  for (let i = 0; i < r * K; i++) dA[i] += dAacc[i];
}
