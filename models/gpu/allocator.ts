import { GpuOutOfMemoryError } from '../errors.ts';
import { bufferAllocSize, type BufferKind } from './buffer-sizes.ts';

export type MemoryCategory = 'weights' | 'kvCache' | 'activations' | 'lora' | 'optimizer' | 'staging';

/** One live buffer as the allocator accounts it (see GpuAllocator.liveBuffers). */
export interface LiveBuffer {
  label: string;
  category: MemoryCategory;
  size: number;
}

/** GPUBufferUsage flags of a buffer kind (models/gpu/buffer-sizes.ts). */
export function usageOf(kind: BufferKind): number {
  if (kind === 'uniform') return GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
  if (kind === 'readback') return GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

/**
 * Creates every GPU buffer of a model and accounts its bytes by category, so memory figures
 * come from the allocator, not from guesses. Out-of-memory is caught with an error scope and
 * turned into GpuOutOfMemoryError (allocations are grouped so the scope is checked per group).
 */
export class GpuAllocator {
  private readonly device: GPUDevice;
  private readonly live = new Map<GPUBuffer, LiveBuffer>();
  private readonly bytes: Record<MemoryCategory, number> = { weights: 0, kvCache: 0, activations: 0, lora: 0, optimizer: 0, staging: 0 };
  private peakBytes = 0;
  /** Open `collect` calls: each gathers the buffers created while it runs. */
  private readonly collectors: Set<GPUBuffer>[] = [];

  constructor(device: GPUDevice) {
    this.device = device;
  }

  /** Buffer of at least `size` bytes (rounded up to 4). STORAGE | COPY_SRC | COPY_DST by default. */
  create(label: string, size: number, category: MemoryCategory, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST): GPUBuffer {
    const rounded = bufferAllocSize(size);
    const limit = this.device.limits.maxBufferSize;
    if (rounded > limit) {
      throw new GpuOutOfMemoryError(`Buffer "${label}" needs ${rounded} bytes; this GPU allows at most ${limit} per buffer.`);
    }
    const buffer = this.device.createBuffer({ label, size: rounded, usage });
    this.live.set(buffer, { label, category, size: rounded });
    for (const c of this.collectors) c.add(buffer);
    this.bytes[category] += rounded;
    this.peakBytes = Math.max(this.peakBytes, this.total);
    return buffer;
  }

  /** Runs `allocate` inside an out-of-memory error scope; throws GpuOutOfMemoryError if any allocation failed. */
  async guarded<R>(what: string, allocate: () => R): Promise<R> {
    this.device.pushErrorScope('out-of-memory');
    let result: R;
    try {
      result = allocate();
    } finally {
      const err = await this.device.popErrorScope();
      if (err) throw new GpuOutOfMemoryError(`GPU out of memory while allocating ${what} (${(this.total / 2 ** 20).toFixed(0)} MiB accounted): ${err.message}`);
    }
    return result;
  }

  /**
   * Runs `fn` and returns the buffers created meanwhile, so a part built on top of a model (the
   * TTT trainer) can free exactly its own buffers later.
   * @example const { result: trainer, buffers } = await alloc.collect(() => build());
   */
  async collect<R>(fn: () => Promise<R>): Promise<{ result: R; buffers: GPUBuffer[] }> {
    const created = new Set<GPUBuffer>();
    this.collectors.push(created);
    try {
      const result = await fn();
      return { result, buffers: [...created].filter((b) => this.live.has(b)) };
    } finally {
      this.collectors.splice(this.collectors.indexOf(created), 1);
    }
  }

  destroy(buffer: GPUBuffer): void {
    const e = this.live.get(buffer);
    if (!e) return;
    this.bytes[e.category] -= e.size;
    this.live.delete(buffer);
    buffer.destroy();
  }

  destroyAll(): void {
    for (const b of [...this.live.keys()]) this.destroy(b);
  }

  get total(): number {
    return Object.values(this.bytes).reduce((a, b) => a + b, 0);
  }

  get peak(): number {
    return this.peakBytes;
  }

  byCategory(): Readonly<Record<MemoryCategory, number>> {
    return { ...this.bytes };
  }

  /**
   * The live buffers (label, category, accounted size), in creation order: what a memory plan
   * (models/memory-plan.ts) is checked against.
   * @example alloc.liveBuffers().filter((b) => b.category === 'kvCache').length; // 2 per layer
   */
  liveBuffers(): LiveBuffer[] {
    return [...this.live.values()].map((b) => ({ ...b }));
  }
}
