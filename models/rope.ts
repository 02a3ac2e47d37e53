import type { LlamaConfig } from './config.ts';

/**
 * RoPE inverse frequencies (D/2), with Llama 3.1's `llama3` scaling applied as in HF
 * `_compute_llama3_parameters`. Computed in float64; kernels receive them as f32.
 */
export function ropeInvFreq(config: LlamaConfig): Float64Array {
  const D = config.headDim;
  const inv = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = 1 / Math.pow(config.ropeTheta, (2 * i) / D);
  const rs = config.ropeScaling;
  if (!rs) return inv;
  const lowWavelen = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
  const highWavelen = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
  for (let i = 0; i < inv.length; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen < highWavelen) continue; // high frequency: unchanged
    if (wavelen > lowWavelen) {
      inv[i] = inv[i] / rs.factor; // low frequency: scaled
    } else {
      // medium band: interpolate between scaled and unscaled
      const smooth = (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
      inv[i] = (1 - smooth) * (inv[i] / rs.factor) + smooth * inv[i];
    }
  }
  return inv;
}

/** cos/sin tables (P, D/2) for positions [start, start+count), as f32. */
export function ropeTables(invFreq: Float64Array, start: number, count: number): { cos: Float32Array<ArrayBuffer>; sin: Float32Array<ArrayBuffer> } {
  const half = invFreq.length;
  const cos = new Float32Array(count * half);
  const sin = new Float32Array(count * half);
  for (let p = 0; p < count; p++) {
    for (let i = 0; i < half; i++) {
      // HF computes the angle in f32: fround keeps the reference on the same rounding.
      const a = Math.fround(Math.fround(start + p) * Math.fround(invFreq[i]));
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}
