import { f16BitsToF32, f32ToF16Bits } from '../safetensors/dtype.ts';

/**
 * The engine's 4-bit weight format (like llama.cpp's Q4_0, laid out for WGSL):
 *
 * A matrix W (N rows = outputs, K columns = inputs, HF layout) is cut along K into groups of 32;
 * K is padded with zeros to Kp = 32 * G, G = ceil(K / 32).
 * - `qweight`: u32[N * G * 4], row-major; row n, group g holds words n*G*4 + g*4 + 0..3; word w
 *   packs elements 8w..8w+7 of the group, element i in bits 4i..4i+3, as an unsigned nibble q.
 * - `scales`: f16[N * G] (stored two per u32 on the GPU, low half first), one per group.
 * - Value: w = (q - 8) * scale. scale = m / -8 where m is the group's element of largest |w|, so
 *   m maps exactly to q = 0 and the other values round to nearest (q = min(15, floor(w/scale + 8.5))).
 * 4.5 bits per weight (4 + 16/32).
 */
export const Q4_GROUP = 32;

export interface Q4Matrix {
  N: number;
  K: number;
  G: number; // groups per row
  qweight: Uint32Array; // (N, G, 4)
  scales: Uint16Array; // (N, G) f16 bits
}

/** Quantizes W (N, K) row-major. f32 arithmetic (Math.fround) so the GPU kernel can match it. */
export function quantizeQ4(w: Float32Array, N: number, K: number): Q4Matrix {
  const G = Math.ceil(K / Q4_GROUP);
  const qweight = new Uint32Array(N * G * 4);
  const scales = new Uint16Array(N * G);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const k0 = g * Q4_GROUP;
      let amax = 0, m = 0;
      for (let i = 0; i < Q4_GROUP && k0 + i < K; i++) {
        const v = w[n * K + k0 + i];
        if (Math.abs(v) > amax) { amax = Math.abs(v); m = v; }
      }
      const d = Math.fround(m / -8);
      const id = d !== 0 ? Math.fround(1 / d) : 0;
      scales[n * G + g] = f32ToF16Bits(d);
      for (let i = 0; i < Q4_GROUP; i++) {
        const v = k0 + i < K ? w[n * K + k0 + i] : 0;
        const q = Math.min(15, Math.floor(Math.fround(Math.fround(v * id) + 8.5)));
        const word = n * G * 4 + g * 4 + (i >> 3);
        qweight[word] |= q << ((i & 7) * 4);
      }
    }
  }
  return { N, K, G, qweight, scales };
}

/** Back to f32 (N, K): the weights the 4-bit kernels effectively use. */
export function dequantizeQ4(m: Q4Matrix): Float32Array {
  const { N, K, G } = m;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const d = f16BitsToF32(m.scales[n * G + g]);
      for (let i = 0; i < Q4_GROUP && g * Q4_GROUP + i < K; i++) {
        const q = (m.qweight[n * G * 4 + g * 4 + (i >> 3)] >>> ((i & 7) * 4)) & 15;
        out[n * K + g * Q4_GROUP + i] = (q - 8) * d;
      }
    }
  }
  return out;
}

/** Bytes of a Q4 matrix on the GPU (scales padded to whole u32 words). */
export function q4Bytes(N: number, K: number): number {
  const G = Math.ceil(K / Q4_GROUP);
  return N * G * 16 + Math.ceil((N * G) / 2) * 4;
}
