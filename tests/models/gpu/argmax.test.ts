import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlamaModel } from '../../../models/llama-model.ts';
import { argmax } from '../../../models/sampling.ts';
import { argmaxWgsl } from '../../../models/gpu/wgsl/argmax.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { expectNoGpuErrors, gpuContext, watchedGpu } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32, writeRandomLlama } from '../../helpers/random-model.ts';

const V = 128256;

describe('argmax on the GPU equals models/sampling.ts argmax (Dawn)', () => {
  let h: KernelHarness;
  beforeAll(async () => { h = new KernelHarness(await gpuContext(false)); });
  expectNoGpuErrors();

  const gpuArgmax = async (logits: Float32Array): Promise<[number, number]> => {
    const out = h.empty(16);
    await h.run(argmaxWgsl(), [h.uniform([logits.length]), h.storage(logits), out], [1, 1, 1]);
    const u = new Uint32Array(await h.read(out, 8));
    return [u[0], new Float32Array(u.buffer)[1]];
  };

  it('at the real vocabulary: random logits, the maximum at either end and mid-stride, ties, -Infinity', async () => {
    const rand = mulberry32(3);
    const base = Float32Array.from({ length: V }, () => (rand() * 2 - 1) * 10);
    const cases: [string, Float32Array][] = [['random', base]];
    for (const at of [0, 1, 255, 256, 70001, V - 1]) {
      const l = base.slice(); l[at] = 50; cases.push([`max at ${at}`, l]);
    }
    const tie = base.slice(); for (const i of [90000, 513, 70000]) tie[i] = 50; cases.push(['tie: lowest id wins', tie]);
    const neg = new Float32Array(V).fill(-Infinity); neg[V - 2] = -1e30; cases.push(['-Infinity but one', neg]);
    cases.push(['all -Infinity', new Float32Array(V).fill(-Infinity)]);
    cases.push(['all equal', new Float32Array(V).fill(2)]);
    cases.push(['tiny vocabulary', Float32Array.from([0.5, 3, -1])]);
    for (const [name, logits] of cases) {
      const [index, value] = await gpuArgmax(logits);
      expect(index, name).toBe(argmax(logits));
      expect(value, name).toBe(logits[argmax(logits)]);
    }
    expect(argmax(tie)).toBe(513);
  });
});

describe('greedy decode on WebGPU reads back 4 bytes per token, same tokens as the CPU (Dawn)', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'argmax-decode-'));
    await writeRandomLlama(dir, { seed: 9, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: V, tie: false });
  }, 60_000);
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('12 greedy tokens at 128,256 logits: ids equal the CPU backend; decode maps 4 bytes a step; full prefill logits still returned', async () => {
    const prompt = [1, 5, 900, 70000];
    const cpu = await LlamaModel.load(new NodeDirSource(dir), { backend: 'cpu', weights: 'f32' });
    const ref = await cpu.generate(prompt, { maxNewTokens: 12, stopIds: [] });
    cpu.dispose();
    const gpu = await LlamaModel.load(new NodeDirSource(dir), { backend: 'webgpu', gpu: await watchedGpu(), weights: 'f32', precision: 'f32' });
    await gpu.generate(prompt, { maxNewTokens: 2 }); // warm
    const mapped: number[] = [];
    const mapAsync = GPUBuffer.prototype.mapAsync;
    GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, mode: number, offset?: number, size?: number) {
      mapped.push(size ?? this.size - (offset ?? 0));
      return mapAsync.call(this, mode, offset, size);
    };
    let r;
    try {
      r = await gpu.generate(prompt, { maxNewTokens: 12, stopIds: [] });
    } finally { GPUBuffer.prototype.mapAsync = mapAsync; }
    expect(ref.ids.length).toBe(12);
    expect(r.ids).toEqual(ref.ids);
    expect(new Set(r.ids).size).toBeGreaterThan(1); // not one token repeated: the check can fail
    expect(r.lastLogits.length).toBe(V); // the prefill's logits, whole
    // Prefill: one V * 4 readback; then one 4-byte readback per decode step.
    expect(mapped[0]).toBe(V * 4);
    expect(mapped.slice(1)).toEqual(new Array(r.timings.decodeTokens).fill(4));
    expect(r.timings.decodeTokens).toBe(11);
    gpu.dispose();
  }, 120_000);
});
