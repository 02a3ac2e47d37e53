import { FLAT_INDEX, prelude, Q4_SCALE, RUN_STRUCT, type ShaderOptions } from './common.ts';

/**
 * RMSNorm of rows of x (C): out = x / sqrt(mean(x^2) + eps) * w. One workgroup per row.
 * With nrm.single, only the last row (run.T - 1) is normalised, into out row 0.
 * 64 threads, not 256: the zero-initialised workgroup array costs compile time (~90 ms less on
 * SwiftShader), and a row of 4,096 is 64 elements a thread.
 */
export const RMSNORM_THREADS = 64;

export function rmsnormWgsl(o: ShaderOptions): string {
  const N = RMSNORM_THREADS;
  return `${prelude(o)}${RUN_STRUCT}
struct Norm { C: u32, single: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> nrm: Norm;
@group(0) @binding(2) var<storage, read> x: array<T>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;
var<workgroup> red: array<f32, ${N}>;

@compute @workgroup_size(${N})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let inRow = select(wid.x, run.T - 1u, nrm.single == 1u);
  let outRow = select(wid.x, 0u, nrm.single == 1u);
  let xo = inRow * nrm.C;
  var ss = 0.0;
  for (var c = li; c < nrm.C; c += ${N}u) { let v = f32(x[xo + c]); ss += v * v; }
  red[li] = ss;
  workgroupBarrier();
  for (var s = ${N / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(nrm.C) + nrm.eps);
  for (var c = li; c < nrm.C; c += ${N}u) {
    y[outRow * nrm.C + c] = T(f32(x[xo + c]) * inv * w[c]);
  }
}
`;
}

/** gate = silu(gate) * up over n = run.T * width elements. */
export function swigluWgsl(o: ShaderOptions): string {
  return `${prelude(o)}${RUN_STRUCT}${FLAT_INDEX}
struct Width { n: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> wd: Width;
@group(0) @binding(2) var<storage, read_write> gate: array<T>;
@group(0) @binding(3) var<storage, read> up: array<T>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flatIndex(wid, nwg, li, 256u);
  if (i >= run.T * wd.n) { return; }
  let g = f32(gate[i]);
  gate[i] = T(g / (1.0 + exp(-g)) * f32(up[i]));
}
`;
}

/** x += y over run.T * width elements (the residual stream). */
export function addWgsl(o: ShaderOptions): string {
  return `${prelude(o)}${RUN_STRUCT}${FLAT_INDEX}
struct Width { n: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> wd: Width;
@group(0) @binding(2) var<storage, read_write> x: array<T>;
@group(0) @binding(3) var<storage, read> y: array<T>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flatIndex(wid, nwg, li, 256u);
  if (i >= run.T * wd.n) { return; }
  x[i] = T(f32(x[i]) + f32(y[i]));
}
`;
}

/**
 * x (T, C) = embedding rows of ids, from f32, Q4 or Q8 embeddings (Q8: a tied embedding, which is
 * the lm_head's buffer itself, models/weights-plan.ts embedFormat). The bound table holds rows
 * r0..r0+rows of the embedding (one row block of a split matrix, models/gpu/gpu-weights.ts): ids
 * outside it are left to the other blocks' dispatches. Uniform: (C, r0, rows, 0).
 */
export function embedWgsl(o: ShaderOptions & { weights: 'f32' | 'q4' | 'q8' }): string {
  const q8 = `@group(0) @binding(3) var<storage, read> qw: array<u32>;
@group(0) @binding(4) var<storage, read> sc: array<u32>;
${Q4_SCALE}
fn emb(id: u32, c: u32) -> f32 {
  let groups = (emb_p.C + 31u) / 32u; // Q8 groups of 32 per row, 8 words each
  let g = c / 32u;
  let word = qw[(id * groups + g) * 8u + (c % 32u) / 4u];
  return f32(bitcast<i32>(word << (24u - 8u * (c % 4u))) >> 24u) * q4scale(id * groups + g);
}`;
  const read = o.weights === 'q8' ? q8 : o.weights === 'q4'
    ? `@group(0) @binding(3) var<storage, read> qw: array<u32>;
@group(0) @binding(4) var<storage, read> sc: array<u32>;
${Q4_SCALE}
fn emb(id: u32, c: u32) -> f32 {
  let groups = (emb_p.C + 31u) / 32u; // Q4 groups of 32 per row
  let g = c / 32u;
  let word = qw[(id * groups + g) * 4u + (c % 32u) / 8u];
  return (f32((word >> (4u * (c % 8u))) & 15u) - 8.0) * q4scale(id * groups + g);
}`
    : `@group(0) @binding(3) var<storage, read> w: array<f32>;
fn emb(id: u32, c: u32) -> f32 { return w[id * emb_p.C + c]; }`;
  return `${prelude(o)}${RUN_STRUCT}${FLAT_INDEX}
struct Emb { C: u32, r0: u32, rows: u32, p0: u32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> emb_p: Emb;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
${read}
@group(0) @binding(5) var<storage, read_write> x: array<T>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flatIndex(wid, nwg, li, 256u);
  if (i >= run.T * emb_p.C) { return; }
  let t = i / emb_p.C;
  let c = i % emb_p.C;
  let id = ids[t];
  if (id < emb_p.r0 || id >= emb_p.r0 + emb_p.rows) { return; }
  x[i] = T(emb(id - emb_p.r0, c));
}
`;
}
