import type { GpuContext } from '../../models/gpu/device.ts';
import { PipelineCache } from '../../models/gpu/pipelines.ts';

/** Runs one WGSL kernel on the given buffers (binding i = buffers[i]) and waits for it. */
export class KernelHarness {
  private readonly pipelines: PipelineCache;
  constructor(readonly ctx: GpuContext) {
    this.pipelines = new PipelineCache(ctx.device);
  }

  storage(data: Float32Array | Uint32Array | Uint16Array): GPUBuffer {
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    const b = this.ctx.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const padded = new Uint8Array(size);
    padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.ctx.device.queue.writeBuffer(b, 0, padded);
    return b;
  }

  empty(bytes: number): GPUBuffer {
    return this.storage(new Uint8Array(bytes) as unknown as Uint32Array);
  }

  /** A uniform of u32 words (f32 at `floatAt`), 16 bytes per 4 words. */
  uniform(words: number[], floatAt: number[] = []): GPUBuffer {
    const data = new ArrayBuffer(Math.max(1, Math.ceil(words.length / 4)) * 16);
    const u = new Uint32Array(data), f = new Float32Array(data);
    words.forEach((w, i) => { if (floatAt.includes(i)) f[i] = w; else u[i] = w; });
    const b = this.ctx.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.ctx.device.queue.writeBuffer(b, 0, data);
    return b;
  }

  async run(code: string, buffers: (GPUBuffer | null)[], grid: [number, number, number]): Promise<void> {
    const p = await this.pipelines.get('test kernel', code);
    const entries: GPUBindGroupEntry[] = [];
    buffers.forEach((b, i) => { if (b) entries.push({ binding: i, resource: { buffer: b } }); });
    const enc = this.ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(p);
    pass.setBindGroup(0, this.ctx.device.createBindGroup({ layout: p.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(...grid);
    pass.end();
    this.ctx.device.queue.submit([enc.finish()]);
    await this.ctx.device.queue.onSubmittedWorkDone();
  }

  async read(buf: GPUBuffer, bytes = buf.size): Promise<ArrayBuffer> {
    const rb = this.ctx.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.ctx.device.createCommandEncoder();
    enc.copyBufferToBuffer(buf, 0, rb, 0, bytes);
    this.ctx.device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const out = rb.getMappedRange().slice(0);
    rb.destroy();
    return out;
  }

  async readF32(buf: GPUBuffer, n: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buf, n * 4));
  }
}
