import { FLAT_INDEX } from './common.ts';

/** The uniform (rows, K, groups, first row) and bindings both quantizers share. */
const QUANT_BINDINGS = `struct Q { R: u32, K: u32, G: u32, rowStart: u32 }
@group(0) @binding(0) var<uniform> qp: Q;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> qw: array<u32>;
@group(0) @binding(3) var<storage, read_write> sc: array<u32>;
`;

/**
 * The entry point both quantizers share: one invocation per pair of groups (the two f16 scales of
 * one u32), each group quantized by the kernel's own `quantGroup(flat group index) -> scale`.
 */
const PAIR_MAIN = `@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let pair = flatIndex(wid, nwg, li, 64u);
  let n = qp.R * qp.G;
  let f0 = pair * 2u;
  if (f0 >= n) { return; }
  let d0 = quantGroup(f0);
  var d1 = 0.0;
  if (f0 + 1u < n) { d1 = quantGroup(f0 + 1u); }
  sc[(qp.rowStart * qp.G) / 2u + pair] = pack2x16float(vec2f(d0, d1));
}
`;

/**
 * Quantizes f32 rows (R, K) of a matrix to the Q4 format of models/quant/q4.ts, writing rows
 * rowStart..rowStart+R of the destination. One thread per pair of groups (flat index over
 * (row, group)), so each thread owns a whole u32 of scales. rowStart * G must be even.
 */
export function quantizeQ4Wgsl(): string {
  return `${FLAT_INDEX}
${QUANT_BINDINGS}
fn quantGroup(flat: u32) -> f32 {
  let r = flat / qp.G;
  let g = flat % qp.G;
  let k0 = g * 32u;
  var amax = 0.0;
  var m = 0.0;
  for (var i = 0u; i < 32u; i++) {
    if (k0 + i < qp.K) {
      let v = src[r * qp.K + k0 + i];
      if (abs(v) > amax) { amax = abs(v); m = v; }
    }
  }
  let d = m / -8.0;
  let id = select(0.0, 1.0 / d, d != 0.0);
  let base = ((qp.rowStart + r) * qp.G + g) * 4u;
  for (var wq = 0u; wq < 4u; wq++) {
    var word = 0u;
    for (var i = 0u; i < 8u; i++) {
      let k = k0 + wq * 8u + i;
      var v = 0.0;
      if (k < qp.K) { v = src[r * qp.K + k]; }
      let q = min(15u, u32(floor(v * id + 8.5)));
      word |= q << (4u * i);
    }
    qw[base + wq] = word;
  }
  return d;
}

${PAIR_MAIN}`;
}

/**
 * Quantizes f32 rows (R, K) to the Q8 format of models/quant/q8.ts (the lm_head), writing rows
 * rowStart..rowStart+R of the destination; same uniform, bindings and threads (one per pair of
 * groups) as quantizeQ4Wgsl. rowStart * G must be even.
 */
export function quantizeQ8Wgsl(): string {
  return `${FLAT_INDEX}
${QUANT_BINDINGS}
fn quantGroup(flat: u32) -> f32 {
  let r = flat / qp.G;
  let g = flat % qp.G;
  let k0 = g * 32u;
  var amax = 0.0;
  for (var i = 0u; i < 32u; i++) {
    if (k0 + i < qp.K) { amax = max(amax, abs(src[r * qp.K + k0 + i])); }
  }
  let d = amax / 127.0;
  let id = select(0.0, 1.0 / d, d != 0.0);
  let base = ((qp.rowStart + r) * qp.G + g) * 8u;
  for (var wq = 0u; wq < 8u; wq++) {
    var word = 0u;
    for (var i = 0u; i < 4u; i++) {
      let k = k0 + wq * 4u + i;
      var v = 0.0;
      if (k < qp.K) { v = src[r * qp.K + k]; }
      let q = clamp(i32(floor(v * id + 0.5)), -127, 127);
      word |= (bitcast<u32>(q) & 255u) << (8u * i);
    }
    qw[base + wq] = word;
  }
  return d;
}

${PAIR_MAIN}`;
}
