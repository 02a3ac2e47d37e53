import { f16BitsToF32, f32ToF16Bits } from '../safetensors/dtype.ts';

/**
 * The engine's 8-bit weight format (like llama.cpp's Q8_0, laid out for WGSL like ./q4.ts), used
 * for the lm_head (and a tied embedding, which is the same matrix): llama.cpp keeps the output
 * matrix above 4 bits, and the measurements in scripts/bench/lm-head-precision.ts agree.
 *
 * A matrix W (N rows = outputs, K columns = inputs, HF layout) is cut along K into groups of 32;
 * K is padded with zeros to Kp = 32 * G, G = ceil(K / 32).
 * - `qweight`: u32[N * G * 8], row-major; row n, group g holds words n*G*8 + g*8 + 0..7; word w
 *   packs elements 4w..4w+3 of the group, element i in bits 8i..8i+7, as a two's-complement int8 q.
 * - `scales`: f16[N * G] (stored two per u32 on the GPU, low half first), one per group, as in Q4.
 * - Value: w = q * scale, q in -127..127. scale = amax / 127 (amax = the group's largest |w|), and
 *   q = clamp(floor(w / scale + 0.5), -127, 127) in f32 (Math.fround) so the GPU kernel matches.
 * 8.5 bits per weight (8 + 16/32).
 */
export const Q8_GROUP = 32;
/** u32 words per group of 32 int8 weights. */
export const Q8_WORDS = 8;

export interface Q8Matrix {
  N: number;
  K: number;
  G: number; // groups per row
  qweight: Uint32Array; // (N, G, 8)
  scales: Uint16Array; // (N, G) f16 bits
}

/**
 * Quantizes W (N, K) row-major. f32 arithmetic (Math.fround) so the GPU kernel can match it.
 * @example const q = quantizeQ8(w, 512, 64); dequantizeQ8(q); // w within amax / 254 per group
 */
export function quantizeQ8(w: Float32Array, N: number, K: number): Q8Matrix {
  const G = Math.ceil(K / Q8_GROUP);
  const qweight = new Uint32Array(N * G * Q8_WORDS);
  const scales = new Uint16Array(N * G);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const k0 = g * Q8_GROUP;
      let amax = 0;
      for (let i = 0; i < Q8_GROUP && k0 + i < K; i++) amax = Math.max(amax, Math.abs(w[n * K + k0 + i]));
      const d = Math.fround(amax / 127);
      const id = d !== 0 ? Math.fround(1 / d) : 0;
      scales[n * G + g] = f32ToF16Bits(d);
      for (let i = 0; i < Q8_GROUP; i++) {
        const v = k0 + i < K ? w[n * K + k0 + i] : 0;
        const q = Math.max(-127, Math.min(127, Math.floor(Math.fround(Math.fround(v * id) + 0.5))));
        const word = n * G * Q8_WORDS + g * Q8_WORDS + (i >> 2);
        qweight[word] |= (q & 255) << ((i & 3) * 8);
      }
    }
  }
  return { N, K, G, qweight, scales };
}

/**
 * Back to f32 (N, K): the weights the 8-bit kernels effectively use.
 * @example const w8 = dequantizeQ8(quantizeQ8(w, N, K));
 */
export function dequantizeQ8(m: Q8Matrix): Float32Array {
  const { N, K, G } = m;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const d = f16BitsToF32(m.scales[n * G + g]);
      for (let i = 0; i < Q8_GROUP && g * Q8_GROUP + i < K; i++) {
        const byte = (m.qweight[n * G * Q8_WORDS + g * Q8_WORDS + (i >> 2)] >>> ((i & 3) * 8)) & 255;
        out[n * K + g * Q8_GROUP + i] = (byte > 127 ? byte - 256 : byte) * d;
      }
    }
  }
  return out;
}

/**
 * Bytes of a Q8 matrix on the GPU and in the weight cache (scales padded to whole u32 words).
 * @example q8Bytes(128256, 4096); // 558,170,112 (8.5 bits per weight)
 */
export function q8Bytes(N: number, K: number): number {
  const G = Math.ceil(K / Q8_GROUP);
  return N * G * 32 + Math.ceil((N * G) / 2) * 4;
}
