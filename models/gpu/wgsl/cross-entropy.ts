/**
 * Cross-entropy forward + backward over the vocabulary, the GPU twin of
 * crossEntropyForwardBackward (models/cpu/ops-backward.ts) with equal weights. Logits are f32
 * (the lm_head matmul's `out: 'f32'`), whatever the activation type.
 *
 * The logits of all rows at once are large (1024 x 128256 x 4 B = 525 MB), so the kernel works
 * on a chunk of rows [row0, row0 + rows) of the sequence: a trainer can run lm_head, this kernel
 * and the lm_head input-gradient matmul chunk by chunk through one small logits buffer. invN =
 * 1 / (number of active targets in the WHOLE sequence) keeps every chunk's gradient on the
 * sequence mean. A target >= V (IGNORE_TARGET) marks an inactive row: loss 0, gradient 0, so
 * lm_head may also run on every position without gathering the active ones.
 */

/** Target id of a row that is not in the loss. */
export const IGNORE_TARGET = 0xffffffff;

/**
 * Per row r of logits (rows, V) f32: loss[row0 + r] = logsumexp(x) - x[target], and IN PLACE
 * logits -> dlogits = (softmax(x) - onehot(target)) * invN. One workgroup of 256 per row: an
 * online max/sum-exp pass, a tree merge, then a write pass (two reads of the row in total).
 * Bindings: 0 ce (uniform CE [rows u32, V u32, row0 u32, invN f32]), 1 targets array<u32>
 * (whole sequence; row r reads targets[row0 + r]), 2 logits array<f32> read_write (rows, V),
 * 3 loss array<f32> read_write (whole sequence). Grid: [rows, 1, 1].
 */
export function crossEntropyWgsl(): string {
  return /* wgsl */ `
struct CE { rows: u32, V: u32, row0: u32, invN: f32 }
@group(0) @binding(0) var<uniform> ce: CE;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
var<workgroup> redM: array<f32, 256>;
var<workgroup> redS: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let r = wid.x;
  if (r >= ce.rows) { return; } // uniform per workgroup
  let o = r * ce.V;
  let y = targets[ce.row0 + r];
  if (y >= ce.V) { // ignored row: no loss, no gradient
    for (var i = li; i < ce.V; i += 256u) { logits[o + i] = 0.0; }
    if (li == 0u) { loss[ce.row0 + r] = 0.0; }
    return;
  }
  // Online softmax statistics per thread: running max m and sum of exp(x - m).
  var m = -3.0e38;
  var s = 0.0;
  for (var i = li; i < ce.V; i += 256u) {
    let x = logits[o + i];
    if (x > m) { s = s * exp(m - x) + 1.0; m = x; } else { s += exp(x - m); }
  }
  redM[li] = m;
  redS[li] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (li < k) {
      let m1 = redM[li];
      let m2 = redM[li + k];
      let mx = max(m1, m2);
      redS[li] = redS[li] * exp(m1 - mx) + redS[li + k] * exp(m2 - mx);
      redM[li] = mx;
    }
    workgroupBarrier();
  }
  let lse = redM[0] + log(redS[0]);
  // Every thread has read the target logit before anyone overwrites it (barriers above).
  let xy = logits[o + y];
  workgroupBarrier();
  for (var i = li; i < ce.V; i += 256u) {
    let p = exp(logits[o + i] - lse);
    logits[o + i] = (p - select(0.0, 1.0, i == y)) * ce.invN;
  }
  if (li == 0u) { loss[ce.row0 + r] = lse - xy; }
}
`;
}

/**
 * out[slot] = invN * sum(loss[0..n)): the mean loss, on the GPU so a step needs no readback (the
 * trainer copies `out` to a mappable buffer when it wants the numbers; slot = step index keeps a
 * history). One workgroup of 256.
 * Bindings: 0 lm (uniform LossMean [n u32, slot u32, invN f32, 0]), 1 loss array<f32> (n),
 * 2 out array<f32> read_write. Grid: [1, 1, 1].
 */
export function lossMeanWgsl(): string {
  return /* wgsl */ `
struct LossMean { n: u32, slot: u32, invN: f32, pad: u32 }
@group(0) @binding(0) var<uniform> lm: LossMean;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < lm.n; i += 256u) { s += loss[i]; }
  red[li] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  if (li == 0u) { out[lm.slot] = red[0] * lm.invN; }
}
`;
}
