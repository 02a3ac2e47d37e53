/**
 * Row-major matrices of embeddings (one Float32Array, `count` rows of `dims`) and the few
 * operations the index needs on them.
 */
import { f16BitsToF32, f32ToF16Bits } from '../safetensors/dtype.ts';
import { seededRandom } from '../random.ts';

/**
 * Squared Euclidean distance between `q` and row `row` of `data`.
 * @example squaredDistance(new Float32Array([1, 0]), new Float32Array([0, 1]), 0, 2); // 2
 */
export function squaredDistance(q: Float32Array, data: Float32Array, row: number, dims: number): number {
  const o = row * dims;
  // Four accumulators: independent add chains run ~1.6x faster than one (measured, V8).
  let a = 0, b = 0, c = 0, d = 0;
  let j = 0;
  for (; j + 3 < dims; j += 4) {
    const t0 = q[j] - data[o + j];
    const t1 = q[j + 1] - data[o + j + 1];
    const t2 = q[j + 2] - data[o + j + 2];
    const t3 = q[j + 3] - data[o + j + 3];
    a += t0 * t0;
    b += t1 * t1;
    c += t2 * t2;
    d += t3 * t3;
  }
  for (; j < dims; j++) {
    const t = q[j] - data[o + j];
    a += t * t;
  }
  return a + b + c + d;
}

/**
 * Cosine similarity of two unit vectors from their Euclidean distance: |a-b|^2 = 2 - 2 cos.
 * @example cosineFromSquaredDistance(0); // 1
 */
export function cosineFromSquaredDistance(d2: number): number {
  return 1 - d2 / 2;
}

/**
 * Scales every row to unit L2 length in place (zero rows stay zero).
 * @example normalizeRows(v, 384);
 */
export function normalizeRows(data: Float32Array, dims: number): Float32Array {
  for (let o = 0; o < data.length; o += dims) {
    let s = 0;
    for (let j = 0; j < dims; j++) s += data[o + j] * data[o + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dims; j++) data[o + j] *= inv;
  }
  return data;
}

/**
 * Rounds every value to the nearest float16 in place, so vectors held in memory equal the ones
 * a Float16 index file gives back (a persisted index then returns identical results).
 * @example roundToF16(vectors);
 */
export function roundToF16(data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) data[i] = f16BitsToF32(f32ToF16Bits(data[i]));
  return data;
}

/**
 * `count` seeded random unit vectors of `dims` (Gaussian entries, normalised: uniform on the sphere).
 * @example const v = seededUnitVectors(2000, 384, 42); // Float32Array(2000 * 384)
 */
export function seededUnitVectors(count: number, dims: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(count * dims);
  for (let i = 0; i < out.length; i += 2) {
    // Box-Muller: two Gaussians from two uniforms; 1 - u avoids log(0).
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const th = 2 * Math.PI * rand();
    out[i] = r * Math.cos(th);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(th);
  }
  return normalizeRows(out, dims);
}
