import { FLAT_INDEX, prelude, Q4_SCALE, Q8_UNPACK, RUN_STRUCT, type ShaderOptions } from './common.ts';
import { RMSNORM_THREADS } from './elementwise.ts';

/**
 * y (M, N) = x (M, K) W^T with W (N, K) as f32, Q4 (see models/quant/q4.ts) or Q8 (models/quant/q8.ts, the lm_head).
 * M = run.T, or 1 when mm.single (lm_head on the last row only); y[m * ldy + yOff + n] (see MM_STRUCT).
 * With `residual`, y = x W^T + res (the layer's residual add folded into its projection).
 * Bindings: 0 run, 1 mm, 2 x, 3 w | qweight, 4 scales (q4 / q8 only), 5 y, 6 res (residual only),
 * 7 norm weight and 8 Norm uniform (matvec with `norm` only), 9 Qkv uniform, 10 yk, 11 yv (matvec
 * with `qkv` only).
 */
export interface MatmulOptions extends ShaderOptions {
  weights: 'f32' | 'q4' | 'q8';
  /** Output storage type: activations ('T') or f32 (logits). */
  out: 'T' | 'f32';
  /** y = x W^T + res, res (M, N) like y (one dispatch instead of a matmul and an add). */
  residual?: boolean;
  /** Matvec only: lanes per row (matvecLanes: 32, or 1 for short rows); rows per workgroup 256 / lanes. */
  lanes?: 1 | 32;
  /** Matvec only: x is RMSNorm'd on the fly (binding 7 the norm weight, 8 the Norm uniform), exactly as rmsnormWgsl would. */
  norm?: boolean;
  /**
   * Matvec only: W is q, k and v in one matrix (qkvLayout): y gets q's rows, yk (binding 10) k's,
   * yv (11) v's, where the Qkv uniform (9, qkvSplitWords) says they start; padding rows are dropped.
   */
  qkv?: boolean;
}

/**
 * Lanes per row of the matvec kernels for rows of K: 32 (lanes read consecutive groups, then
 * reduce) for long rows; 1 (one thread per row, no reduction) for short ones, where 32 lanes
 * would mostly idle and their barriers dominate (software adapters pay for every invocation).
 * @example matvecLanes(4096); // 32
 * @example matvecLanes(64); // 1
 */
export function matvecLanes(K: number): 1 | 32 {
  return K <= 256 ? 1 : 32;
}

/** Rows per workgroup of a matvec kernel with `lanes` lanes per row (its grid: grid1D(N, rows)). */
export function matvecRows(lanes: 1 | 32): number {
  return 256 / lanes;
}

/** The norm folded into a matvec: the Norm uniform and weight, and the row's 1/rms (rmsnormWgsl's reduction, so xin(k) is bit for bit its output). */
function normBindings(weight: number, uniform: number): string {
  return `struct Norm { C: u32, single: u32, eps: f32, pad: u32 }
@group(0) @binding(${weight}) var<storage, read> nw: array<f32>;
@group(0) @binding(${uniform}) var<uniform> nrm: Norm;
var<private> inv: f32;
fn xin(k: u32) -> f32 { return f32(T(f32(x[k]) * inv * nw[k])); }`;
}

// The first RMSNORM_THREADS threads reduce as rmsnormWgsl does (same partial sums, same tree).
const NORM_PROLOGUE = `{
    var ss = 0.0;
    if (li < ${RMSNORM_THREADS}u) {
      for (var c = li; c < nrm.C; c += ${RMSNORM_THREADS}u) { let v = f32(x[c]); ss += v * v; }
    }
    red[li] = ss;
    workgroupBarrier();
    for (var s = ${RMSNORM_THREADS / 2}u; s > 0u; s >>= 1u) {
      if (li < s) { red[li] += red[li + s]; }
      workgroupBarrier();
    }
    inv = inverseSqrt(red[0] / f32(nrm.C) + nrm.eps);
    workgroupBarrier();
  }`;

/** LANES of a matvec kernel (its body strides by it). */
function lanesPrelude(lanes: 1 | 32): string {
  return `const LANES = ${lanes}u;`;
}

/** A matvec body reading x through the folded norm. */
function normed(body: string): string {
  return body.replace(/f32\(x\[([^\]]+)\]\)/g, 'xin($1)');
}

/**
 * The MM uniform of the matmul kernels (forward here, input gradient in ./matmul-backward.ts):
 * W (N, K) in Q4 groups of 32 per row; `single` (forward only): the last row of x only; the
 * output y (forward) or dy (backward) has row stride `ldy` and W's rows are its columns
 * yOff..yOff+N, so one row block of a split matrix (models/gpu/gpu-weights.ts) reads or writes
 * its own columns of the full (M, ldy) logits. ldy = N, yOff = 0 for an unsplit matrix.
 */
export const MM_STRUCT = /* wgsl */ `
struct MM { N: u32, K: u32, groups: u32, single: u32, yOff: u32, ldy: u32, p0: u32, p1: u32 }`;

/**
 * The MM uniform's words (8 u32, 32 bytes) for a block of N rows of W written to columns yOff.. of
 * a y with row stride ldy.
 * @example matmulParams(4096, 4096); // [4096, 4096, 128, 0, 0, 4096, 0, 0]
 * @example matmulParams(64128, 4096, { yOff: 64128, ldy: 128256, single: true });
 */
export function matmulParams(N: number, K: number, o: { single?: boolean; yOff?: number; ldy?: number } = {}): number[] {
  return [N, K, Math.ceil(K / 32), o.single ? 1 : 0, o.yOff ?? 0, o.ldy ?? N, 0, 0];
}

/** The weight bindings of a matmul kernel: f32 rows, or packed words + scales (q4, q8). */
export function weightBindings(weights: 'f32' | 'q4' | 'q8'): string {
  return weights === 'f32'
    ? `@group(0) @binding(3) var<storage, read> w: array<f32>;`
    : `@group(0) @binding(3) var<storage, read> qw: array<u32>;
@group(0) @binding(4) var<storage, read> sc: array<u32>;
${Q4_SCALE}${weights === 'q8' ? Q8_UNPACK : ''}`;
}

/** What every matmul kernel reads: bindings 0 run, 1 mm, 2 x, 3 (and 4) the weights. */
function inputBindings(o: ShaderOptions & { weights: MatmulOptions['weights'] }): string {
  return `${prelude(o)}${RUN_STRUCT}${MM_STRUCT}
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> mm: MM;
@group(0) @binding(2) var<storage, read> x: array<T>;
${weightBindings(o.weights)}`;
}

function bindings(o: MatmulOptions): string {
  return `${inputBindings(o)}
alias OUT = ${o.out};
@group(0) @binding(5) var<storage, read_write> y: array<OUT>;
${o.residual ? '@group(0) @binding(6) var<storage, read> res: array<T>;\n' : ''}`;
}

/**
 * The entry point of a matvec kernel: row n per LANES lanes; each lane sums its share of the row
 * into the accumulators `sums` (acc, with its workgroup array for the reduction over the lanes:
 * [['acc', 'red']], gate + up: two), then `store` writes a row in range from the reduced sums.
 * With `norm`, the row's 1/rms first (NORM_PROLOGUE, which reduces in `red`).
 */
function matvecMain(lanes: 1 | 32, norm: boolean, sums: [acc: string, red: string][], body: string, store: (values: string[]) => string): string {
  const finish = lanes === 1 ? `if (n < mm.N) { ${store(sums.map(([a]) => a))} }` : `${sums.map(([a, r]) => `${r}[li] = ${a};`).join('\n  ')}
  workgroupBarrier();
  for (var s = 16u; s > 0u; s >>= 1u) {
    if (lane < s) { ${sums.map(([, r]) => `${r}[li] += ${r}[li + s];`).join(' ')} }
    workgroupBarrier();
  }
  if (lane == 0u && n < mm.N) { ${store(sums.map(([, r]) => `${r}[li]`))} }`;
  return `${FLAT_INDEX}
${sums.map(([, r]) => `var<workgroup> ${r}: array<f32, 256>;`).join('\n')}
${lanesPrelude(lanes)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let n = flatIndex(wid, nwg, li / LANES, ${matvecRows(lanes)}u);
  let lane = li % LANES;
  ${norm ? NORM_PROLOGUE : ''}
  ${sums.map(([a]) => `var ${a} = 0.0;`).join('\n  ')}
  if (run.T > 0u && n < mm.N) { // (run is read so every kernel shares one binding layout)
    ${body}
  }
  ${finish}
}
`;
}

/** The three outputs of a fused q/k/v matvec and where row n of W goes (store(n, v)). */
const QKV_OUTPUTS = `struct Qkv { qRows: u32, kStart: u32, vStart: u32, kvRows: u32 }
@group(0) @binding(9) var<uniform> qkv: Qkv;
@group(0) @binding(10) var<storage, read_write> yk: array<OUT>;
@group(0) @binding(11) var<storage, read_write> yv: array<OUT>;
fn store(n: u32, v: OUT) {
  if (n < qkv.qRows) { y[n] = v; }
  else if (n >= qkv.vStart) { if (n - qkv.vStart < qkv.kvRows) { yv[n - qkv.vStart] = v; } }
  else if (n >= qkv.kStart && n - qkv.kStart < qkv.kvRows) { yk[n - qkv.kStart] = v; }
}`;

/** The value written to y[i]: the accumulator, plus the residual's element when folded in. */
function output(o: MatmulOptions, acc: string, i: string): string {
  return o.residual ? `OUT(${acc} + f32(res[${i}]))` : `OUT(${acc})`;
}

/** Tiled kernel for M > 1: 32x64 output tile per workgroup of 16x16 threads, 2x4 outputs each. */
export function matmulTiledWgsl(o: MatmulOptions): string {
  const loadQ8 = `{
      let r = li / 4u;
      let wq = li % 4u;
      let n = n0 + r;
      if (n < mm.N) {
        let base = (n * mm.groups + g) * 8u + wq * 2u;
        let s = q4scale(n * mm.groups + g);
        let a = q8unpack(qw[base]) * s;
        let b = q8unpack(qw[base + 1u]) * s;
        for (var i = 0u; i < 4u; i++) { ws[r][wq * 8u + i] = a[i]; ws[r][wq * 8u + 4u + i] = b[i]; }
      } else {
        for (var i = 0u; i < 8u; i++) { ws[r][wq * 8u + i] = 0.0; }
      }
    }`;
  const loadW = o.weights === 'q8' ? loadQ8 : o.weights === 'q4'
    ? `{
      let r = li / 4u;
      let wq = li % 4u;
      let n = n0 + r;
      if (n < mm.N) {
        let word = qw[(n * mm.groups + g) * 4u + wq];
        let s = q4scale(n * mm.groups + g);
        for (var i = 0u; i < 8u; i++) {
          ws[r][wq * 8u + i] = (f32((word >> (4u * i)) & 15u) - 8.0) * s;
        }
      } else {
        for (var i = 0u; i < 8u; i++) { ws[r][wq * 8u + i] = 0.0; }
      }
    }`
    : `{
      let r = li / 4u;
      let c0 = (li % 4u) * 8u;
      let n = n0 + r;
      for (var i = 0u; i < 8u; i++) {
        let k = k0 + c0 + i;
        var v = 0.0;
        if (n < mm.N && k < mm.K) { v = w[n * mm.K + k]; }
        ws[r][c0 + i] = v;
      }
    }`;
  return `${bindings(o)}
var<workgroup> xs: array<array<f32, 33>, 32>; // [m][k]
var<workgroup> ws: array<array<f32, 33>, 64>; // [n][k]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let M = select(run.T, 1u, mm.single == 1u);
  let n0 = wid.x * 64u;
  let m0 = wid.y * 32u;
  var acc: array<f32, 8>;
  for (var g = 0u; g < mm.groups; g++) {
    let k0 = g * 32u;
    for (var i = 0u; i < 4u; i++) {
      let e = li + i * 256u;
      let r = e / 32u;
      let c = e % 32u;
      let m = m0 + r;
      let k = k0 + c;
      var v = 0.0;
      if (m < M && k < mm.K) { v = f32(x[m * mm.K + k]); }
      xs[r][c] = v;
    }
    ${loadW}
    workgroupBarrier();
    for (var kk = 0u; kk < 32u; kk++) {
      let a0 = xs[lid.y * 2u][kk];
      let a1 = xs[lid.y * 2u + 1u][kk];
      for (var j = 0u; j < 4u; j++) {
        let b = ws[lid.x + 16u * j][kk];
        acc[j] += a0 * b;
        acc[4u + j] += a1 * b;
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 2u; r++) {
    let m = m0 + lid.y * 2u + r;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + 16u * j;
      if (m < M && n < mm.N) { y[m * mm.ldy + mm.yOff + n] = ${output(o, 'acc[r * 4u + j]', 'm * mm.ldy + mm.yOff + n')}; }
    }
  }
}
`;
}

/** The per-row loop of the matvec kernels: lanes accumulate row n of W (qw, q4scale, w) dotted with x into `acc`. */
function matvecBody(weights: MatmulOptions['weights']): string {
  // Full groups take a branch-free path (nibbles unpacked four at a time into vec4 dot products);
  // only the last, zero-padded group of a K that is not a multiple of 32 checks bounds.
  const q8 = `for (var g = lane; g < mm.groups; g += LANES) {
      let s = q4scale(n * mm.groups + g);
      let base = (n * mm.groups + g) * 8u;
      let k0 = g * 32u;
      var part = 0.0;
      if (k0 + 32u <= mm.K) {
        for (var wq = 0u; wq < 8u; wq++) {
          let kb = k0 + wq * 4u;
          part += dot(q8unpack(qw[base + wq]), vec4f(f32(x[kb]), f32(x[kb + 1u]), f32(x[kb + 2u]), f32(x[kb + 3u])));
        }
      } else {
        for (var wq = 0u; wq < 8u; wq++) {
          let v = q8unpack(qw[base + wq]);
          for (var i = 0u; i < 4u; i++) {
            let k = k0 + wq * 4u + i;
            if (k < mm.K) { part += v[i] * f32(x[k]); }
          }
        }
      }
      acc += part * s;
    }`;
  return weights === 'q8' ? q8 : weights === 'q4'
    ? `for (var g = lane; g < mm.groups; g += LANES) {
      let s = q4scale(n * mm.groups + g);
      let base = (n * mm.groups + g) * 4u;
      let k0 = g * 32u;
      var part = 0.0;
      if (k0 + 32u <= mm.K) {
        for (var wq = 0u; wq < 4u; wq++) {
          let word = qw[base + wq];
          let kb = k0 + wq * 8u;
          let lo = vec4f(vec4u(word, word >> 4u, word >> 8u, word >> 12u) & vec4u(15u)) - 8.0;
          let hi = vec4f(vec4u(word >> 16u, word >> 20u, word >> 24u, word >> 28u) & vec4u(15u)) - 8.0;
          part += dot(lo, vec4f(f32(x[kb]), f32(x[kb + 1u]), f32(x[kb + 2u]), f32(x[kb + 3u])))
                + dot(hi, vec4f(f32(x[kb + 4u]), f32(x[kb + 5u]), f32(x[kb + 6u]), f32(x[kb + 7u])));
        }
      } else {
        for (var wq = 0u; wq < 4u; wq++) {
          let word = qw[base + wq];
          for (var i = 0u; i < 8u; i++) {
            let k = k0 + wq * 8u + i;
            if (k < mm.K) { part += (f32((word >> (4u * i)) & 15u) - 8.0) * f32(x[k]); }
          }
        }
      }
      acc += part * s;
    }`
    : `for (var k = lane; k < mm.K; k += LANES) {
      acc += w[n * mm.K + k] * f32(x[k]);
    }`;
}

/**
 * Matrix-vector kernel for M == 1 (decode): 256 / lanes rows per workgroup (8 rows of 32 lanes for
 * long rows); lanes read consecutive 16-byte groups so a row's weights stream through in coalesced
 * 512-byte pieces.
 */
export function matvecWgsl(o: MatmulOptions): string {
  const body = o.norm ? normed(matvecBody(o.weights)) : matvecBody(o.weights);
  if (o.qkv && o.residual) throw new Error('matvecWgsl: qkv has no residual');
  const store = ([acc]: string[]) => (o.qkv ? `store(n, OUT(${acc}));` : `y[mm.yOff + n] = ${output(o, acc, 'mm.yOff + n')};`);
  return `${bindings(o)}
${o.norm ? normBindings(7, 8) : ''}
${o.qkv ? QKV_OUTPUTS : ''}
${matvecMain(o.lanes ?? 32, o.norm ?? false, [['acc', 'red']], body, store)}`;
}

/**
 * gate and up as one matvec with SwiGLU after it, for decode (M == 1) without LoRA on them:
 * act (N) = silu(x Wg^T) * (x Wu^T), both rows of a workgroup read in the same pass over x.
 * One dispatch instead of three (gate, up, swiglu). MM uniform as matvecWgsl's, for either matrix.
 * Bindings: 0 run, 1 mm, 2 x, 3 gate w | qweight, 4 gate scales, 5 act, 6 up w | qweight, 7 up scales,
 * with `norm` (x RMSNorm'd on the fly, as matvecWgsl's) 8 the norm weight, 9 the Norm uniform.
 */
export function matvecSwigluWgsl(o: Omit<MatmulOptions, 'out' | 'residual'>): string {
  const body = (b: string) => (o.norm ? normed(b) : b);
  const up = o.weights === 'f32'
    ? `@group(0) @binding(6) var<storage, read> uw: array<f32>;`
    : `@group(0) @binding(6) var<storage, read> uqw: array<u32>;
@group(0) @binding(7) var<storage, read> usc: array<u32>;
${Q4_SCALE.replace('fn q4scale', 'fn q4scaleU').replace('sc[', 'usc[')}`;
  const gateBody = body(matvecBody(o.weights));
  const upBody = gateBody.replaceAll('qw[', 'uqw[').replaceAll('q4scale(', 'q4scaleU(').replaceAll('w[n', 'uw[n').replaceAll('acc +=', 'accU +=');
  const swiglu = ([g, u]: string[]) => `act[n] = T(${g} / (1.0 + exp(-${g})) * ${u});`;
  return `${inputBindings(o)}
@group(0) @binding(5) var<storage, read_write> act: array<T>;
${up}
${o.norm ? normBindings(8, 9) : ''}
${matvecMain(o.lanes ?? 32, o.norm ?? false, [['acc', 'red'], ['accU', 'redU']], `${gateBody}\n    ${upBody}`, swiglu)}`;
}
