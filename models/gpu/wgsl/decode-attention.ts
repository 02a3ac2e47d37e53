import { prelude, RUN_STRUCT, type ShaderOptions } from './common.ts';

/**
 * Keys per block of decodeAttentionWgsl (its scores in workgroup memory: 1 KiB). 256, not 1024:
 * the zero-initialised workgroup array costs compile time (~0.4 s less on SwiftShader); a block
 * is only two reductions more per 256 keys.
 */
export const DECODE_ATTENTION_BLOCK = 256;
/** Threads per workgroup: 32 for small heads (fewer idle threads, shorter reductions), else 128. */
export function decodeAttentionThreads(D: number): number {
  return D <= 32 ? 32 : 128;
}

/**
 * Attention of one query token (decode, T = 1) over the P = start + 1 keys in the cache, in one
 * dispatch instead of three (scores, softmax, values), flash-decoding style: one workgroup per
 * query head walks the keys in blocks of DECODE_ATTENTION_BLOCK, keeps the block's scores in
 * workgroup memory, and folds each block into a running max, sum and output (online softmax), so
 * memory does not grow with P. Thread i owns output dims i, i + WG, ... (`D` fixes WG and how
 * many: decodeAttentionThreads).
 * No probabilities are kept: generation only (the trainer's backward needs them).
 * Bindings: 0 run, 1 att [H, KV, D, scale], 2 q (H*D), 3 kCache (>= P, KV, D), 4 vCache, 5 att out (H*D).
 * Grid: [H, 1, 1].
 */
export function decodeAttentionWgsl(o: ShaderOptions & { D: number }): string {
  const WG = decodeAttentionThreads(o.D);
  const dims = Math.ceil(o.D / WG);
  return `${prelude(o)}${RUN_STRUCT}
struct Att { H: u32, KV: u32, D: u32, scale: f32 }
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> at: Att;
@group(0) @binding(2) var<storage, read> q: array<T>;
@group(0) @binding(3) var<storage, read> kc: array<T>;
@group(0) @binding(4) var<storage, read> vc: array<T>;
@group(0) @binding(5) var<storage, read_write> att: array<T>;

const BLOCK = ${DECODE_ATTENTION_BLOCK}u;
const WG = ${WG}u;
const DIMS = ${dims}u;
var<workgroup> sc: array<f32, ${DECODE_ATTENTION_BLOCK}>;
var<workgroup> red: array<f32, ${WG}>;

fn reduceMax(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let h = wid.x;
  let kvh = h / (at.H / at.KV);
  let qo = h * at.D;
  let P = run.P;
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, DIMS>;
  for (var b0 = 0u; b0 < P; b0 += BLOCK) {
    let n = min(BLOCK, P - b0);
    var bm = -3.0e38;
    for (var j = li; j < n; j += WG) {
      let ko = ((b0 + j) * at.KV + kvh) * at.D;
      var s = 0.0;
      for (var d = 0u; d < at.D; d++) { s += f32(q[qo + d]) * f32(kc[ko + d]); }
      s *= at.scale;
      sc[j] = s;
      bm = max(bm, s);
    }
    let mNew = max(m, reduceMax(li, bm));
    var part = 0.0;
    for (var j = li; j < n; j += WG) {
      let e = exp(sc[j] - mNew);
      sc[j] = e;
      part += e;
    }
    let alpha = exp(m - mNew);
    l = l * alpha + reduceSum(li, part); // its barriers also publish sc
    for (var i = 0u; i < DIMS; i++) {
      let d = li + i * WG;
      if (d < at.D) {
        var a = acc[i] * alpha;
        for (var j = 0u; j < n; j++) { a += sc[j] * f32(vc[((b0 + j) * at.KV + kvh) * at.D + d]); }
        acc[i] = a;
      }
    }
    m = mNew;
    workgroupBarrier(); // the next block overwrites sc
  }
  for (var i = 0u; i < DIMS; i++) {
    let d = li + i * WG;
    if (d < at.D) { att[qo + d] = T(acc[i] / l); }
  }
}
`;
}
