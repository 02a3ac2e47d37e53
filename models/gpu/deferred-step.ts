/**
 * Steps whose pipeline is compiled on first need instead of at load. Generation's prefill-only
 * kernels (the tiled matmul alone is ~1.7 s of shader compile on SwiftShader; also the separate
 * norms, SwiGLU, the three-pass attention) are not needed for a decode step or a short prompt
 * (GpuLlama runs those through the decode kernels), so a load need not wait for them.
 * GpuLlama.run prepares the steps a forward is about to dispatch; GpuLlama.warmUp prepares all.
 */
import type { Step } from './gpu-llama.ts';

/** A pipeline compiled when called (through the model's PipelineCache: each source once). */
export type PipelineRef = () => Promise<GPUComputePipeline>;

/** A compiled pipeline, or one to compile on first need. */
export type Kernel = GPUComputePipeline | PipelineRef;

/**
 * A step of `kernel` whose bind group is made from `bind(pipeline)`: at once for a compiled
 * pipeline; for a PipelineRef, by `prepare()`, which must run before the step is encoded.
 * @example const st = kernelStep('L0 norm1', () => cache.get('rmsnorm', code), (p) => bindOf(p), (T) => [T, 1, 1]);
 */
export function kernelStep(label: string, kernel: Kernel, bind: (p: GPUComputePipeline) => GPUBindGroup, grid: Step['grid']): Step {
  if (typeof kernel !== 'function') return { label, pipeline: kernel, bind: bind(kernel), grid };
  let made: { pipeline: GPUComputePipeline; bind: GPUBindGroup } | null = null;
  let making: Promise<void> | null = null;
  const unprepared = () => new Error(`internal: step ${label} was encoded before its pipeline was compiled (prepareSteps).`);
  const step: Step = {
    label, grid,
    get pipeline(): GPUComputePipeline {
      if (!made) throw unprepared();
      return made.pipeline;
    },
    get bind(): GPUBindGroup {
      if (!made) throw unprepared();
      return made.bind;
    },
    prepare: () => (making ??= kernel().then((p) => {
      made = { pipeline: p, bind: bind(p) };
      delete step.prepare;
    })),
  };
  return step;
}

/** Compiles (in parallel) the deferred pipelines of the steps that dispatch work at (T, P); every one when T is null. */
export async function prepareSteps(steps: readonly Step[], T: number | null, P = T ?? 0): Promise<void> {
  const pending = steps.filter((st) => st.prepare && (T === null || st.grid(T, P)[0] !== 0));
  if (pending.length) await Promise.all(pending.map((st) => st.prepare!()));
}
