import { FLAT_INDEX } from './common.ts';

/**
 * Adam(W) on the GPU over flat f32 buffers (params p, grads g, moments m and v of equal length),
 * the twin of models/optim/adam.ts: bias-corrected moments, decoupled weight decay
 * (p *= 1 - lr wd), global grad-norm clipping as torch.nn.utils.clip_grad_norm_
 * (scale = maxNorm / (norm + 1e-6) when norm > maxNorm). One step, with no CPU readback:
 *   1. gradNormPartialWgsl per gradient buffer: sum of squares into partials[slot ..]
 *   2. gradNormFinalWgsl (one workgroup): stats = [sum sq, norm, clipScale, 0]
 *   3. adamUpdateWgsl per (p, g, m, v) set: reads clipScale from stats
 * All LoRA A/B tensors can live in ONE flat buffer set (one dispatch each), or in several sets
 * that share the partials and stats buffers.
 */

/** Bytes of the hyper-parameter uniform written by packAdamParams. */
export const ADAM_PARAMS_BYTES = 48;

/** Workgroups of gradNormPartialWgsl for a gradient buffer of n floats (its partials slots). */
export function gradNormGroups(n: number): number {
  // Enough threads to fill a large GPU; each loops over the rest of its buffer.
  return Math.max(1, Math.min(1024, Math.ceil(n / 256)));
}

export interface AdamGpuStep {
  lr: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  weightDecay?: number; // default 0
  /** Clip the global gradient norm to this; undefined = no clipping. */
  maxGradNorm?: number;
  /** 1-based step count of this update (1 on the first step). */
  step: number;
  /** Total partial sums written by step 1 (sum of gradNormGroups over the gradient buffers). */
  partials: number;
}

/**
 * The AdamParams uniform (48 bytes). 1 - beta and the bias corrections 1 - beta^step are computed
 * here in f64: in f32, 1 - 0.999 is off by 1.3e-5 relative (beta2 itself rounds), which would
 * eat the whole 1e-5 budget against the CPU optimizer.
 * @example device.queue.writeBuffer(hp, 0, packAdamParams({ lr: 1e-4, step: 1, partials }));
 */
export function packAdamParams(s: AdamGpuStep): ArrayBuffer {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, maxGradNorm, step, partials } = s;
  if (!(step >= 1) || !Number.isInteger(step)) throw new RangeError(`packAdamParams: step must be an integer >= 1, got ${step}.`);
  const buf = new ArrayBuffer(ADAM_PARAMS_BYTES);
  const f = new Float32Array(buf), u = new Uint32Array(buf);
  f[0] = lr; f[1] = beta1; f[2] = beta2; f[3] = eps;
  f[4] = 1 - lr * weightDecay; // decay factor, in f64 like the CPU
  f[5] = maxGradNorm ?? -1; // <= 0: no clipping
  f[6] = 1 - Math.pow(beta1, step);
  f[7] = 1 - Math.pow(beta2, step);
  u[8] = partials; u[9] = step;
  f[10] = 1 - beta1; // in f64 too: f32(0.999) makes 1 - beta2 off by 1.3e-5 relative
  f[11] = 1 - beta2;
  return buf;
}

const ADAM_STRUCT = /* wgsl */ `
struct AdamParams {
  lr: f32, beta1: f32, beta2: f32, eps: f32,
  decay: f32,    // 1 - lr * weightDecay
  maxNorm: f32,  // <= 0: no clipping
  bc1: f32,      // 1 - beta1^step
  bc2: f32,      // 1 - beta2^step
  partials: u32, // partial sums to add in gradNormFinal
  step: u32,
  omb1: f32,     // 1 - beta1
  omb2: f32,     // 1 - beta2
}`;

/** Per-buffer uniform: n floats; slot = first partials index of this buffer (norm kernel only). */
const SIZE_STRUCT = /* wgsl */ `
struct Size { n: u32, slot: u32, p0: u32, p1: u32 }`;

/**
 * partials[slot + w] = sum of g[i]^2 over workgroup w's grid-stride share of g (n floats).
 * Bindings: 0 sz (Size [n, slot, 0, 0]), 1 g array<f32>, 2 partials array<f32> read_write.
 * Grid: [gradNormGroups(n), 1, 1].
 */
export function gradNormPartialWgsl(): string {
  return `${SIZE_STRUCT}
@group(0) @binding(0) var<uniform> sz: Size;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  let stride = nwg.x * 256u;
  for (var i = wid.x * 256u + li; i < sz.n; i += stride) { let v = g[i]; s += v * v; }
  red[li] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  if (li == 0u) { partials[sz.slot + wid.x] = red[0]; }
}
`;
}

/**
 * stats = [sum sq, norm, clipScale, 0] from partials[0 .. hp.partials). One workgroup.
 * Bindings: 0 hp (AdamParams), 1 partials array<f32>, 2 stats array<f32> read_write (4 floats).
 * Grid: [1, 1, 1].
 */
export function gradNormFinalWgsl(): string {
  return `${ADAM_STRUCT}
@group(0) @binding(0) var<uniform> hp: AdamParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < hp.partials; i += 256u) { s += partials[i]; }
  red[li] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    let norm = sqrt(red[0]);
    var clip = 1.0;
    if (hp.maxNorm > 0.0 && norm > hp.maxNorm) { clip = hp.maxNorm / (norm + 1e-6); }
    stats[0] = red[0];
    stats[1] = norm;
    stats[2] = clip;
    stats[3] = 0.0;
  }
}
`;
}

/**
 * One Adam(W) update of n params: g' = g * clipScale; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
 * p = p * decay - lr (m / bc1) / (sqrt(v / bc2) + eps). g is left as is (clear it before the
 * next backward if that accumulates).
 * Bindings: 0 hp (AdamParams), 1 sz (Size [n, ..]), 2 stats array<f32> (from gradNormFinal),
 * 3 p array<f32> read_write, 4 g array<f32>, 5 m array<f32> read_write, 6 v array<f32> read_write.
 * Grid: grid1D(n, 256).
 */
export function adamUpdateWgsl(): string {
  return `${ADAM_STRUCT}${SIZE_STRUCT}${FLAT_INDEX}
@group(0) @binding(0) var<uniform> hp: AdamParams;
@group(0) @binding(1) var<uniform> sz: Size;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> m: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flatIndex(wid, nwg, li, 256u);
  if (i >= sz.n) { return; }
  let gi = g[i] * stats[2];
  let mi = hp.beta1 * m[i] + hp.omb1 * gi;
  let vi = hp.beta2 * v[i] + hp.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] * hp.decay - hp.lr * (mi / hp.bc1) / (sqrt(vi / hp.bc2) + hp.eps);
}
`;
}
