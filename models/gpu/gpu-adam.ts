/**
 * Adam over an adapter's flat LoRA buffers on the GPU (GpuTrainer's optimizer step): the gradient
 * norm in two stages (for clipping), then the update of params, m and v; nothing is read back.
 * The twin of models/optim/adam.ts; the kernels are in ./wgsl/adam.ts.
 */
import type { AdamOptions } from '../optim/adam.ts';
import type { GpuLlama, Step } from './gpu-llama.ts';
import type { GpuLora } from './gpu-lora.ts';
import { grid1D } from './pipelines.ts';
import { adamUpdateWgsl, ADAM_PARAMS_BYTES, gradNormFinalWgsl, gradNormGroups, gradNormPartialWgsl, packAdamParams } from './wgsl/adam.ts';

export class GpuAdam {
  /** Steps taken since creation or reset (Adam's bias correction counts them). */
  private taken = 0;

  private constructor(
    private readonly m: GpuLlama,
    private readonly params: GPUBuffer,
    private readonly partials: number,
    /** grad norm partial, grad norm final, adam update. */
    readonly steps: Step[],
  ) {}

  /**
   * Allocates the optimizer's buffers (grad-norm partials, stats, params uniform) and builds its steps.
   * @example const adam = await GpuAdam.create(model, lora); device.queue.submit([adam.encode({ lr: 1e-4 }, T)]);
   */
  static async create(m: GpuLlama, lora: GpuLora): Promise<GpuAdam> {
    const tb = lora.trainingBuffers(), n = lora.floats, groups = gradNormGroups(n);
    const partials = m.alloc.create('adam partials', groups * 4, 'optimizer');
    const stats = m.alloc.create('adam stats', 16, 'optimizer');
    const params = m.alloc.create('adam params', ADAM_PARAMS_BYTES, 'optimizer', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const size = m.uniform('adam size', [n, 0, 0, 0]);
    const pPart = await m.pipelines.get('grad norm partial', gradNormPartialWgsl());
    const pFinal = await m.pipelines.get('grad norm final', gradNormFinalWgsl());
    const pUpdate = await m.pipelines.get('adam update', adamUpdateWgsl());
    const step = (label: string, p: GPUComputePipeline, buffers: GPUBuffer[], grid: Step['grid']): Step => ({ label, pipeline: p, bind: m.bind(p, buffers), grid });
    return new GpuAdam(m, params, groups, [
      step('grad norm partial', pPart, [size, tb.grads, partials], () => [groups, 1, 1]),
      step('grad norm final', pFinal, [params, partials, stats], () => [1, 1, 1]),
      step('adam update', pUpdate, [params, size, stats, lora.params, tb.grads, tb.m, tb.v], () => grid1D(n, 256)),
    ]);
  }

  /** One update as a command buffer; the step counts once it is encoded (`T`: the forward's tokens, for encode). */
  encode(opts: AdamOptions, T: number): GPUCommandBuffer {
    this.taken++;
    this.m.device.queue.writeBuffer(this.params, 0, packAdamParams({ ...opts, step: this.taken, partials: this.partials }));
    const enc = this.m.device.createCommandEncoder({ label: 'adam' });
    const pass = enc.beginComputePass();
    this.m.encode(pass, this.steps, T, T);
    pass.end();
    return enc.finish();
  }

  /** Back to step 0 (the caller clears the moments with the adapter). */
  reset(): void {
    this.taken = 0;
  }
}
