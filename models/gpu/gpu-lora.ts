import type { Projection } from '../config.ts';
import type { LoraConfig, LoraWeights } from '../lora/adapter.ts';
import type { GpuAllocator, MemoryCategory } from './allocator.ts';
import { loraLayout, type LoraSlot } from './buffer-sizes.ts';

export type { LoraSlot } from './buffer-sizes.ts';

/**
 * All LoRA parameters of a model in one flat f32 buffer (and, for training, the gradients and
 * Adam moments in buffers of the same layout), so the optimizer is one kernel over one range and
 * each projection binds its A and B as 256-byte-aligned sub-ranges.
 */
export class GpuLora {
  readonly config: LoraConfig;
  readonly scale: number;
  readonly slots: LoraSlot[];
  readonly floats: number;
  readonly params: GPUBuffer;
  private readonly bySlot = new Map<string, LoraSlot>();
  private train: { grads: GPUBuffer; m: GPUBuffer; v: GPUBuffer } | null = null;

  private constructor(private readonly device: GPUDevice, private readonly alloc: GpuAllocator, lora: LoraWeights) {
    this.config = lora.config;
    this.scale = lora.scale;
    const { slots, floats } = loraLayout(lora.layers, lora.config.rank);
    this.slots = slots;
    this.floats = floats;
    for (const s of slots) this.bySlot.set(`${s.layer}.${s.proj}`, s);
    this.params = alloc.create('lora params', this.floats * 4, 'lora');
  }

  /** Uploads `lora` (from models/lora/adapter.ts) to the GPU. */
  static create(device: GPUDevice, alloc: GpuAllocator, lora: LoraWeights): GpuLora {
    const g = new GpuLora(device, alloc, lora);
    g.upload(lora);
    return g;
  }

  slot(layer: number, proj: Projection): LoraSlot | undefined {
    return this.bySlot.get(`${layer}.${proj}`);
  }

  upload(lora: LoraWeights): void {
    const flat = new Float32Array(this.floats);
    for (const s of this.slots) {
      const pair = lora.layers[s.layer][s.proj]!;
      flat.set(pair.A, s.aOffset);
      flat.set(pair.B, s.bOffset);
    }
    this.device.queue.writeBuffer(this.params, 0, flat);
  }

  /** Sets every B to zero: the adapted model equals the base model again. */
  zeroB(): void {
    for (const s of this.slots) this.device.queue.writeBuffer(this.params, s.bOffset * 4, new Float32Array(s.outDim * this.config.rank));
  }

  /** Gradient and Adam moment buffers (same layout as params), allocated on first use. */
  trainingBuffers(): { grads: GPUBuffer; m: GPUBuffer; v: GPUBuffer } {
    if (!this.train) {
      const mk = (label: string, cat: MemoryCategory) => this.alloc.create(label, this.floats * 4, cat);
      this.train = { grads: mk('lora grads', 'lora'), m: mk('adam m', 'optimizer'), v: mk('adam v', 'optimizer') };
    }
    return this.train;
  }

  /** Binding of A or B of a slot inside `buffer` (params, grads, m or v). */
  binding(buffer: GPUBuffer, s: LoraSlot, which: 'A' | 'B'): GPUBufferBinding {
    const r = this.config.rank;
    return which === 'A'
      ? { buffer, offset: s.aOffset * 4, size: r * s.inDim * 4 }
      : { buffer, offset: s.bOffset * 4, size: s.outDim * r * 4 };
  }

  /** Reads a flat buffer back into per-projection arrays (PEFT layout), e.g. to save an adapter. */
  async read(buffer: GPUBuffer): Promise<Map<string, { A: Float32Array; B: Float32Array }>> {
    const rb = this.device.createBuffer({ size: this.floats * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, rb, 0, this.floats * 4);
    this.device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const flat = new Float32Array(rb.getMappedRange().slice(0));
    rb.destroy();
    const r = this.config.rank;
    const out = new Map<string, { A: Float32Array; B: Float32Array }>();
    for (const s of this.slots) {
      out.set(`${s.layer}.${s.proj}`, {
        A: flat.slice(s.aOffset, s.aOffset + r * s.inDim),
        B: flat.slice(s.bOffset, s.bOffset + s.outDim * r),
      });
    }
    return out;
  }

  dispose(): void {
    this.alloc.destroy(this.params);
    if (this.train) for (const b of Object.values(this.train)) this.alloc.destroy(b);
    this.train = null;
  }
}
