/**
 * Dispatches and queue submits per TTT step on Dawn: how a step is cut into command buffers
 * (models/gpu/gpu-trainer.ts). A random model of the given depth (narrow: the counts depend on
 * layers, LoRA targets and trained tokens, not on width), every LoRA target, one Adam step.
 * Prints one JSON line. Usage: `npm run bench:ttt-submits -- [layers=32] [tokens=64]`
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../../models/checkpoint.ts';
import { acquireGpu } from '../../models/gpu/device.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../models/gpu/gpu-trainer.ts';
import { DEFAULT_LORA, initLora } from '../../models/lora/adapter.ts';
import { PROJECTIONS } from '../../models/config.ts';
import { nodeGpu } from '../../node/gpu/node-gpu.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { writeRandomLlama } from '../../tests/helpers/random-model.ts';

const layers = Number(process.argv[2] ?? 32);
const T = Number(process.argv[3] ?? 64);
const ctx = await acquireGpu(nodeGpu(), { f16: false });
let dispatches = 0, submits = 0, buffers = 0, inSubmit = 0, maxPerSubmit = 0;
const dispatch = GPUComputePassEncoder.prototype.dispatchWorkgroups;
GPUComputePassEncoder.prototype.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...a: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>) {
  dispatches++; inSubmit++;
  return dispatch.apply(this, a);
};
const submit = GPUQueue.prototype.submit;
GPUQueue.prototype.submit = function (this: GPUQueue, cbs: Iterable<GPUCommandBuffer>) {
  const list = [...cbs];
  submits++; buffers += list.length; maxPerSubmit = Math.max(maxPerSubmit, inSubmit); inSubmit = 0;
  return submit.call(this, list);
};

const dir = await mkdtemp(join(tmpdir(), 'ttt-submits-'));
try {
  await writeRandomLlama(dir, { seed: 2, hiddenSize: 64, intermediateSize: 128, numLayers: layers, numHeads: 4, numKvHeads: 2, vocabSize: 256, tie: false });
  const m = await GpuLlama.load(await openCheckpoint(new NodeDirSource(dir)), ctx, { weights: 'f32', maxContext: T });
  const lora = initLora(m.config, { ...DEFAULT_LORA, targets: [...PROJECTIONS] }, 1);
  const t = await GpuTrainer.create(m, lora, { maxTokens: T });
  const ids = Array.from({ length: T }, (_, i) => (i * 7 + 1) % 256), mask = ids.map(() => 1);
  await t.train(ids, mask, { steps: 1, lr: 1e-3 }); // warm
  dispatches = submits = buffers = inSubmit = maxPerSubmit = 0;
  const steps = 3;
  const t0 = performance.now();
  await t.train(ids, mask, { steps, lr: 1e-3 });
  const ms = performance.now() - t0;
  // train() ends with one forward for the final loss: count it apart.
  const d0 = dispatches, s0 = submits, b0 = buffers;
  dispatches = submits = buffers = inSubmit = 0;
  await t.loss(ids, mask);
  const fwd = { dispatches, submits, buffers };
  console.log(JSON.stringify({
    layers, tokens: T, targets: PROJECTIONS.length,
    dispatchesPerStep: (d0 - fwd.dispatches) / steps, submitsPerStep: (s0 - fwd.submits) / steps,
    commandBuffersPerStep: (b0 - fwd.buffers) / steps, maxDispatchesPerSubmit: maxPerSubmit,
    lossForward: fwd, msPerStep: +(ms / steps).toFixed(1),
  }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
