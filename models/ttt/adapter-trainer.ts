import type { CpuTrainer, TrainResult } from '../cpu/cpu-trainer.ts';
import type { GpuTrainer } from '../gpu/gpu-trainer.ts';
import { cloneLora, loraPairs, type LoraWeights } from '../lora/adapter.ts';
import type { AdamOptions } from '../optim/adam.ts';

export interface TrainStepInfo {
  step: number;
  steps: number;
  loss: number;
  ms: number;
}

export interface AdapterTrainOptions extends AdamOptions {
  steps: number;
  signal?: AbortSignal;
}

/** The one trainer interface of LlamaModel, over the CPU reference or the WebGPU trainer. */
export interface AdapterTrainer {
  train(ids: ArrayLike<number>, mask: ArrayLike<number>, opts: AdapterTrainOptions, onStep?: (e: TrainStepInfo) => void): Promise<TrainResult>;
  lossAndGrads(ids: ArrayLike<number>, mask: ArrayLike<number>): Promise<{ loss: number; grads: LoraWeights }>;
  /** B = 0, A as attached, optimizer cleared: the base model again. */
  reset(): void;
  /** The current adapter (a copy). */
  adapter(): Promise<LoraWeights>;
  /** Detaches the adapter and frees what it holds (GPU buffers). */
  dispose(): Promise<void>;
}

export function cpuAdapterTrainer(t: CpuTrainer): AdapterTrainer {
  return {
    train: (ids, mask, opts, onStep) => t.train(ids, mask, opts, onStep && ((e) => onStep({ step: e.step, steps: e.steps, loss: e.loss, ms: e.ms }))),
    lossAndGrads: async (ids, mask) => t.lossAndGrads(ids, mask),
    reset: () => t.reset(),
    adapter: async () => cloneLora(t.lora),
    dispose: async () => {}, // plain arrays: the garbage collector frees them
  };
}

/** Copies per-projection arrays read from the GPU into a LoraWeights shaped like `template`. */
function fill(template: LoraWeights, data: Map<string, { A: Float32Array; B: Float32Array }>): LoraWeights {
  const out = cloneLora(template);
  for (const { layer, target, pair } of loraPairs(out)) {
    const d = data.get(`${layer}.${target}`)!;
    pair.A.set(d.A);
    pair.B.set(d.B);
  }
  return out;
}

export function gpuAdapterTrainer(t: GpuTrainer, template: LoraWeights): AdapterTrainer {
  return {
    train: (ids, mask, opts, onStep) => t.train(ids, mask, opts, onStep),
    lossAndGrads: async (ids, mask) => {
      const loss = await t.lossAndGrads(ids, mask);
      return { loss, grads: fill(template, await t.lora.read(t.lora.trainingBuffers().grads)) };
    },
    reset: () => t.reset(),
    adapter: async () => fill(template, await t.lora.read(t.lora.params)),
    dispose: () => t.dispose(),
  };
}
