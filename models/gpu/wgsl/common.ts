/**
 * WGSL is generated from these small template functions (one file per kernel family) so the f16
 * and f32 variants share one source and Node (tsx, vitest) and Vite load it the same way.
 * `T` is the activation storage type (f16 with shader-f16, else f32); math is always f32.
 */
export interface ShaderOptions {
  f16: boolean;
}

export function prelude(o: ShaderOptions): string {
  return o.f16 ? 'enable f16;\nalias T = f16;\n' : 'alias T = f32;\n';
}

/** Per-call parameters shared by every kernel of a forward pass (one uniform buffer). */
export const RUN_STRUCT = /* wgsl */ `
struct Run {
  T: u32,      // tokens in this call
  start: u32,  // position of the first token
  P: u32,      // keys visible to the last token (start + T)
  pad: u32,
}`;

/** Flattened 1-D index for a dispatch split over (x, y) to stay under 65535 groups per dimension. */
export const FLAT_INDEX = /* wgsl */ `
fn flatIndex(wid: vec3u, nwg: vec3u, lid: u32, wg: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * wg + lid;
}`;

/**
 * The four int8 weights of one u32 word of a Q8 matrix (models/quant/q8.ts), element i from bits
 * 8i..8i+7, sign-extended by an arithmetic shift.
 */
export const Q8_UNPACK = /* wgsl */ `
fn q8unpack(word: u32) -> vec4f {
  return vec4f(bitcast<vec4i>(vec4u(word << 24u, word << 16u, word << 8u, word)) >> vec4u(24u));
}`;

/** Reads scale `i` of a Q4 (or Q8: same scale layout) matrix (f16 pairs packed in u32, low half first). */
export const Q4_SCALE = /* wgsl */ `
fn q4scale(i: u32) -> f32 {
  return unpack2x16float(sc[i >> 1u])[i & 1u];
}`;
