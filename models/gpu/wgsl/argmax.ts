/**
 * Greedy decoding on the GPU: the index of the largest of n f32 logits, so a decode step reads
 * back 4 bytes instead of the whole (V) vector. Ties go to the lowest index, as models/sampling.ts
 * argmax (the first maximum), so the GPU and CPU pick the same token from the same logits.
 * One workgroup of ARGMAX_THREADS: each thread scans a strided share, then a tree reduction. 64,
 * not 256: the zero-initialised workgroup arrays cost compile time (~200 ms less on SwiftShader)
 * and one pass over V floats is microseconds either way.
 * Bindings: 0 sz (uniform [n, 0, 0, 0]), 1 logits array<f32>, 2 out array<u32> read_write
 * (out[0] = index, out[1] = the maximum's bits). Grid: [1, 1, 1].
 * @example pipelines.get('argmax', argmaxWgsl());
 */
export const ARGMAX_THREADS = 64;

export function argmaxWgsl(): string {
  const N = ARGMAX_THREADS;
  return /* wgsl */ `
struct Size { n: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> sz: Size;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
var<workgroup> bestV: array<f32, ${N}>;
var<workgroup> bestI: array<u32, ${N}>;

// a beats b: larger, or equal and earlier (an empty slot has index 0xffffffff and never wins a tie).
fn beats(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}

@compute @workgroup_size(${N})
fn main(@builtin(local_invocation_index) li: u32) {
  var v = 0.0; // unused until idx is set
  var idx = 0xffffffffu;
  for (var i = li; i < sz.n; i += ${N}u) {
    let x = logits[i];
    if (idx == 0xffffffffu || beats(x, i, v, idx)) { v = x; idx = i; }
  }
  bestV[li] = v;
  bestI[li] = idx;
  workgroupBarrier();
  for (var k = ${N / 2}u; k > 0u; k >>= 1u) {
    if (li < k && bestI[li + k] != 0xffffffffu && (bestI[li] == 0xffffffffu || beats(bestV[li + k], bestI[li + k], bestV[li], bestI[li]))) {
      bestV[li] = bestV[li + k];
      bestI[li] = bestI[li + k];
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    out[0] = select(bestI[0], 0u, bestI[0] == 0xffffffffu); // n = 0: index 0, as on the CPU
    out[1] = bitcast<u32>(bestV[0]);
  }
}
`;
}
