import { readBackToSink, writeToParts, type BufferPart } from '../cache/gpu-io.ts';
import { bytesOf, writeThrough, type EngineTensor, type TensorSource } from '../cache/tensor-source.ts';
import { throwIfAborted } from '../errors.ts';
import { Q4_GROUP } from '../quant/q4.ts';
import type { GpuAllocator } from './allocator.ts';
import { q4BufferBytes, QUANTIZE_PARAMS_BYTES, QUANTIZE_STAGING_BYTES, UPLOAD_CHUNK_BYTES } from './buffer-sizes.ts';
import type { PipelineCache } from './pipelines.ts';
import { grid1D } from './pipelines.ts';
import { quantizeQ4Wgsl } from './wgsl/quantize.ts';

/** A weight matrix (N, K) on the GPU: plain f32, or the Q4 format of models/quant/q4.ts. */
export type GpuMatrix =
  | { kind: 'f32'; N: number; K: number; w: GPUBuffer }
  | { kind: 'q4'; N: number; K: number; G: number; qw: GPUBuffer; sc: GPUBuffer };

/** Bytes of f32 rows streamed per chunk: bounded so no tensor is ever held whole in JS. */
const CHUNK_BYTES = UPLOAD_CHUNK_BYTES;

/**
 * Streams tensors from a checkpoint to the GPU, quantizing on the GPU as the rows arrive.
 * Each chunk is read (range request / file read), converted to f32 on the CPU, written to a
 * staging buffer, and quantized by a kernel into the destination; no tensor is held whole in JS.
 * A tensor the source has ready-made (weight cache) is written to its buffers as is, with no
 * kernel; a tensor produced here is copied to the source's sink (write-through cache) if it has one.
 */
export class WeightUploader {
  private staging: GPUBuffer | null = null;
  private readonly params: GPUBuffer;
  private pending = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly alloc: GpuAllocator,
    private readonly pipelines: PipelineCache,
    private readonly src: TensorSource,
    private readonly onBytes: (tensor: string, bytes: number) => void,
    private readonly signal?: AbortSignal,
  ) {
    this.params = alloc.create('quantize params', QUANTIZE_PARAMS_BYTES, 'staging', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  }

  private rowsPerChunk(K: number): number {
    const rows = Math.max(2, Math.floor(CHUNK_BYTES / (K * 4)));
    return rows - (rows % 2); // even, so every chunk starts on a whole u32 of scales
  }

  /** Reads a 1-D tensor (norm weights) into an f32 buffer. */
  async vector(name: string): Promise<GPUBuffer> {
    throwIfAborted(this.signal);
    const ready = this.src.ready?.(name);
    if (ready) {
      const buf = this.alloc.create(name, ready.bytes, 'weights');
      await this.fromCache(ready, [[buf, ready.bytes]]);
      return buf;
    }
    const data = await this.src.readTensor(name, this.signal);
    const buf = this.alloc.create(name, data.byteLength, 'weights');
    this.device.queue.writeBuffer(buf, 0, data as Float32Array<ArrayBuffer>);
    await writeThrough(this.src.sink, name, 'f32', [data.length], [bytesOf(data)], this.signal);
    this.onBytes(name, this.src.storedBytes(name));
    return buf;
  }

  async matrix(name: string, N: number, K: number, format: 'f32' | 'q4'): Promise<GpuMatrix> {
    const ready = this.src.ready?.(name) ?? null;
    const R = this.rowsPerChunk(K);
    if (format === 'f32') {
      const w = await this.alloc.guarded(name, () => this.alloc.create(name, N * K * 4, 'weights'));
      if (ready) {
        await this.fromCache(ready, [[w, N * K * 4]]);
        return { kind: 'f32', N, K, w };
      }
      const storedBytesPerRow = this.src.storedBytes(name) / N;
      const writer = await this.src.sink?.begin(name, 'f32', [N, K]);
      try {
        for (let r0 = 0; r0 < N; r0 += R) {
          const rows = Math.min(R, N - r0);
          throwIfAborted(this.signal);
          const data = await this.src.readRows(name, r0, rows, this.signal);
          this.device.queue.writeBuffer(w, r0 * K * 4, data as Float32Array<ArrayBuffer>);
          await writer?.write(bytesOf(data));
          this.onBytes(name, rows * storedBytesPerRow);
          await this.backpressure(data.byteLength);
        }
        await writer?.commit();
      } catch (e) {
        await writer?.abort();
        throw e;
      }
      return { kind: 'f32', N, K, w };
    }
    const G = Math.ceil(K / Q4_GROUP);
    const [qw, sc] = await this.alloc.guarded(name, () => [
      this.alloc.create(name + ' q4', q4BufferBytes(N, K).qweight, 'weights'),
      this.alloc.create(name + ' scales', q4BufferBytes(N, K).scales, 'weights'),
    ]);
    const parts: BufferPart[] = [[qw, q4BufferBytes(N, K).qweight], [sc, q4BufferBytes(N, K).scales]];
    if (ready) {
      await this.fromCache(ready, parts);
      return { kind: 'q4', N, K, G, qw, sc };
    }
    const storedBytesPerRow = this.src.storedBytes(name) / N;
    const pipeline = await this.pipelines.get('quantize_q4', quantizeQ4Wgsl());
    if (!this.staging) this.staging = this.alloc.create('quantize staging', QUANTIZE_STAGING_BYTES, 'staging');
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
      const data = await this.src.readRows(name, r0, rows, this.signal);
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
    if (this.src.sink) await readBackToSink(this.device, this.alloc, this.src.sink, name, 'q4', [N, K], parts, this.signal);
    return { kind: 'q4', N, K, G, qw, sc };
  }

  /** Writes a cached tensor's bytes into its buffers (no kernel); its checksum is checked as it streams. */
  private async fromCache(t: EngineTensor, parts: BufferPart[]): Promise<void> {
    await t.read(async (bytes, offset) => {
      writeToParts(this.device.queue, parts, offset, bytes);
      this.onBytes(t.name, bytes.byteLength);
      await this.backpressure(bytes.byteLength);
    }, this.signal);
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
