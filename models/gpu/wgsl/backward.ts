import { FLAT_INDEX, prelude, RUN_STRUCT, type ShaderOptions } from './common.ts';

/**
 * Backward kernels of the LoRA TTT pass (input gradients only; base weights are frozen), the GPU
 * twins of models/cpu/ops-backward.ts. Like the forward kernels, one pipeline per kernel serves
 * every layer: sizes come from the shared `Run` uniform (T tokens; training uses start = 0) and
 * the same small per-kernel uniforms as the forward (Norm, Rope, Att, Width), so a trainer can
 * bind the forward's uniform buffers unchanged.
 *
 * Types: `T` = activation storage (what the forward wrote: x, q, k, v, att, gate, up), `Grad` =
 * gradient storage, f32 by default even when T is f16: (softmax - onehot) / R is ~1e-8 for most
 * of a 128k vocabulary, below f16's smallest subnormal (6e-8), and f16 gradients would need loss
 * scaling. `grad: 'T'` halves gradient memory for callers that accept that. Math is f32.
 * Shapes: T tokens, C hidden, H heads, KV kv-heads, D head dim, F FFN width.
 */
export interface BackwardOptions extends ShaderOptions {
  /** Gradient storage type: 'f32' (default) or 'T' (the activation type). */
  grad?: 'f32' | 'T';
}

function head(o: BackwardOptions): string {
  return `${prelude(o)}alias Grad = ${o.grad === 'T' ? 'T' : 'f32'};\n${RUN_STRUCT}`;
}

/** Same layout as the forward's Att uniform: [H, KV, D, scale = 1/sqrt(D) as f32]. */
const ATT_STRUCT = /* wgsl */ `
struct Att { H: u32, KV: u32, D: u32, scale: f32 }`;

const WIDTH_STRUCT = /* wgsl */ `
struct Width { n: u32, p0: u32, p1: u32, p2: u32 }`;

/**
 * RMSNorm backward with a frozen weight, ACCUMULATING (so the residual gradient passes through
 * for free): dx_c += inv w_c dy_c - inv^3 / C * x_c * sum_j(w_j dy_j x_j), inv = 1/sqrt(mean(x^2)+eps).
 * x (T, C) the norm's input, dy (T, C) d/d output, dx (T, C). One workgroup of 256 per row.
 * Bindings: 0 run (Run), 1 nrm (Norm [C, single = 0, eps f32, 0], the forward's buffer),
 * 2 x array<T>, 3 w array<f32> (C), 4 dy array<Grad>, 5 dx array<Grad> read_write.
 * Grid: [T, 1, 1].
 */
export function rmsnormBackwardWgsl(o: BackwardOptions): string {
  return `${head(o)}
struct Norm { C: u32, single: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> nrm: Norm;
@group(0) @binding(2) var<storage, read> x: array<T>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<Grad>;
@group(0) @binding(5) var<storage, read_write> dx: array<Grad>;
var<workgroup> red: array<vec2f, 256>; // (sum x^2, sum w dy x)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  if (wid.x >= run.T) { return; } // uniform: one workgroup per row
  let o = wid.x * nrm.C;
  var acc = vec2f(0.0);
  for (var c = li; c < nrm.C; c += 256u) {
    let xv = f32(x[o + c]);
    acc += vec2f(xv * xv, w[c] * f32(dy[o + c]) * xv);
  }
  red[li] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0].x / f32(nrm.C) + nrm.eps);
  let k = inv * inv * inv * red[0].y / f32(nrm.C);
  for (var c = li; c < nrm.C; c += 256u) {
    dx[o + c] = Grad(f32(dx[o + c]) + inv * w[c] * f32(dy[o + c]) - k * f32(x[o + c]));
  }
}
`;
}

/**
 * RoPE backward in place: the rotation is orthogonal, so the gradient rotates by -angle.
 * dx (T, nh, D) holds d/d(rotated) on entry and d/d(unrotated) on exit, positions start + t,
 * same cos/sin tables (maxContext, D/2) and Rope uniform [nh, D] as ropeWgsl.
 * Bindings: 0 run, 1 rp (Rope [nh, D, 0, 0]), 2 cos array<f32>, 3 sin array<f32>, 4 dx array<Grad> read_write.
 * Grid: grid1D(T * nh * D / 2, 256).
 */
export function ropeBackwardWgsl(o: BackwardOptions): string {
  return `${head(o)}${FLAT_INDEX}
struct Rope { nh: u32, D: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> rp: Rope;
@group(0) @binding(2) var<storage, read> cosT: array<f32>;
@group(0) @binding(3) var<storage, read> sinT: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<Grad>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let half = rp.D / 2u;
  let idx = flatIndex(wid, nwg, li, 256u);
  if (idx >= run.T * rp.nh * half) { return; }
  let i = idx % half;
  let t = idx / (half * rp.nh);
  let pos = run.start + t;
  let c = cosT[pos * half + i];
  let s = sinT[pos * half + i];
  let o = (idx / half) * rp.D; // (t * nh + h) * D
  let g1 = f32(dx[o + i]);
  let g2 = f32(dx[o + i + half]);
  dx[o + i] = Grad(g1 * c + g2 * s);
  dx[o + i + half] = Grad(g2 * c - g1 * s);
}
`;
}

/*
 * Attention backward for training (causal, GQA) over one block of queries: rows t = 0..Run.T-1
 * of the block are the sequence's queries start + t, and they see the keys j <= start + t of
 * P = start + T keys (Run.start = 0, Run.P = Run.T: the whole sequence as one block). The probs
 * are what the (re)computed forward left in its scores buffer (H, Run.T, P) f32 (rows padded with
 * 0 past the diagonal, as softmaxWgsl writes them). Query-side buffers (dout, out, q, dq) hold the
 * block's rows only (the trainer binds them at the block's offset); key-side ones (v, k, dv, dk)
 * hold the P keys from row 0. Four dispatches per block, in this order:
 *   1. attnBackwardDvWgsl     dv (P, KV, D) (+)= sum over the group's heads of probs^T dout
 *   2. attnBackwardScoresWgsl probs -> dS IN PLACE: dS = probs * (dout V^T - delta) * scale, with
 *      delta_{t,h} = rowsum(dprobs * probs) = dout_{t,h} . out_{t,h} (out = the attention output, which
 *      the trainer keeps for o_proj's LoRA backward anyway), so no second (H, T, P) buffer and
 *      no second pass over the keys
 *   3. attnBackwardDqWgsl     dq (T, H, D) = dS K  (scale already in dS)
 *   4. attnBackwardDkWgsl     dk (P, KV, D) (+)= sum over the group's heads of dS^T Q
 * dq is WRITTEN; dv and dk are written, or with `accumulate` added to (the blocks of a sequence
 * sum their key gradients: the last block, which sees every key, writes, the earlier ones add),
 * so they need no clearing. A thread that owns a dk/dv element loops over its group's query
 * heads: no float atomics.
 */

/** Options of the key-side kernels (dv, dk). */
export interface KeyGradOptions extends BackwardOptions {
  /** Add to dst instead of writing it (every query block but the one that writes first). */
  accumulate?: boolean;
}

/** Shared body of dv and dk: out[j, kvh, d] (+)= sum_{h in group(kvh)} sum_{t: start + t >= j} M[h, t, j] src[t, h, d]. */
function groupTransposeWgsl(o: KeyGradOptions, srcType: 'T' | 'Grad'): string {
  return `${head(o)}${ATT_STRUCT}${FLAT_INDEX}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> at: Att;
@group(0) @binding(2) var<storage, read> m: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<${srcType}>;
@group(0) @binding(4) var<storage, read_write> dst: array<Grad>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = flatIndex(wid, nwg, li, 64u);
  if (idx >= run.P * at.KV * at.D) { return; }
  let d = idx % at.D;
  let kvh = (idx / at.D) % at.KV;
  let j = idx / (at.D * at.KV);
  let group = at.H / at.KV;
  // Causal: only the block's queries at positions >= j saw key j.
  let first = max(j, run.start) - run.start;
  var acc = 0.0;
  for (var g = 0u; g < group; g++) {
    let h = kvh * group + g;
    for (var t = first; t < run.T; t++) {
      acc += m[(h * run.T + t) * run.P + j] * f32(src[(t * at.H + h) * at.D + d]);
    }
  }
  dst[idx] = Grad(${o.accumulate ? 'f32(dst[idx]) + ' : ''}acc);
}
`;
}

/**
 * dv (P, KV, D) (+)= sum_{h in group} probs_h^T dout_h. Run before attnBackwardScoresWgsl overwrites probs.
 * Bindings: 0 run, 1 at (Att), 2 probs array<f32> (H, T, P), 3 dout array<Grad> (T, H, D), 4 dv array<Grad> (P, KV, D).
 * Grid: grid1D(P * KV * D, 64).
 */
export function attnBackwardDvWgsl(o: KeyGradOptions): string {
  return groupTransposeWgsl(o, 'Grad');
}

/**
 * probs (H, T, P) -> dS in place: dS[h,t,j] = probs[h,t,j] (dout_{t,h} . v_{j,kvh} - dout_{t,h} . out_{t,h}) * scale
 * for j <= start + t (entries past the diagonal stay 0). One workgroup of 64 per (t, h).
 * Bindings: 0 run, 1 at (Att), 2 probs array<f32> read_write, 3 dout array<Grad> (T, H, D),
 * 4 v array<T> (P, KV, D), 5 out array<T> (T, H, D) the attention output.
 * Grid: [T, H, 1].
 */
export function attnBackwardScoresWgsl(o: BackwardOptions): string {
  return `${head(o)}${ATT_STRUCT}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> at: Att;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<Grad>;
@group(0) @binding(4) var<storage, read> v: array<T>;
@group(0) @binding(5) var<storage, read> out: array<T>;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x;
  let h = wid.y;
  if (t >= run.T) { return; } // uniform per workgroup
  let kvh = h / (at.H / at.KV);
  let qo = (t * at.H + h) * at.D;
  // delta = sum_j P_j dP_j = dout . (sum_j P_j v_j) = dout . out
  var part = 0.0;
  for (var d = li; d < at.D; d += 64u) { part += f32(dout[qo + d]) * f32(out[qo + d]); }
  red[li] = part;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let delta = red[0];
  let po = (h * run.T + t) * run.P;
  for (var j = li; j <= run.start + t; j += 64u) {
    let vo = (j * at.KV + kvh) * at.D;
    var dp = 0.0;
    for (var d = 0u; d < at.D; d++) { dp += f32(dout[qo + d]) * f32(v[vo + d]); }
    probs[po + j] = probs[po + j] * (dp - delta) * at.scale;
  }
}
`;
}

/**
 * dq (T, H, D) = dS K, after attnBackwardScoresWgsl.
 * Bindings: 0 run, 1 at (Att), 2 ds array<f32> (H, T, P), 3 k array<T> (P, KV, D) after RoPE,
 * 4 dq array<Grad> (T, H, D). Grid: grid1D(T * H * D, 64).
 */
export function attnBackwardDqWgsl(o: BackwardOptions): string {
  return `${head(o)}${ATT_STRUCT}${FLAT_INDEX}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> at: Att;
@group(0) @binding(2) var<storage, read> ds: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<T>;
@group(0) @binding(4) var<storage, read_write> dq: array<Grad>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = flatIndex(wid, nwg, li, 64u);
  if (idx >= run.T * at.H * at.D) { return; }
  let d = idx % at.D;
  let h = (idx / at.D) % at.H;
  let t = idx / (at.D * at.H);
  let kvh = h / (at.H / at.KV);
  let po = (h * run.T + t) * run.P;
  var acc = 0.0;
  for (var j = 0u; j <= run.start + t; j++) { acc += ds[po + j] * f32(k[(j * at.KV + kvh) * at.D + d]); }
  dq[idx] = Grad(acc);
}
`;
}

/**
 * dk (P, KV, D) (+)= sum_{h in group} dS_h^T Q_h, after attnBackwardScoresWgsl.
 * Bindings: 0 run, 1 at (Att), 2 ds array<f32> (H, T, P), 3 q array<T> (T, H, D) after RoPE,
 * 4 dk array<Grad> (P, KV, D). Grid: grid1D(P * KV * D, 64).
 */
export function attnBackwardDkWgsl(o: KeyGradOptions): string {
  return groupTransposeWgsl(o, 'T');
}

/**
 * SwiGLU backward (out = silu(gate) * up), elementwise over n = run.T * width:
 * dgate = dout * up * silu'(gate), dup = dout * silu(gate), silu'(g) = sig(g) (1 + g (1 - sig(g))).
 * dgate is written IN PLACE over dout (dact is dead after this), dup is written (not accumulated).
 * gate and up are the pre-activation projections: the forward's in-place swigluWgsl destroys gate,
 * so the recompute must keep it (copy gate to act first and run swigluWgsl on act).
 * Bindings: 0 run, 1 wd (Width [F]), 2 dgate array<Grad> read_write (dout in, dgate out),
 * 3 gate array<T>, 4 up array<T>, 5 dup array<Grad> read_write. Grid: grid1D(T * F, 256).
 */
export function swigluBackwardWgsl(o: BackwardOptions): string {
  return `${head(o)}${WIDTH_STRUCT}${FLAT_INDEX}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> wd: Width;
@group(0) @binding(2) var<storage, read_write> dgate: array<Grad>;
@group(0) @binding(3) var<storage, read> gate: array<T>;
@group(0) @binding(4) var<storage, read> up: array<T>;
@group(0) @binding(5) var<storage, read_write> dup: array<Grad>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flatIndex(wid, nwg, li, 256u);
  if (i >= run.T * wd.n) { return; }
  let dout = f32(dgate[i]);
  let g = f32(gate[i]);
  let sig = 1.0 / (1.0 + exp(-g));
  dgate[i] = Grad(dout * f32(up[i]) * sig * (1.0 + g * (1.0 - sig)));
  dup[i] = Grad(dout * g * sig);
}
`;
}

/**
 * dst += src over n = run.T * width gradient elements (Grad typed; addWgsl covers T-typed buffers).
 * For summing the q/k/v (or gate/up) input gradients when a kernel cannot accumulate itself.
 * Bindings: 0 run, 1 wd (Width [width]), 2 dst array<Grad> read_write, 3 src array<Grad>.
 * Grid: grid1D(T * width, 256).
 */
export function addIntoWgsl(o: BackwardOptions): string {
  return `${head(o)}${WIDTH_STRUCT}${FLAT_INDEX}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> wd: Width;
@group(0) @binding(2) var<storage, read_write> dst: array<Grad>;
@group(0) @binding(3) var<storage, read> src: array<Grad>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flatIndex(wid, nwg, li, 256u);
  if (i >= run.T * wd.n) { return; }
  dst[i] = Grad(f32(dst[i]) + f32(src[i]));
}
`;
}
