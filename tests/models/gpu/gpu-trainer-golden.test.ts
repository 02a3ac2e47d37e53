/**
 * The WebGPU trainer (Dawn/lavapipe, f32 weights and activations) against the float64 PyTorch
 * autograd reference in ../shared/golden: loss and every LoRA gradient at a point, the 5-step Adam
 * trajectory and final A/B, reset() giving the base model's logits bit for bit, and 4-bit weights.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { PROJECTIONS } from '../../../models/config.ts';
import { GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../../models/gpu/gpu-trainer.ts';
import { NodeDirSource } from '../../../models/io/node-source.ts';
import { loadLora, loraPairs, zeroB, type LoraConfig, type LoraWeights } from '../../../models/lora/adapter.ts';
import { gpuContext, gpuErrors } from '../../helpers/gpu.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('GPU LoRA TTT golden tests');

interface GoldenLora {
  rank: number; alpha: number; ids: number[]; loss_mask: number[];
  loss_at_point: number; ttt_losses_before_each_step: number[]; ttt_loss_after_last_step: number;
  adam: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number };
}

const relErr = (a: ArrayLike<number>, ref: ArrayLike<number>) => {
  let d = 0, n = 0;
  for (let i = 0; i < ref.length; i++) { d += (a[i] - ref[i]) ** 2; n += ref[i] ** 2; }
  return Math.sqrt(d) / Math.sqrt(n);
};

for (const name of ['stories260K', 'tiny-llama31-random']) {
  describe.skipIf(!HAS_SHARED)(`GPU TTT golden ${name} (f32 weights)`, () => {
    let g: GoldenLora;
    let ck: Checkpoint;
    let loraCfg: LoraConfig;
    const file = (suffix: string) => new Uint8Array(readFileSync(sharedPath('golden', `lora-${name}-${suffix}.safetensors`)));
    const load = (suffix: string, opts = {}): LoraWeights => loadLora(file(suffix), ck.config, loraCfg, { name: suffix, ...opts });
    const dir = name === 'stories260K' ? 'golden/stories260K-hf/f32' : 'golden/tiny-llama31-random';

    beforeAll(async () => {
      g = JSON.parse(readFileSync(sharedPath('golden', `lora-${name}.json`), 'utf8'));
      ck = await openCheckpoint(new NodeDirSource(sharedPath(dir)));
      loraCfg = { rank: g.rank, alpha: g.alpha, targets: [...PROJECTIONS] };
    });
    afterAll(() => expect(gpuErrors).toEqual([]));

    it('loss at the point within 1e-4 and every gradient within 1e-3 (relative)', async () => {
      const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
      const t = await GpuTrainer.create(m, load('point'), { maxTokens: 64 });
      const loss = await t.lossAndGrads(g.ids, g.loss_mask);
      expect(Math.abs(loss - g.loss_at_point) / g.loss_at_point).toBeLessThan(1e-4);
      const grads = await t.lora.read(t.lora.trainingBuffers().grads);
      const ref = load('grads', { suffix: '.grad' });
      let worst = 0;
      for (const { layer, target, pair } of loraPairs(ref)) {
        const got = grads.get(`${layer}.${target}`)!;
        worst = Math.max(worst, relErr(got.A, pair.A), relErr(got.B, pair.B));
      }
      console.log(`[gpu ttt ${name}] loss rel err ${(Math.abs(loss - g.loss_at_point) / g.loss_at_point).toExponential(2)}, worst grad rel err ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-3);
      m.dispose();
    });

    it('5-step Adam trajectory: losses and final A/B within 1e-3; reset() restores the base logits bit for bit', async () => {
      const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
      const base = await m.forward(g.ids, { allLogits: true });
      const start = load('point');
      zeroB(start);
      const t = await GpuTrainer.create(m, start, { maxTokens: 64 });
      const a = g.adam;
      const r = await t.train(g.ids, g.loss_mask, { steps: 5, lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay });
      r.losses.forEach((l, i) => expect(Math.abs(l - g.ttt_losses_before_each_step[i]) / g.ttt_losses_before_each_step[i]).toBeLessThan(1e-3));
      expect(Math.abs(r.finalLoss - g.ttt_loss_after_last_step) / g.ttt_loss_after_last_step).toBeLessThan(1e-3);
      const final = load('ttt-final');
      const got = await t.lora.read(t.lora.params);
      let worst = 0;
      for (const { layer, target, pair } of loraPairs(final)) {
        const x = got.get(`${layer}.${target}`)!;
        worst = Math.max(worst, relErr(x.A, pair.A), relErr(x.B, pair.B));
      }
      console.log(`[gpu ttt ${name}] losses ${r.losses.map((v) => v.toFixed(5)).join(' ')} -> ${r.finalLoss.toFixed(5)}, final A/B worst rel err ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-3);
      m.resetCache();
      const adapted = await m.forward(g.ids, { allLogits: true });
      expect(Array.from(adapted)).not.toEqual(Array.from(base));
      t.reset();
      m.resetCache();
      expect(Array.from(await m.forward(g.ids, { allLogits: true }))).toEqual(Array.from(base));
      m.dispose();
    });
  });
}
