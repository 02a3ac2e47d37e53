import { q4Bytes } from '../../models/quant/q4.ts';
import type { GpuContext } from '../../models/gpu/device.ts';
import { grid1D, PipelineCache } from '../../models/gpu/pipelines.ts';
import { matmulParams, matvecWgsl } from '../../models/gpu/wgsl/matmul.ts';

const COPY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + li;
  if (i < arrayLength(&src)) { dst[i] = src[i]; }
}`;

export interface BandwidthResult {
  matrix: string;
  weightBytes: number;
  matvecMs: number;
  /** Bytes of 4-bit weights (+ scales) read per second by the matvec kernel. */
  matvecGBps: number;
  /** Bytes read + written per second by a plain vec4<u32> copy of the same size. */
  copyGBps: number;
  ratio: number;
}

async function timeIt(device: GPUDevice, encode: (pass: GPUComputePassEncoder) => void, iters: number): Promise<number> {
  const once = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < iters; i++) encode(pass);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await once(); // warm-up (pipeline, caches)
  const t0 = performance.now();
  await once();
  return (performance.now() - t0) / iters;
}

/**
 * The 4-bit matvec's effective weight bandwidth vs a plain copy kernel, same adapter, same run.
 * @example
 *   const r = await matvecBandwidth(ctx, 14336, 4096); // FineMedLM-o1's gate/up projection
 */
export async function matvecBandwidth(ctx: GpuContext, N: number, K: number, iters = 10): Promise<BandwidthResult> {
  const d = ctx.device;
  // A binding the kernel rejects would skip its dispatches and time nothing: fail instead.
  d.pushErrorScope('validation');
  try {
    return await measure(ctx, N, K, iters);
  } finally {
    const err = await d.popErrorScope();
    if (err) throw new Error(`matvecBandwidth ${N}x${K}: GPU validation error: ${err.message}`);
  }
}

async function measure(ctx: GpuContext, N: number, K: number, iters: number): Promise<BandwidthResult> {
  const d = ctx.device;
  const pipes = new PipelineCache(d);
  const G = Math.ceil(K / 32);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const qw = d.createBuffer({ size: N * G * 16, usage });
  const sc = d.createBuffer({ size: Math.ceil((N * G) / 2) * 4, usage });
  // Random nibbles and unit scales: the kernel's work does not depend on the values.
  const words = new Uint32Array(Math.min(N * G * 4, 1 << 22)).map((_, i) => (Math.imul(i, 2654435761) >>> 0));
  for (let o = 0; o < N * G * 4; o += words.length) d.queue.writeBuffer(qw, o * 4, words, 0, Math.min(words.length, N * G * 4 - o));
  d.queue.writeBuffer(sc, 0, new Uint32Array(Math.ceil((N * G) / 2)).fill(0x3c003c00));
  const x = d.createBuffer({ size: K * (ctx.f16 ? 2 : 4), usage });
  const y = d.createBuffer({ size: N * 4, usage });
  const uni = (w: number[]) => { const b = d.createBuffer({ size: Math.ceil(w.length / 4) * 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }); d.queue.writeBuffer(b, 0, new Uint32Array(w)); return b; };
  const mv = await pipes.get('matvec q4', matvecWgsl({ f16: ctx.f16, weights: 'q4', out: 'f32' }));
  const mvBind = d.createBindGroup({ layout: mv.getBindGroupLayout(0), entries: [uni([1, 0, 1, 0]), uni(matmulParams(N, K)), x, qw, sc, y].map((b, i) => ({ binding: i, resource: { buffer: b } })) });
  const weightBytes = q4Bytes(N, K);
  const matvecMs = await timeIt(d, (p) => { p.setPipeline(mv); p.setBindGroup(0, mvBind); p.dispatchWorkgroups(...grid1D(N, 8)); }, iters);

  const copyBytes = Math.floor(weightBytes / 16) * 16;
  const src = d.createBuffer({ size: copyBytes, usage });
  const dst = d.createBuffer({ size: copyBytes, usage });
  const cp = await pipes.get('copy', COPY_WGSL);
  const cpBind = d.createBindGroup({ layout: cp.getBindGroupLayout(0), entries: [src, dst].map((b, i) => ({ binding: i, resource: { buffer: b } })) });
  const copyMs = await timeIt(d, (p) => { p.setPipeline(cp); p.setBindGroup(0, cpBind); p.dispatchWorkgroups(...grid1D(copyBytes / 16, 256)); }, iters);
  for (const b of [qw, sc, x, y, src, dst]) b.destroy();
  const matvecGBps = weightBytes / (matvecMs / 1000) / 1e9;
  const copyGBps = (2 * copyBytes) / (copyMs / 1000) / 1e9;
  return { matrix: `${N}x${K}`, weightBytes, matvecMs, matvecGBps, copyGBps, ratio: matvecGBps / copyGBps };
}
