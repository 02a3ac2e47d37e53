/**
 * The CPU trainer against the float64 PyTorch autograd reference in ../shared/golden (see its
 * README): loss and every LoRA gradient at a point, the 5-step Adam trajectory, and reset().
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../models/checkpoint.ts';
import { PROJECTIONS } from '../../../models/config.ts';
import { CpuLlama } from '../../../models/cpu/cpu-llama.ts';
import { CpuTrainer } from '../../../models/cpu/cpu-trainer.ts';
import { NodeDirSource } from '../../../models/io/node-source.ts';
import { loadLora, loraPairs, loraTensorNames, zeroB, type LoraConfig, type LoraWeights } from '../../../models/lora/adapter.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('LoRA TTT golden tests (lora-*.json and safetensors)');

interface GoldenLora {
  rank: number; alpha: number; targets: string[]; ids: number[]; loss_mask: number[];
  loss_at_point: number; ttt_losses_before_each_step: number[]; ttt_loss_after_last_step: number;
  adam: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number };
}

const MODELS = [
  { name: 'stories260K', dir: 'golden/stories260K-hf/f32' },
  { name: 'tiny-llama31-random', dir: 'golden/tiny-llama31-random' },
];

const relErr = (a: ArrayLike<number>, ref: ArrayLike<number>) => {
  let d = 0, n = 0;
  for (let i = 0; i < ref.length; i++) { d += (a[i] - ref[i]) ** 2; n += ref[i] ** 2; }
  return Math.sqrt(d) / Math.sqrt(n);
};
for (const m of MODELS) {
  describe.skipIf(!HAS_SHARED)(`LoRA golden ${m.name} (CPU, f32 weights)`, () => {
    const report: string[] = [];
    let g: GoldenLora;
    let cpu: CpuLlama;
    let loraCfg: LoraConfig;
    const file = (suffix: string) => new Uint8Array(readFileSync(sharedPath('golden', `lora-${m.name}-${suffix}.safetensors`)));
    const load = (suffix: string, opts = {}): LoraWeights => loadLora(file(suffix), cpu.config, loraCfg, { name: suffix, ...opts });

    beforeAll(async () => {
      g = JSON.parse(readFileSync(sharedPath('golden', `lora-${m.name}.json`), 'utf8'));
      const ck = await openCheckpoint(new NodeDirSource(sharedPath(m.dir)));
      cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: 64 });
      loraCfg = { rank: g.rank, alpha: g.alpha, targets: [...PROJECTIONS] };
      expect(g.targets).toEqual([...PROJECTIONS]);
    });

    it('loss at the point within 1e-4 and every gradient within 1e-3 (relative)', () => {
      const point = load('point');
      const trainer = new CpuTrainer(cpu, point);
      const { loss, grads } = trainer.lossAndGrads(g.ids, g.loss_mask);
      const lossErr = Math.abs(loss - g.loss_at_point) / Math.abs(g.loss_at_point);
      expect(lossErr).toBeLessThan(1e-4);
      const ref = load('grads', { suffix: '.grad' });
      let worst = 0, worstName = '';
      for (const { layer, target, pair } of loraPairs(grads)) {
        const r = ref.layers[layer][target]!;
        const names = loraTensorNames(layer, target, '.grad');
        for (const [name, a, b] of [[names.A, pair.A, r.A], [names.B, pair.B, r.B]] as const) {
          const e = relErr(a, b);
          expect(e, name).toBeLessThan(1e-3);
          if (e > worst) { worst = e; worstName = name; }
        }
      }
      report.push(`${m.name}: loss rel err ${lossErr.toExponential(2)}, worst grad rel err ${worst.toExponential(2)} (${worstName})`);
    });

    it('5-step Adam trajectory: losses and final A/B within 1e-3 (relative)', async () => {
      const lora = load('point');
      zeroB(lora);
      const trainer = new CpuTrainer(cpu, lora);
      const a = g.adam;
      const steps: number[] = [];
      const r = await trainer.train(g.ids, g.loss_mask, { steps: 5, lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay }, (e) => steps.push(e.step));
      expect(steps).toEqual([1, 2, 3, 4, 5]);
      const want = [...g.ttt_losses_before_each_step, g.ttt_loss_after_last_step];
      const got = [...r.losses, r.finalLoss];
      const lossErrs = got.map((x, i) => Math.abs(x - want[i]) / Math.abs(want[i]));
      for (const e of lossErrs) expect(e).toBeLessThan(1e-3);
      expect(r.lossAtStart).toBe(r.losses[0]);
      expect(r.tokensTrained).toBe(g.loss_mask.slice(1).filter((x) => x === 1).length);
      const fin = load('ttt-final');
      let worst = 0;
      for (const { layer, target, pair } of loraPairs(lora)) {
        const f = fin.layers[layer][target]!;
        worst = Math.max(worst, relErr(pair.A, f.A), relErr(pair.B, f.B));
      }
      expect(worst).toBeLessThan(1e-3);
      report.push(`${m.name}: trajectory worst loss rel err ${Math.max(...lossErrs).toExponential(2)}, worst final A/B rel err ${worst.toExponential(2)}`);
    });

    it('reset(): logits and greedy tokens bit-identical to the base model', async () => {
      const lora = load('point');
      zeroB(lora);
      const trainer = new CpuTrainer(cpu, lora);
      const prompt = g.ids.slice(0, 12);
      cpu.resetCache();
      const baseLogits = cpu.forward(prompt, { allLogits: true });
      const greedyOf = (f: (ids: number[]) => Float32Array) => {
        const out: number[] = [];
        let logits = f(prompt);
        for (let i = 0; i < 10; i++) {
          let best = 0;
          for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
          out.push(best);
          logits = f([best]);
        }
        return out;
      };
      cpu.resetCache();
      const baseGreedy = greedyOf((ids) => cpu.forward(ids));
      // attached, untrained (B = 0): identical already
      const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      expect(bits(trainer.generator().forward(prompt, { allLogits: true }))).toEqual(bits(baseLogits));
      await trainer.train(g.ids, g.loss_mask, { steps: 2, lr: 1e-2 });
      const adapted = trainer.generator().forward(prompt, { allLogits: true });
      expect(adapted).not.toEqual(baseLogits);
      trainer.reset();
      const after = trainer.generator();
      expect(bits(after.forward(prompt, { allLogits: true }))).toEqual(bits(baseLogits));
      after.resetCache();
      expect(greedyOf((ids) => after.forward(ids))).toEqual(baseGreedy);
      // and training again from the reset state repeats the first run exactly (moments cleared)
      const r1 = await trainer.train(g.ids, g.loss_mask, { steps: 1, lr: 1e-2 });
      trainer.reset();
      const r2 = await trainer.train(g.ids, g.loss_mask, { steps: 1, lr: 1e-2 });
      expect(r2.losses).toEqual(r1.losses);
      expect(r2.finalLoss).toBe(r1.finalLoss);
    });

    it('report', () => {
      console.log(`\n[lora golden] ${report.join('\n[lora golden] ')}\n`);
    });
  });
}
