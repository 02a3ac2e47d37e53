/**
 * The CPU trainer against the float64 PyTorch autograd reference in ../shared/golden (see its
 * README): loss and every LoRA gradient at a point, the 5-step Adam trajectory, and reset(). With
 * 4-bit weights the CPU trainer is the 4-bit reference the GPU is held to; it is checked here to
 * be exactly the f32 trainer on the dequantized weights, with the f32 golden only as a sanity bound.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { PROJECTIONS } from '../../../models/config.ts';
import { CpuLlama } from '../../../models/cpu/cpu-llama.ts';
import { CpuTrainer } from '../../../models/cpu/cpu-trainer.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { loadLora, loraPairs, loraTensorNames, zeroB, type LoraConfig, type LoraWeights } from '../../../models/lora/adapter.ts';
import { dequantizeQ4, quantizeQ4 } from '../../../models/quant/q4.ts';
import { concatAll, expectBelow, printMeasured, relErr, vectorAgreement } from '../../helpers/gpu.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('LoRA TTT golden tests (lora-*.json and safetensors)');
printMeasured('lora golden');

interface GoldenLora {
  rank: number; alpha: number; targets: string[]; ids: number[]; loss_mask: number[];
  loss_at_point: number; ttt_losses_before_each_step: number[]; ttt_loss_after_last_step: number;
  adam: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number };
}

// Bounds: relative (gradients and A/B per tensor, by norm of the difference), measured on this CPU
// path (stories260K / tiny-llama31-random), bound = ~10x the worst. The CPU path is plain f64/f32
// JavaScript, so it holds tighter bounds than the GPU (tests/models/gpu/gpu-trainer-golden.test.ts).
const F32 = {
  loss: 1e-6, // measured 6.2e-8 / 1.3e-9
  grad: 2e-5, // measured 1.6e-6 / 2.0e-6
  trajLoss: 4e-6, // measured 3.6e-7 / 2.2e-7
  finalAB: 8e-5, // measured 8.0e-6 / 2.6e-6
};
/**
 * 4-bit vs the f32 golden: a sanity bound only (measured cosine 0.82 / 0.45, norm ratio 1.22 /
 * 0.95: 4-bit noise is large on width-64 models); an all-zero (cosine NaN) or rescaled gradient fails.
 */
const Q4_SANITY = { cosine: 0.3, normRatio: [0.5, 2] as const };

const MODELS = [
  { name: 'stories260K', dir: 'golden/stories260K-hf/f32' },
  { name: 'tiny-llama31-random', dir: 'golden/tiny-llama31-random' },
];

/** The checkpoint with every 2-D weight replaced by dequantizeQ4(quantizeQ4(w)), read as f32. */
function dequantized(ck: Checkpoint): { readTensor(name: string): Promise<Float32Array> } {
  return {
    async readTensor(name) {
      const w = await ck.readTensor(name);
      const shape = ck.tensors.get(name)!.shape;
      return shape.length === 2 ? dequantizeQ4(quantizeQ4(w, shape[0], shape[1])) : w;
    },
  };
}

const flat = (w: LoraWeights) => concatAll([...loraPairs(w)].flatMap(({ pair }) => [pair.A, pair.B]));

for (const m of MODELS) {
  describe.skipIf(!HAS_SHARED)(`LoRA golden ${m.name} (CPU)`, () => {
    let g: GoldenLora;
    let ck: Checkpoint;
    let cpu: CpuLlama;
    let loraCfg: LoraConfig;
    const file = (suffix: string) => new Uint8Array(readFileSync(sharedPath('golden', `lora-${m.name}-${suffix}.safetensors`)));
    const load = (suffix: string, opts = {}): LoraWeights => loadLora(file(suffix), cpu.config, loraCfg, { name: suffix, ...opts });
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

    beforeAll(async () => {
      g = JSON.parse(readFileSync(sharedPath('golden', `lora-${m.name}.json`), 'utf8'));
      ck = await openCheckpoint(new NodeDirSource(sharedPath(m.dir)));
      cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: 64 });
      loraCfg = { rank: g.rank, alpha: g.alpha, targets: [...PROJECTIONS] };
      expect(g.targets).toEqual([...PROJECTIONS]);
      expect(g.ttt_losses_before_each_step).toHaveLength(5);
    });

    it('loss and every gradient at the point near the golden', () => {
      const point = load('point');
      const trainer = new CpuTrainer(cpu, point);
      const { loss, grads } = trainer.lossAndGrads(g.ids, g.loss_mask);
      expectBelow(`cpu ${m.name} loss at the point (rel)`, rel(loss, g.loss_at_point), F32.loss);
      const ref = load('grads', { suffix: '.grad' });
      let worst = 0, worstName = '', n = 0;
      for (const { layer, target, pair } of loraPairs(grads)) {
        const r = ref.layers[layer][target]!;
        const names = loraTensorNames(layer, target, '.grad');
        for (const [name, a, b] of [[names.A, pair.A, r.A], [names.B, pair.B, r.B]] as const) {
          const e = relErr(a, b);
          n++;
          if (!(e <= worst)) { worst = e; worstName = name; }
        }
      }
      expect(n).toBe(2 * PROJECTIONS.length * cpu.config.numLayers);
      expectBelow(`cpu ${m.name} worst gradient (rel, ${worstName})`, worst, F32.grad);
    });

    it('5-step Adam trajectory: losses and final A/B near the golden', async () => {
      const lora = load('point');
      zeroB(lora);
      const trainer = new CpuTrainer(cpu, lora);
      const a = g.adam;
      const steps: number[] = [];
      const r = await trainer.train(g.ids, g.loss_mask, { steps: 5, lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay }, (e) => steps.push(e.step));
      expect(steps).toEqual([1, 2, 3, 4, 5]);
      const want = [...g.ttt_losses_before_each_step, g.ttt_loss_after_last_step];
      const got = [...r.losses, r.finalLoss];
      expect(got).toHaveLength(want.length);
      expectBelow(`cpu ${m.name} trajectory worst loss (rel)`, Math.max(...got.map((x, i) => rel(x, want[i]))), F32.trajLoss);
      expect(r.lossAtStart).toBe(r.losses[0]);
      expect(r.tokensTrained).toBe(g.loss_mask.slice(1).filter((x) => x === 1).length);
      const fin = load('ttt-final');
      let worst = 0;
      for (const { layer, target, pair } of loraPairs(lora)) {
        const f = fin.layers[layer][target]!;
        worst = Math.max(worst, relErr(pair.A, f.A), relErr(pair.B, f.B));
      }
      expectBelow(`cpu ${m.name} final A/B worst (rel)`, worst, F32.finalAB);
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

    it('4-bit weights: exactly the f32 trainer on the dequantized weights; loss falls; near the f32 golden (sanity)', async () => {
      // Every matrix 4-bit, the head too (the default head is 8-bit): `dequantized` mirrors exactly that.
      const q4 = await CpuLlama.load(ck.config, ck, { weights: 'q4', lmHead: 'q4', maxContext: 64 });
      const deq = await CpuLlama.load(ck.config, dequantized(ck), { weights: 'f32', maxContext: 64 });
      const q = new CpuTrainer(q4, load('point')).lossAndGrads(g.ids, g.loss_mask);
      const d = new CpuTrainer(deq, load('point')).lossAndGrads(g.ids, g.loss_mask);
      // The 4-bit reference the GPU is held to is the golden-checked f32 code on w = dequant(quant(w)).
      expect(q.loss).toBe(d.loss);
      expect(Array.from(flat(q.grads))).toEqual(Array.from(flat(d.grads)));
      const golden = load('grads', { suffix: '.grad' });
      const s = vectorAgreement(flat(q.grads), flat(golden));
      console.log(`[lora golden q4 ${m.name}] all grads vs f32 golden: rel ${s.rel.toFixed(3)}, cosine ${s.cosine.toFixed(3)}, norm ratio ${s.normRatio.toFixed(3)}; loss ${q.loss.toFixed(4)} vs ${g.loss_at_point.toFixed(4)}`);
      expect(s.cosine).toBeGreaterThan(Q4_SANITY.cosine);
      expect(s.normRatio).toBeGreaterThan(Q4_SANITY.normRatio[0]);
      expect(s.normRatio).toBeLessThan(Q4_SANITY.normRatio[1]);
      const lora = load('point');
      zeroB(lora);
      const a = g.adam;
      const r = await new CpuTrainer(q4, lora).train(g.ids, g.loss_mask, { steps: 5, lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps });
      const seq = [...r.losses, r.finalLoss];
      expect(seq).toHaveLength(6);
      for (let i = 1; i < seq.length; i++) expect(seq[i]).toBeLessThan(seq[i - 1]);
    });
  });
}
