import { promptFormat } from '../../models/prompt-format.ts';
import { describe, expect, it } from 'vitest';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { LlamaModel } from '../../models/llama-model.ts';
import { resolveTttConfig, TTT_DEFAULTS } from '../../models/ttt/config.ts';
import { expectNoGpuErrors, watchedGpu } from '../helpers/gpu.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

warnIfNoShared('LlamaModel TTT round trip on stories260K');

describe('TTT config', () => {
  it('defaults: rank 8, alpha 16, all seven projections, 3 steps, lr 1e-4; the paper preset takes 1 step', () => {
    expect(TTT_DEFAULTS).toMatchObject({ rank: 8, alpha: 16, steps: 3, lr: 1e-4 });
    expect(TTT_DEFAULTS.targets).toHaveLength(7);
    expect(resolveTttConfig({ preset: 'paper' })).toMatchObject({ steps: 1, lr: 1e-5, rank: 8 });
    expect(resolveTttConfig({ preset: 'paper', steps: 2 }).steps).toBe(2);
    expect(() => resolveTttConfig({ rank: 0 })).toThrow(/rank/);
    expect(() => resolveTttConfig({ targets: [] })).toThrow(/targets/);
  });
});

describe.skipIf(!HAS_SHARED)('LlamaModel TTT: trace -> train -> adapted answer -> reset', () => {
  expectNoGpuErrors();
  const trace = {
    question: 'Once upon a time, what did Lily find in the park?',
    reasoning: 'Lily went to the park with her mom. She saw a big red ball under a tree.',
    answer: 'Lily found a big red ball.',
  };
  for (const backend of ['cpu', 'webgpu'] as const) {
    it(`${backend}: the loss falls, generation changes while adapted, and reset gives the base answer back`, async () => {
      const model = await LlamaModel.load(new NodeDirSource(sharedPath('golden/stories260K-hf/f32')), { backend, gpu: backend === 'webgpu' ? await watchedGpu() : undefined, weights: 'f32', precision: 'f32' });
      const prompt = model.encodePrompt('Once upon a time');
      const before = await model.generate(prompt, { maxNewTokens: 24 });
      await model.attachAdapter({ seed: 3, maxTokens: 256 });
      const seq = model.trainingSequence(trace, { format: promptFormat('card') }); // the long o1 prompt exceeds this tiny model's 512 context
      expect(seq.tokensTrained).toBeGreaterThan(10);
      expect(seq.lossMask.filter((v) => v === 1).length).toBe(seq.tokensTrained);
      expect((await model.generate(prompt, { maxNewTokens: 24 })).ids).toEqual(before.ids); // B = 0: unchanged
      const steps: number[] = [];
      const r = await model.train(seq.ids, seq.lossMask, (s) => steps.push(s.loss), { steps: 4, lr: 3e-2 });
      expect(steps).toEqual(r.losses);
      expect(r.tokensTrained).toBe(seq.tokensTrained);
      expect(r.finalLoss).toBeLessThan(r.lossAtStart);
      const adapted = await model.generate(prompt, { maxNewTokens: 24 });
      expect(adapted.ids).not.toEqual(before.ids);
      model.resetAdapter();
      expect((await model.generate(prompt, { maxNewTokens: 24 })).ids).toEqual(before.ids);
      model.dispose();
    });
  }
});
