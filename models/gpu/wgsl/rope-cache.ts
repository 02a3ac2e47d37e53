import { FLAT_INDEX, prelude, RUN_STRUCT, type ShaderOptions } from './common.ts';

/**
 * RoPE of q and k and the KV-cache write in one pass (llama.cpp and WebLLM fuse them too): per
 * token t at position start + t, the H query heads rotate in place, the KV key heads rotate into
 * the key cache at row start + t and, with `copyV`, the values are copied into the value cache
 * there. Rotation as ropeWgsl (HF rotate_half: pairs (i, i + D/2), cos/sin tables (maxContext,
 * D/2)). One dispatch instead of three (rope q, rope k, v cache) per layer and token.
 * Uniform: the attention's [H, KV, D, scale] (only H, KV, D are read).
 * Bindings: 0 run, 1 att, 2 cos, 3 sin, 4 q (T, H, D), 5 k (T, KV, D), 6 kCache, [7 v, 8 vCache].
 * Threads per token: H*D/2 query pairs, then KV*D/2 key pairs, then KV*D value copies.
 */
export function ropeCacheWgsl(o: ShaderOptions & { copyV: boolean }): string {
  const v = o.copyV
    ? `@group(0) @binding(7) var<storage, read> v: array<T>;
@group(0) @binding(8) var<storage, read_write> vc: array<T>;`
    : '';
  const copy = o.copyV
    ? `else {
    let e = r - qp - kp;
    vc[(run.start + t) * kvw + e] = v[t * kvw + e];
  }`
    : '';
  return `${prelude(o)}${RUN_STRUCT}${FLAT_INDEX}
struct Att { H: u32, KV: u32, D: u32, scale: f32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> at: Att;
@group(0) @binding(2) var<storage, read> cosT: array<f32>;
@group(0) @binding(3) var<storage, read> sinT: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<T>;
@group(0) @binding(5) var<storage, read> k: array<T>;
@group(0) @binding(6) var<storage, read_write> kc: array<T>;
${v}

// The pair (x1, x2) = (x[i], x[i + D/2]) rotated by the angle of table entry e = pos * D/2 + i.
fn rotate(x1: f32, x2: f32, e: u32) -> vec2f {
  let c = cosT[e];
  let s = sinT[e];
  return vec2f(x1 * c - x2 * s, x2 * c + x1 * s);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let half = at.D / 2u;
  let kvw = at.KV * at.D;
  let qp = at.H * half;
  let kp = at.KV * half;
  let per = qp + kp + ${o.copyV ? 'kvw' : '0u'};
  let idx = flatIndex(wid, nwg, li, 256u);
  if (idx >= run.T * per) { return; }
  let t = idx / per;
  let r = idx % per;
  let pos = run.start + t;
  if (r < qp) {
    let i = r % half;
    let o = (t * at.H + r / half) * at.D;
    let y = rotate(f32(q[o + i]), f32(q[o + i + half]), pos * half + i);
    q[o + i] = T(y.x);
    q[o + i + half] = T(y.y);
  } else if (r < qp + kp) {
    let rk = r - qp;
    let i = rk % half;
    let o = (t * at.KV + rk / half) * at.D;
    let y = rotate(f32(k[o + i]), f32(k[o + i + half]), pos * half + i);
    kc[run.start * kvw + o + i] = T(y.x);
    kc[run.start * kvw + o + i + half] = T(y.y);
  } ${copy}
}
`;
}

/** Threads of ropeCacheWgsl for T tokens. */
export function ropeCacheThreads(T: number, H: number, KV: number, D: number, copyV: boolean): number {
  return T * ((H + KV) * (D / 2) + (copyV ? KV * D : 0));
}
