import { readBackToSink, writeToParts, type BufferPart } from '../cache/gpu-io.ts';
import { bytesOf, writeThrough, type EngineTensor, type TensorSource } from '../cache/tensor-source.ts';
import { throwIfAborted } from '../errors.ts';
import { Q4_GROUP } from '../quant/q4.ts';
import type { GpuAllocator } from './allocator.ts';
import type { MatrixFormat } from '../weights-plan.ts';
import { blockLabel, matrixBlocks, QUANTIZE_PARAMS_BYTES, quantBufferBytes, quantizeStagingBytes, uploadRowsPerChunk, type BindingLimits, type QkvLayout } from './buffer-sizes.ts';
import type { PipelineCache } from './pipelines.ts';
import { grid1D } from './pipelines.ts';
import { quantizeQ4Wgsl, quantizeQ8Wgsl } from './wgsl/quantize.ts';

/**
 * Rows r0..r0+rows of a weight matrix in buffer ranges of their own: `w` is the f32 rows or the
 * Q4 / Q8 packed weights, `sc` their scales (null for f32). Kernels bind (w, sc) of one block at a
 * time. A range is the whole buffer, or a part of one shared by q, k and v (GpuLayer.qkv).
 */
export interface GpuMatrixBlock {
  r0: number;
  rows: number;
  w: GPUBufferBinding;
  sc: GPUBufferBinding | null;
}

/**
 * A weight matrix (N, K) on the GPU, plain f32 or in the Q4 / Q8 format of models/quant/q4.ts /
 * q8.ts (Q8: the lm_head), as row
 * blocks (matrixBlocks in ./buffer-sizes.ts): one block unless a buffer of the whole matrix would
 * break the device's maxStorageBufferBindingSize or maxBufferSize (the 128,256-row embedding and
 * lm_head of an 8B model on a 128 MiB device).
 */
export interface GpuMatrix {
  kind: MatrixFormat;
  N: number;
  K: number;
  blocks: GpuMatrixBlock[];
}

/**
 * The buffers of `m` in the order of its cached byte stream (models/cache/gpu-io.ts): the f32
 * rows block by block, or every block's nibbles then every block's scales (the whole tensor's
 * `qw` then `sc`, since each block holds an even number of rows).
 */
export function matrixParts(m: GpuMatrix): BufferPart[] {
  const part = (r: GPUBufferBinding, bytes: number): BufferPart => [r.buffer, bytes, r.offset ?? 0];
  if (m.kind === 'f32') return m.blocks.map((b) => part(b.w, m.K * 4 * b.rows));
  const kind = m.kind;
  const q = m.blocks.map((b) => quantBufferBytes(kind, b.rows, m.K));
  return [...m.blocks.map((b, i) => part(b.w, q[i].qweight)), ...m.blocks.map((b, i) => part(b.sc!, q[i].scales))];
}


/** The GPU quantizer that writes a matrix of `format` (q4 or q8) from f32 rows. */
export function quantizerKernel(format: 'q4' | 'q8'): { label: string; code: string } {
  return format === 'q8' ? { label: 'quantize_q8', code: quantizeQ8Wgsl() } : { label: 'quantize_q4', code: quantizeQ4Wgsl() };
}

/**
 * Streams tensors from a checkpoint to the GPU, quantizing on the GPU as the rows arrive.
 * Each chunk is read (range request / file read), converted to f32 on the CPU, written to a
 * staging buffer, and quantized by a kernel into the destination; no tensor is held whole in JS.
 * A tensor the source has ready-made (weight cache) is written to its buffers as is, with no
 * kernel; a tensor produced here is copied to the source's sink (write-through cache) if it has one.
 * A matrix too large for one binding is split into row blocks (GpuMatrix); its cached bytes are
 * the same as the whole matrix's, mapped onto the blocks' buffers (matrixParts).
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
    /** The device limits matrices are split for (matrixBlocks); none: every matrix whole. */
    private readonly limits?: BindingLimits,
  ) {
    this.params = alloc.create('quantize params', QUANTIZE_PARAMS_BYTES, 'staging', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  }

  /** Rows per upload chunk: bounded so no tensor is ever held whole in JS (and within the staging buffer). */
  private rowsPerChunk(K: number): number {
    return uploadRowsPerChunk(K, this.limits);
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

  /**
   * Uploads an (N, K) matrix as row blocks that fit `limits` (one block when it fits whole): from
   * the cache as is, or streamed in chunks of rows that never cross a block (quantized on the GPU
   * into the block's buffers for q4 and q8).
   */
  async matrix(name: string, N: number, K: number, format: MatrixFormat): Promise<GpuMatrix> {
    const specs = matrixBlocks(N, K, format, this.limits);
    const n = specs.length;
    const blocks = await this.alloc.guarded(name, () => specs.map(({ r0, rows }, i): GpuMatrixBlock => {
      if (format === 'f32') return { r0, rows, w: { buffer: this.alloc.create(blockLabel(name, '', i, n), rows * K * 4, 'weights') }, sc: null };
      const q = quantBufferBytes(format, rows, K);
      return { r0, rows, w: { buffer: this.alloc.create(blockLabel(name, format === 'q8' ? ' q8' : ' q4', i, n), q.qweight, 'weights') }, sc: { buffer: this.alloc.create(blockLabel(name, ' scales', i, n), q.scales, 'weights') } };
    }));
    const m: GpuMatrix = { kind: format, N, K, blocks };
    await this.fill(name, m);
    return m;
  }

  /**
   * q, k and v of a layer (`names`, (qRows | kvRows, K) each) in one pair of buffers laid out as
   * `layout` (qkvLayout): `fused` is the whole (rows, K) matrix decode reads as one matvec,
   * `parts` the three matrices over their ranges, which prefill and training read and the weight
   * cache stores as three tensors, as it would unfused.
   */
  async qkv(label: string, names: [string, string, string], K: number, format: 'f32' | 'q4', layout: QkvLayout): Promise<{ fused: GpuMatrix; parts: GpuMatrix[] }> {
    const [w, sc] = await this.alloc.guarded(label, () => [
      this.alloc.create(blockLabel(label, format === 'q4' ? ' q4' : '', 0, 1), layout.wBytes, 'weights'),
      format === 'q4' ? this.alloc.create(blockLabel(label, ' scales', 0, 1), layout.scBytes, 'weights') : null,
    ] as const);
    const range = ([offset, size]: [number, number], buffer: GPUBuffer): GPUBufferBinding => ({ buffer, offset, size });
    const parts: GpuMatrix[] = [];
    for (const [i, name] of names.entries()) {
      const N = i === 0 ? layout.qRows : layout.kvRows;
      const m: GpuMatrix = { kind: format, N, K, blocks: [{ r0: 0, rows: N, w: range(layout.w[i], w), sc: sc && layout.sc ? range(layout.sc[i], sc) : null }] };
      await this.fill(name, m);
      parts.push(m);
    }
    return { fused: { kind: format, N: layout.rows, K, blocks: [{ r0: 0, rows: layout.rows, w: { buffer: w }, sc: sc ? { buffer: sc } : null }] }, parts };
  }

  /**
   * Fills the buffers of `m` with tensor `name`: from the cache as is, or streamed in chunks of
   * rows that never cross a block (quantized on the GPU into the block's buffers for q4 and q8).
   */
  private async fill(name: string, m: GpuMatrix): Promise<void> {
    const { N, K, kind: format, blocks } = m;
    const ready = this.src.ready?.(name) ?? null;
    const R = this.rowsPerChunk(K);
    const parts = matrixParts(m);
    if (ready) {
      await this.fromCache(ready, parts);
      return;
    }
    const storedBytesPerRow = this.src.storedBytes(name) / N;
    if (format === 'f32') {
      const writer = await this.src.sink?.begin(name, 'f32', [N, K]);
      try {
        for (const b of blocks) {
          for (let r0 = b.r0; r0 < b.r0 + b.rows; r0 += R) {
            const rows = Math.min(R, b.r0 + b.rows - r0);
            throwIfAborted(this.signal);
            const data = await this.src.readRows(name, r0, rows, this.signal);
            this.device.queue.writeBuffer(b.w.buffer, (b.w.offset ?? 0) + (r0 - b.r0) * K * 4, data as Float32Array<ArrayBuffer>);
            await writer?.write(bytesOf(data));
            this.onBytes(name, rows * storedBytesPerRow);
            await this.backpressure(data.byteLength);
          }
        }
        await writer?.commit();
      } catch (e) {
        await writer?.abort();
        throw e;
      }
      return;
    }
    const G = Math.ceil(K / Q4_GROUP);
    const k = quantizerKernel(format);
    const pipeline = await this.pipelines.get(k.label, k.code);
    if (!this.staging) this.staging = this.alloc.create('quantize staging', quantizeStagingBytes(this.limits), 'staging');
    for (const b of blocks) {
      const bind = this.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: this.params } },
          { binding: 1, resource: { buffer: this.staging } },
          { binding: 2, resource: b.w },
          { binding: 3, resource: b.sc! },
        ],
      });
      // Chunks start at even rows of the block, so each chunk's scales start on a whole u32.
      for (let r0 = b.r0; r0 < b.r0 + b.rows; r0 += R) {
        const rows = Math.min(R, b.r0 + b.rows - r0);
        throwIfAborted(this.signal);
        const data = await this.src.readRows(name, r0, rows, this.signal);
        this.device.queue.writeBuffer(this.staging, 0, data as Float32Array<ArrayBuffer>);
        this.device.queue.writeBuffer(this.params, 0, new Uint32Array([rows, K, G, r0 - b.r0]));
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
    }
    if (this.src.sink) await readBackToSink(this.device, this.alloc, this.src.sink, name, format, [N, K], parts, this.signal);
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
