import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { CpuLlama, withLora } from '../../../models/cpu/cpu-llama.ts';
import { GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { GpuLora } from '../../../models/gpu/gpu-lora.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { DEFAULT_LORA, initLora, loraPairs } from '../../../models/lora/adapter.ts';
import { expectBelow, expectNoGpuErrors, gpuContext, maxAbsDiff, printMeasured } from '../../helpers/gpu.ts';
import { mulberry32, writeRandomLlama } from '../../helpers/random-model.ts';

printMeasured('lora forward');

/** max |logit difference| of the WebGPU LoRA forward vs the CPU one (f32): measured 2.7e-7 / 6.0e-7, x 10. */
const GPU_VS_CPU = 6e-6;

// The LoRA term in the WebGPU forward pass (prefill and decode) against the CPU reference.
describe('LoRA in the WebGPU forward pass', () => {
  expectNoGpuErrors();
  let dir: string;
  let ck: Checkpoint;
  const ids = Array.from({ length: 40 }, (_, i) => (i * 13 + 5) % 150);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-fwd-'));
    await writeRandomLlama(dir, { seed: 11, hiddenSize: 64, intermediateSize: 136, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 150, ropeScaling: true });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('matches the CPU LoRA forward (all seven targets, B != 0), and disabling gives the base model bit for bit', async () => {
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: 64 });
    const lora = initLora(ck.config, DEFAULT_LORA, 3);
    const rand = mulberry32(5);
    for (const { pair } of loraPairs(lora)) for (let i = 0; i < pair.B.length; i++) pair.B[i] = (rand() * 2 - 1) * 0.05;
    const want = withLora(cpu, lora).forward(ids, { allLogits: true });
    const base = cpu.forward(ids, { allLogits: true });
    expect(maxAbsDiff(want, base)).toBeGreaterThan(1e-2); // the adapter changes the output

    const ctx = await gpuContext(false);
    const gpu = await GpuLlama.load(ck, ctx, { weights: 'f32', maxContext: 64, maxBatch: 16 });
    gpu.resetCache();
    const before = await gpu.forward(ids, { allLogits: true });
    const gl = GpuLora.create(ctx.device, gpu.alloc, lora);
    await gpu.attachLora(gl);
    gpu.resetCache();
    expectBelow('prefill all-position logits, webgpu vs cpu', maxAbsDiff(await gpu.forward(ids, { allLogits: true }), want), GPU_VS_CPU);
    // Decode path (T = 1) after a chunked prefill.
    gpu.resetCache();
    await gpu.forward(ids.slice(0, 35));
    let last: Float32Array = new Float32Array();
    for (const id of ids.slice(35)) last = await gpu.forward([id]);
    const V = ck.config.vocabSize;
    expectBelow('35 prefill + 5 decode last logits, webgpu vs cpu', maxAbsDiff(last, want.subarray((ids.length - 1) * V)), GPU_VS_CPU);
    gpu.loraEnabled = false;
    gpu.resetCache();
    expect(Array.from(await gpu.forward(ids, { allLogits: true }))).toEqual(Array.from(before));
    gpu.dispose();
  });
});
