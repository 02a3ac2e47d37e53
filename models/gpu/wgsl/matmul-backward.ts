import { prelude, RUN_STRUCT, type ShaderOptions } from './common.ts';
import { MM_STRUCT, weightBindings } from './matmul.ts';

/**
 * Input gradient of a frozen projection y = x W^T (the transposed matmul of the backward pass):
 *   dx (T, K) (+)= dy (T, N) @ W (N, K),  T = run.T,
 * with W as f32 or read directly from the packed Q4 or Q8 buffers (models/quant/q4.ts, q8.ts: the
 * lm_head's input gradient in training), never dequantized
 * to memory. Same bindings and MM uniform (matmulParams: N, K, groups, single = 0, and dy's column
 * offset yOff and row stride ldy for a row block of a split W) as the forward matmul in ./matmul.ts,
 * so a layer's forward params buffer and weight buffers serve both directions:
 *   0 run, 1 mm, 2 dy, 3 w | qweight, 4 scales (q4 / q8 only), 5 dx (read_write).
 * Dispatch: matmulBackwardInputGrid(T, K).
 *
 * Each workgroup (16x16 threads) owns 32 tokens x 64 input columns, 2 x 4 outputs per thread, and
 * walks N in steps of 32: per step a 32x32 tile of dy and a 32x64 tile of W (two 32-wide Q4 groups
 * of 32 rows, one u32 word = 8 nibbles decoded per thread).
 */
export interface MatmulBackwardOptions extends ShaderOptions {
  weights: 'f32' | 'q4' | 'q8';
  /** dx += (gradients of several branches sum in place) instead of dx =. */
  accumulate: boolean;
  /** Storage type of dy and dx: activations ('T', the default) or f32. */
  grad?: 'T' | 'f32';
}

/** Workgroups for dx (T, K): x over 64 input columns, y over 32 tokens. */
export function matmulBackwardInputGrid(T: number, K: number): [number, number, number] {
  return [Math.ceil(K / 64), Math.ceil(T / 32), 1];
}

export function matmulBackwardInputWgsl(o: MatmulBackwardOptions): string {
  // W tile: rows n0..n0+31, columns k0..k0+63. Out-of-range rows / groups load zeros; the padding
  // of a K that is not a multiple of 32 is zero in the Q4 data already (and never stored).
  const loadQ8 = `{
      let r = li / 8u;         // row of the tile
      let h = (li / 4u) % 2u;  // which of the two groups
      let wq = li % 4u;        // quarter of the group: 8 weights, 2 words
      let n = n0 + r;
      let g = k0 / 32u + h;
      let dst = r * 64u + h * 32u + wq * 8u;
      if (n < mm.N && g < mm.groups) {
        let base = (n * mm.groups + g) * 8u + wq * 2u;
        let s = q4scale(n * mm.groups + g);
        let a = q8unpack(qw[base]) * s;
        let b = q8unpack(qw[base + 1u]) * s;
        for (var i = 0u; i < 4u; i++) { ws[dst + i] = a[i]; ws[dst + 4u + i] = b[i]; }
      } else {
        for (var i = 0u; i < 8u; i++) { ws[dst + i] = 0.0; }
      }
    }`;
  const loadW = o.weights === 'q8' ? loadQ8 : o.weights === 'q4'
    ? `{
      let r = li / 8u;         // row of the tile
      let h = (li / 4u) % 2u;  // which of the two groups
      let wq = li % 4u;        // word within the group
      let n = n0 + r;
      let g = k0 / 32u + h;
      let dst = r * 64u + h * 32u + wq * 8u;
      if (n < mm.N && g < mm.groups) {
        // Both groups of a row are adjacent in qweight: 8 threads read 32 contiguous bytes.
        let word = qw[(n * mm.groups + g) * 4u + wq];
        let s = q4scale(n * mm.groups + g);
        for (var i = 0u; i < 8u; i++) {
          ws[dst + i] = (f32((word >> (4u * i)) & 15u) - 8.0) * s;
        }
      } else {
        for (var i = 0u; i < 8u; i++) { ws[dst + i] = 0.0; }
      }
    }`
    : `for (var i = 0u; i < 8u; i++) {
      let e = li + i * 256u;
      let r = e / 64u;
      let c = e % 64u;
      let n = n0 + r;
      let k = k0 + c;
      var v = 0.0;
      if (n < mm.N && k < mm.K) { v = w[n * mm.K + k]; }
      ws[e] = v;
    }`;
  const w = weightBindings(o.weights);
  return `${prelude(o)}${RUN_STRUCT}
${MM_STRUCT}
alias Grad = ${o.grad ?? 'T'};
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> mm: MM;
@group(0) @binding(2) var<storage, read> dy: array<Grad>;
${w}
@group(0) @binding(5) var<storage, read_write> dx: array<Grad>;
var<workgroup> dys: array<array<f32, 33>, 32>; // [t][n], padded row: column reads spread over banks
var<workgroup> ws: array<f32, 2048>;           // [n][k], 32 x 64

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let T = run.T;
  let k0 = wid.x * 64u;
  let t0 = wid.y * 32u;
  if (t0 >= T) { return; } // grid sized for the largest T
  var acc: array<f32, 8>;
  var part: array<f32, 8>;
  let steps = (mm.N + 31u) / 32u;
  for (var step = 0u; step < steps; step++) {
    let n0 = step * 32u;
    for (var i = 0u; i < 4u; i++) {
      let e = li + i * 256u;
      let r = e / 32u;
      let c = e % 32u;
      let t = t0 + r;
      let n = n0 + c;
      var v = 0.0;
      if (t < T && n < mm.N) { v = f32(dy[t * mm.ldy + mm.yOff + n]); }
      dys[r][c] = v;
    }
    ${loadW}
    workgroupBarrier();
    for (var nn = 0u; nn < 32u; nn++) {
      let a0 = dys[lid.y * 2u][nn];
      let a1 = dys[lid.y * 2u + 1u][nn];
      for (var j = 0u; j < 4u; j++) {
        let b = ws[nn * 64u + lid.x + 16u * j];
        part[j] += a0 * b;
        part[4u + j] += a1 * b;
      }
    }
    workgroupBarrier();
    // Blocked summation over N (14336 for down_proj, the vocabulary for lm_head): join the total
    // every 4 steps, 128 rows of W.
    if ((step & 3u) == 3u || step + 1u == steps) {
      for (var i = 0u; i < 8u; i++) { acc[i] += part[i]; part[i] = 0.0; }
    }
  }
  for (var r = 0u; r < 2u; r++) {
    let t = t0 + lid.y * 2u + r;
    for (var j = 0u; j < 4u; j++) {
      let k = k0 + lid.x + 16u * j;
      if (t < T && k < mm.K) {
        ${o.accumulate ? 'dx[t * mm.K + k] = Grad(f32(dx[t * mm.K + k]) + acc[r * 4u + j]);' : 'dx[t * mm.K + k] = Grad(acc[r * 4u + j]);'}
      }
    }
  }
}
`;
}
