/**
 * Moving engine tensors between the weight cache and GPU buffers. A tensor's bytes are its
 * buffers' contents back to back (q4: `qw` then `sc`), so a cached file is written into the
 * buffers slice by slice, and a freshly quantized tensor is copied out through one bounded
 * MAP_READ buffer, so neither direction ever holds a whole tensor in JS memory.
 */
import { throwIfAborted } from '../errors.ts';
import type { GpuAllocator } from '../gpu/allocator.ts';
import type { TensorKind } from './format.ts';
import type { TensorSink } from './tensor-source.ts';

/** A GPU buffer and the bytes of it that belong to the tensor: `bytes` from `offset` (default 0). */
export type BufferPart = [buffer: GPUBuffer, bytes: number, offset?: number];

/** Bytes copied out of the GPU per map: bounds the memory of the write-through. */
export const READBACK_SLICE_BYTES = 32 * 2 ** 20;

/**
 * Writes `bytes`, found at `offset` of the concatenated parts, into the right buffer(s).
 * Offsets and lengths stay multiples of 4 as long as slices and part sizes are.
 */
export function writeToParts(queue: GPUQueue, parts: BufferPart[], offset: number, bytes: Uint8Array): void {
  let base = 0, done = 0;
  for (const [buffer, size, at = 0] of parts) {
    const start = offset + done - base;
    if (start >= 0 && start < size && done < bytes.byteLength) {
      const n = Math.min(size - start, bytes.byteLength - done);
      queue.writeBuffer(buffer, at + start, bytes as Uint8Array<ArrayBuffer>, done, n);
      done += n;
    }
    base += size;
  }
}

/**
 * Copies a tensor's GPU buffers to the sink, after the work already submitted (the quantize
 * kernels) has run. Memory: one MAP_READ buffer of at most READBACK_SLICE_BYTES.
 * @example await readBackToSink(device, alloc, sink, name, 'q4', [N, K], [[qw, N * G * 16], [sc, scBytes]]);
 */
export async function readBackToSink(
  device: GPUDevice, alloc: GpuAllocator, sink: TensorSink, name: string, kind: TensorKind, shape: number[], parts: BufferPart[], signal?: AbortSignal,
): Promise<void> {
  const writer = await sink.begin(name, kind, shape);
  const slice = Math.min(READBACK_SLICE_BYTES, Math.max(4, ...parts.map(([, n]) => n)));
  const rb = alloc.create(`${name} readback`, slice, 'staging', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  try {
    for (const [buffer, bytes, at = 0] of parts) {
      for (let off = 0; off < bytes; off += slice) {
        throwIfAborted(signal);
        const n = Math.min(slice, bytes - off);
        const enc = device.createCommandEncoder({ label: `read back ${name}` });
        enc.copyBufferToBuffer(buffer, at + off, rb, 0, n);
        device.queue.submit([enc.finish()]);
        await rb.mapAsync(GPUMapMode.READ, 0, n);
        try {
          await writer.write(new Uint8Array(rb.getMappedRange(0, n)));
        } finally {
          rb.unmap();
        }
      }
    }
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    alloc.destroy(rb);
  }
}
