import type { Checkpoint } from '../checkpoint.ts';
import { throwIfAborted } from '../errors.ts';
import { Q4_GROUP } from '../quant/q4.ts';
import type { GpuAllocator } from './allocator.ts';
import type { PipelineCache } from './pipelines.ts';
import { grid1D } from './pipelines.ts';
import { quantizeQ4Wgsl } from './wgsl/quantize.ts';

/** A weight matrix (N, K) on the GPU: plain f32, or the Q4 format of models/quant/q4.ts. */
export type GpuMatrix =
  | { kind: 'f32'; N: number; K: number; w: GPUBuffer }
  | { kind: 'q4'; N: number; K: number; G: number; qw: GPUBuffer; sc: GPUBuffer };

/** Bytes of f32 rows streamed per chunk: bounded so no tensor is ever held whole in JS. */
const CHUNK_BYTES = 32 * 2 ** 20;

/**
 * Streams tensors from a checkpoint to the GPU, quantizing on the GPU as the rows arrive.
 * Each chunk is read (range request / file read), converted to f32 on the CPU, written to a
 * staging buffer, and quantized by a kernel into the destination; no tensor is held whole in JS.
 */
export class WeightUploader {
  private staging: GPUBuffer | null = null;
  private readonly params: GPUBuffer;
  private pending = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly alloc: GpuAllocator,
    private readonly pipelines: PipelineCache,
    private readonly ckpt: Checkpoint,
    private readonly onBytes: (tensor: string, bytes: number) => void,
    private readonly signal?: AbortSignal,
  ) {
    this.params = alloc.create('quantize params', 16, 'staging', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  }

  private rowsPerChunk(K: number): number {
    const rows = Math.max(2, Math.floor(CHUNK_BYTES / (K * 4)));
    return rows - (rows % 2); // even, so every chunk starts on a whole u32 of scales
  }

  /** Reads a 1-D tensor (norm weights) into an f32 buffer. */
  async vector(name: string): Promise<GPUBuffer> {
    throwIfAborted(this.signal);
    const data = await this.ckpt.readTensor(name, this.signal);
    const buf = this.alloc.create(name, data.byteLength, 'weights');
    this.device.queue.writeBuffer(buf, 0, data as Float32Array<ArrayBuffer>);
    this.onBytes(name, this.ckpt.tensors.get(name)!.end - this.ckpt.tensors.get(name)!.begin);
    return buf;
  }

  async matrix(name: string, N: number, K: number, format: 'f32' | 'q4'): Promise<GpuMatrix> {
    const t = this.ckpt.tensors.get(name)!;
    const storedBytesPerRow = (t.end - t.begin) / N;
    const R = this.rowsPerChunk(K);
    if (format === 'f32') {
      const w = await this.alloc.guarded(name, () => this.alloc.create(name, N * K * 4, 'weights'));
      for (let r0 = 0; r0 < N; r0 += R) {
        const rows = Math.min(R, N - r0);
        throwIfAborted(this.signal);
        const data = await this.ckpt.readRows(name, r0, rows, this.signal);
        this.device.queue.writeBuffer(w, r0 * K * 4, data as Float32Array<ArrayBuffer>);
        this.onBytes(name, rows * storedBytesPerRow);
        await this.backpressure(data.byteLength);
      }
      return { kind: 'f32', N, K, w };
    }
    const G = Math.ceil(K / Q4_GROUP);
    const [qw, sc] = await this.alloc.guarded(name, () => [
      this.alloc.create(name + ' q4', N * G * 16, 'weights'),
      this.alloc.create(name + ' scales', Math.ceil((N * G) / 2) * 4, 'weights'),
    ]);
    const pipeline = await this.pipelines.get('quantize_q4', quantizeQ4Wgsl());
    if (!this.staging) this.staging = this.alloc.create('quantize staging', CHUNK_BYTES + 8 * 4 * 4096, 'staging');
    const bind = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.params } },
        { binding: 1, resource: { buffer: this.staging } },
        { binding: 2, resource: { buffer: qw } },
        { binding: 3, resource: { buffer: sc } },
      ],
    });
    for (let r0 = 0; r0 < N; r0 += R) {
      const rows = Math.min(R, N - r0);
      throwIfAborted(this.signal);
      const data = await this.ckpt.readRows(name, r0, rows, this.signal);
      this.device.queue.writeBuffer(this.staging, 0, data as Float32Array<ArrayBuffer>);
      this.device.queue.writeBuffer(this.params, 0, new Uint32Array([rows, K, G, r0]));
      const enc = this.device.createCommandEncoder({ label: 'quantize ' + name });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(...grid1D(Math.ceil((rows * G) / 2), 64));
      pass.end();
      this.device.queue.submit([enc.finish()]);
      this.onBytes(name, rows * storedBytesPerRow);
      await this.backpressure(data.byteLength);
    }
    return { kind: 'q4', N, K, G, qw, sc };
  }

  /** Waits for the GPU now and then so queued uploads do not pile up in memory. */
  private async backpressure(bytes: number): Promise<void> {
    this.pending += bytes;
    if (this.pending > 256 * 2 ** 20) {
      this.pending = 0;
      await this.device.queue.onSubmittedWorkDone();
    }
  }

  async finish(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    if (this.staging) this.alloc.destroy(this.staging);
    this.alloc.destroy(this.params);
    this.staging = null;
  }
}
