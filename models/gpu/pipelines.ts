import type { Kernel } from './deferred-step.ts';

/**
 * Compiles each distinct WGSL source once per device (compiles cost up to ~1 s on software
 * adapters) and reports WGSL errors with line:column instead of a silent invalid pipeline.
 */
export class PipelineCache {
  private readonly device: GPUDevice;
  private readonly cache = new Map<string, Promise<GPUComputePipeline>>();
  private readonly log: { label: string; ms: number }[] = [];

  constructor(device: GPUDevice) {
    this.device = device;
  }

  /** Distinct pipelines requested so far. */
  get size(): number {
    return this.cache.size;
  }

  /**
   * Each compile so far in the order they finished, with the time from its request to its
   * pipeline (compiles overlap, so the times include waiting for the others): where load time goes.
   */
  get compiles(): readonly { label: string; ms: number }[] {
    return this.log;
  }

  get(label: string, code: string): Promise<GPUComputePipeline> {
    let p = this.cache.get(code);
    if (!p) {
      p = this.compile(label, code);
      this.cache.set(code, p);
    }
    return p;
  }

  /**
   * The pipeline as a Kernel (deferred-step.ts): compiled now, or with `defer` a reference that
   * compiles it on first need.
   */
  async kernel(label: string, code: string, defer: boolean): Promise<Kernel> {
    return defer ? () => this.get(label, code) : this.get(label, code);
  }

  private async compile(label: string, code: string): Promise<GPUComputePipeline> {
    const t0 = performance.now();
    const module = this.device.createShaderModule({ label, code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      const lines = code.split('\n');
      const detail = errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}\n    ${lines[m.lineNum - 1] ?? ''}`).join('\n');
      throw new Error(`WGSL compile error in ${label}:\n${detail}`);
    }
    const p = await this.device.createComputePipelineAsync({ label, layout: 'auto', compute: { module, entryPoint: 'main' } });
    this.log.push({ label, ms: performance.now() - t0 });
    return p;
  }
}

/** Workgroup counts for n threads in groups of `wg`, split over (x, y) to stay under the per-dimension limit. */
export function grid1D(n: number, wg: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}
