import { FLAT_INDEX, prelude, RUN_STRUCT, type ShaderOptions } from './common.ts';

const ATT_STRUCT = /* wgsl */ `
struct Att { H: u32, KV: u32, D: u32, scale: f32 }`;

/**
 * RoPE (HF rotate_half: pairs (i, i + D/2)) on x (T, nh, D) at positions start + t, with cos/sin
 * tables (maxContext, D/2) computed on the CPU in f64. 'inplace' rotates q; 'to-cache' rotates k
 * into the KV cache at row start + t.
 */
export function ropeWgsl(o: ShaderOptions & { mode: 'inplace' | 'to-cache' }): string {
  const io = o.mode === 'inplace'
    ? `@group(0) @binding(4) var<storage, read_write> x: array<T>;
fn src(i: u32) -> f32 { return f32(x[i]); }
fn dst(i: u32, v: f32) { x[i] = T(v); }
const ROW_BASE = 0u;`
    : `@group(0) @binding(4) var<storage, read> x: array<T>;
@group(0) @binding(5) var<storage, read_write> cache: array<T>;
fn src(i: u32) -> f32 { return f32(x[i]); }
fn dst(i: u32, v: f32) { cache[i + run.start * rp.nh * rp.D] = T(v); }`;
  return `${prelude(o)}${RUN_STRUCT}${FLAT_INDEX}
struct Rope { nh: u32, D: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> rp: Rope;
@group(0) @binding(2) var<storage, read> cosT: array<f32>;
@group(0) @binding(3) var<storage, read> sinT: array<f32>;
${io}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let half = rp.D / 2u;
  let idx = flatIndex(wid, nwg, li, 256u);
  if (idx >= run.T * rp.nh * half) { return; }
  let i = idx % half;
  let h = (idx / half) % rp.nh;
  let t = idx / (half * rp.nh);
  let pos = run.start + t;
  let c = cosT[pos * half + i];
  let s = sinT[pos * half + i];
  let o = (t * rp.nh + h) * rp.D;
  let x1 = src(o + i);
  let x2 = src(o + i + half);
  dst(o + i, x1 * c - x2 * s);
  dst(o + i + half, x2 * c + x1 * s);
}
`;
}

/** scores (H, T, P) = q k^T * scale for keys j <= start + t; masked keys get -inf-like. */
export function attnScoresWgsl(o: ShaderOptions): string {
  return `${prelude(o)}${RUN_STRUCT}${ATT_STRUCT}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> at: Att;
@group(0) @binding(2) var<storage, read> q: array<T>;
@group(0) @binding(3) var<storage, read> kc: array<T>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let j = gid.x;
  let t = wid.y;
  let h = wid.z;
  if (j >= run.P) { return; }
  var s = -3.0e38;
  if (j <= run.start + t) {
    let kvh = h / (at.H / at.KV);
    let qo = (t * at.H + h) * at.D;
    let ko = (j * at.KV + kvh) * at.D;
    var acc = 0.0;
    for (var d = 0u; d < at.D; d++) { acc += f32(q[qo + d]) * f32(kc[ko + d]); }
    s = acc * at.scale;
  }
  scores[(h * run.T + t) * run.P + j] = s;
}
`;
}

/** Row softmax of scores (H, T, P) over the visible keys; one workgroup per (t, h). */
export function softmaxWgsl(o: ShaderOptions): string {
  return `${prelude(o)}${RUN_STRUCT}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x;
  let h = wid.y;
  let o = (h * run.T + t) * run.P;
  let visible = run.start + t + 1u;
  var m = -3.0e38;
  for (var j = li; j < visible; j += 256u) { m = max(m, scores[o + j]); }
  red[li] = m;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = li; j < visible; j += 256u) { sum += exp(scores[o + j] - mx); }
  red[li] = sum;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var j = li; j < run.P; j += 256u) {
    scores[o + j] = select(0.0, exp(scores[o + j] - mx) * inv, j < visible);
  }
}
`;
}

/** out (T, H, D) = probs (H, T, P) @ V cache (P, KV, D). */
export function attnValuesWgsl(o: ShaderOptions): string {
  return `${prelude(o)}${RUN_STRUCT}${ATT_STRUCT}${FLAT_INDEX}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> at: Att;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = flatIndex(wid, nwg, li, 64u);
  if (idx >= run.T * at.H * at.D) { return; }
  let d = idx % at.D;
  let h = (idx / at.D) % at.H;
  let t = idx / (at.D * at.H);
  let kvh = h / (at.H / at.KV);
  let po = (h * run.T + t) * run.P;
  let visible = run.start + t + 1u;
  var acc = 0.0;
  for (var j = 0u; j < visible; j++) { acc += probs[po + j] * f32(vc[(j * at.KV + kvh) * at.D + d]); }
  out[idx] = T(acc);
}
`;
}

/** cache[start * width + i] = src[i] for i < T * width (writes new V rows into the KV cache). */
export function toCacheWgsl(o: ShaderOptions): string {
  return `${prelude(o)}${RUN_STRUCT}${FLAT_INDEX}
struct Width { n: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> wd: Width;
@group(0) @binding(2) var<storage, read> src: array<T>;
@group(0) @binding(3) var<storage, read_write> cache: array<T>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flatIndex(wid, nwg, li, 256u);
  if (i >= run.T * wd.n) { return; }
  cache[run.start * wd.n + i] = src[i];
}
`;
}
