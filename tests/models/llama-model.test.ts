import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { LlamaModel } from '../../models/llama-model.ts';
import { writeRandomLlama } from '../helpers/random-model.ts';
import { expectNoGpuErrors, watchedGpu } from '../helpers/gpu.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

warnIfNoShared('LlamaModel text generation on stories260K');

describe('LlamaModel generation (random model, no tokenizer)', () => {
  expectNoGpuErrors();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gen-'));
    await writeRandomLlama(dir, { seed: 3, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 97 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('CPU and WebGPU give the same greedy and seeded-sampled tokens; progress reaches ready', async () => {
    const phases: string[] = [];
    const cpu = await LlamaModel.load(new NodeDirSource(dir), { backend: 'cpu', weights: 'f32', maxContext: 64 });
    const gpu = await LlamaModel.load(new NodeDirSource(dir), { backend: 'webgpu', gpu: await watchedGpu(), weights: 'f32', precision: 'f32', maxContext: 64, onProgress: (p) => phases.push(p.phase) });
    expect(phases[0]).toBe('config');
    expect(phases.at(-1)).toBe('ready');
    for (const sampling of [{ kind: 'greedy' } as const, { kind: 'sample', temperature: 0.8, topP: 0.9, seed: 42 } as const]) {
      const a = await cpu.generate([1, 5, 9], { maxNewTokens: 12, sampling, stopIds: [] });
      const b = await gpu.generate([1, 5, 9], { maxNewTokens: 12, sampling });
      expect(b.ids).toEqual(a.ids);
      expect(b.ids.length).toBeLessThanOrEqual(12);
    }
    gpu.dispose();
  });

  it('stops on a stop id, honours maxNewTokens, and cancellation returns what it has', async () => {
    const m = await LlamaModel.load(new NodeDirSource(dir), { backend: 'cpu', weights: 'f32', maxContext: 64 });
    const free = await m.generate([1, 2], { maxNewTokens: 10 });
    if (free.stopReason === 'max-tokens') expect(free.ids.length).toBe(10);
    const stopAt = free.ids[3];
    const stopped = await m.generate([1, 2], { maxNewTokens: 10, stopIds: [stopAt] });
    expect(stopped.stopReason).toBe('eos');
    expect(stopped.ids).toEqual(free.ids.slice(0, free.ids.indexOf(stopAt)));
    const ac = new AbortController();
    const streamed: number[] = [];
    const r = await m.generate([1, 2], { maxNewTokens: 10, signal: ac.signal, onToken: (id) => { streamed.push(id); if (streamed.length === 2) ac.abort(); } });
    expect(r.stopReason).toBe('aborted');
    expect(r.ids).toEqual(free.ids.slice(0, 2));
    expect((await m.generate([1, 2], { maxNewTokens: 10 })).ids).toEqual(free.ids); // still usable
    await expect(m.generate([1, 2], { maxNewTokens: 3, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'aborted' });
  });

  it('an aborted load rejects with AbortError and bad options are typed errors', async () => {
    await expect(LlamaModel.load(new NodeDirSource(dir), { backend: 'cpu', signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'aborted' });
    const m = await LlamaModel.load(new NodeDirSource(dir), { backend: 'cpu', weights: 'f32', maxContext: 8 });
    await expect(m.generate([], { maxNewTokens: 3 })).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(m.generate(Array(9).fill(1), { maxNewTokens: 3 })).rejects.toMatchObject({ code: 'invalid-input' });
    expect(() => m.encodePrompt('hello')).toThrow(/no tokenizer/);
  });
});

describe.skipIf(!HAS_SHARED)('LlamaModel on stories260K (text)', () => {
  expectNoGpuErrors();
  it('greedy text from "Once upon a time" reads "..., there was a little girl named Lily." (f32 and q4)', async () => {
    for (const weights of ['f32', 'q4'] as const) {
      const m = await LlamaModel.load(new NodeDirSource(sharedPath('golden/stories260K-hf/f32')), { backend: 'webgpu', gpu: await watchedGpu(), weights });
      const r = await m.generate(m.encodePrompt('Once upon a time'), { maxNewTokens: 32 });
      expect(r.text.startsWith(', there was a little girl named Lily.'), `${weights}: ${r.text}`).toBe(true);
      m.dispose();
    }
  });
});
