/**
 * The CPU trainer on seeded random models written by the test (no ../shared needed): a
 * finite-difference check of the full-model LoRA gradient, cancellation, reset and bad inputs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../models/checkpoint.ts';
import { PROJECTIONS, type Projection } from '../../../models/config.ts';
import { CpuLlama } from '../../../models/cpu/cpu-llama.ts';
import { CpuTrainer } from '../../../models/cpu/cpu-trainer.ts';
import { AbortError, InvalidInputError } from '../../../models/errors.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { cloneLora, initLora, loraPairs, zeroLora, type LoraWeights } from '../../../models/lora/adapter.ts';
import { mulberry32, writeRandomLlama, type RandomLlamaOptions } from '../../helpers/random-model.ts';

const MODELS: [string, RandomLlamaOptions][] = [
  ['untied, llama3 rope, GQA 4:2', { seed: 7, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 40, ropeScaling: true }],
  ['tied, MHA', { seed: 8, hiddenSize: 16, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 2, vocabSize: 30, tie: true }],
];

let root: string;
beforeAll(async () => { root = await mkdtemp(join(tmpdir(), 'ttt-')); });
afterAll(async () => { await rm(root, { recursive: true, force: true }); });

async function loadRandom(opts: RandomLlamaOptions, maxContext = 32): Promise<CpuLlama> {
  const dir = join(root, `m${opts.seed}`);
  await writeRandomLlama(dir, opts);
  const ck = await openCheckpoint(new NodeDirSource(dir));
  return CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext });
}

/** A point with A from the seeded init and B random (so dA is non-zero). */
function randomPoint(cpu: CpuLlama, seed: number, targets: Projection[] = [...PROJECTIONS]): LoraWeights {
  const lora = initLora(cpu.config, { rank: 2, alpha: 4, targets }, seed);
  const rand = mulberry32(seed + 1);
  for (const { pair } of loraPairs(lora)) for (let i = 0; i < pair.B.length; i++) pair.B[i] = 0.3 * (2 * rand() - 1);
  return lora;
}

function sequence(V: number, T: number, prompt: number, seed: number): { ids: number[]; mask: number[] } {
  const rand = mulberry32(seed);
  const ids = Array.from({ length: T }, () => Math.floor(rand() * V));
  return { ids, mask: ids.map((_, t) => (t >= prompt ? 1 : 0)) };
}

describe('full-model LoRA gradient vs central finite differences', () => {
  for (const [label, opts] of MODELS) {
    it(label, async () => {
      const cpu = await loadRandom(opts);
      const lora = randomPoint(cpu, 3);
      const { ids, mask } = sequence(opts.vocabSize, 12, 4, 5);
      const trainer = new CpuTrainer(cpu, lora);
      const { grads } = trainer.lossAndGrads(ids, mask);
      const rand = mulberry32(11);
      const h = 3e-3; // measured: f32 rounding noise and O(h^2) both stay below 1e-4 relative here
      const errs: string[] = [];
      // One directional check per (target, A|B) over all layers, so a wrong op in any branch shows.
      // Direction u = g/|g| + r/|r| (r random): its derivative is about |g|, well above the f32
      // noise of the loss, and the random part still probes every component.
      for (const target of PROJECTIONS) {
        for (const which of ['A', 'B'] as const) {
          const gs = [...loraPairs(grads)].filter((p) => p.target === target).map((p) => p.pair[which]);
          const rs = gs.map((g) => Float32Array.from(g, () => 2 * rand() - 1));
          const norm = (xs: Float32Array[]) => Math.sqrt(xs.reduce((s, x) => s + x.reduce((a, v) => a + v * v, 0), 0));
          const gn = norm(gs), rn = norm(rs);
          const us = gs.map((g, j) => g.map((v, i) => v / gn + rs[j][i] / rn));
          const dirs = new Map<Float32Array, Float32Array>();
          [...loraPairs(lora)].filter((p) => p.target === target).forEach((p, j) => dirs.set(p.pair[which], us[j]));
          let analytic = 0;
          gs.forEach((g, j) => g.forEach((v, i) => (analytic += v * us[j][i])));
          const shifted = (sign: number) => {
            const p = cloneLora(lora);
            for (const { layer, target: t } of loraPairs(lora)) {
              if (t !== target) continue;
              const u = dirs.get(lora.layers[layer][t]![which])!;
              const a = p.layers[layer][t]![which];
              for (let i = 0; i < a.length; i++) a[i] += sign * h * u[i];
            }
            return trainer.loss(ids, mask, p);
          };
          const fd = (shifted(1) - shifted(-1)) / (2 * h);
          const rel = Math.abs(fd - analytic) / Math.max(Math.abs(fd), Math.abs(analytic));
          errs.push(`${target}.${which} ${rel.toExponential(1)}`);
          expect(Math.abs(analytic), `${target}.${which} gradient is not trivially zero`).toBeGreaterThan(1e-4);
          expect(rel, `${target}.${which}: analytic ${analytic} vs fd ${fd}`).toBeLessThan(1e-3);
        }
      }
      console.log(`[fd ${label}] ${errs.join(', ')}`);
    });
  }

  it('a subset of targets gets gradients only there (and equal to the all-target run)', async () => {
    const cpu = await loadRandom(MODELS[0][1]);
    const all = randomPoint(cpu, 3);
    const { ids, mask } = sequence(40, 12, 4, 5);
    const sub = zeroLora(cpu.config, { rank: 2, alpha: 4, targets: ['v_proj', 'down_proj'] });
    // same A/B on v/down, zero B elsewhere: the model is the same, so dv/ddown must match
    const allZeroOthers = cloneLora(all);
    for (const { target, pair } of loraPairs(allZeroOthers)) if (target !== 'v_proj' && target !== 'down_proj') pair.B.fill(0);
    for (const { layer, target, pair } of loraPairs(sub)) {
      pair.A.set(all.layers[layer][target]!.A);
      pair.B.set(all.layers[layer][target]!.B);
    }
    const trainer = new CpuTrainer(cpu, sub);
    const a = trainer.lossAndGrads(ids, mask);
    const b = trainer.lossAndGrads(ids, mask, allZeroOthers);
    expect(a.loss).toBeCloseTo(b.loss, 6);
    expect(a.grads.config.targets).toEqual(['v_proj', 'down_proj']);
    expect([...loraPairs(a.grads)]).toHaveLength(2 * cpu.config.numLayers);
    for (const { layer, target, pair } of loraPairs(a.grads)) {
      const ref = b.grads.layers[layer][target]!;
      expect(pair.A.length).toBe(ref.A.length);
      expect(pair.B.length).toBe(ref.B.length);
      for (let i = 0; i < pair.A.length; i++) expect(pair.A[i]).toBeCloseTo(ref.A[i], 6);
      for (let i = 0; i < pair.B.length; i++) expect(pair.B[i]).toBeCloseTo(ref.B[i], 6);
    }
  });
});

describe('train / reset / cancellation', () => {
  it('loss decreases, cancellation applies whole steps only, reset restores the base model', async () => {
    const cpu = await loadRandom(MODELS[0][1]);
    const { ids, mask } = sequence(40, 16, 5, 21);
    const fresh = () => initLora(cpu.config, { rank: 4, alpha: 8, targets: [...PROJECTIONS] }, 1);
    const opts = { steps: 4, lr: 1e-2 };

    const full = new CpuTrainer(cpu, fresh());
    const r = await full.train(ids, mask, opts);
    expect(r.losses).toHaveLength(4);
    for (let i = 1; i < 4; i++) expect(r.losses[i]).toBeLessThan(r.losses[i - 1]);
    expect(r.finalLoss).toBeLessThan(r.losses[3]);
    expect(r.tokensTrained).toBe(11);

    // steps: 0 only measures
    const zero = await new CpuTrainer(cpu, fresh()).train(ids, mask, { steps: 0, lr: 1e-2 });
    expect(zero.losses).toEqual([]);
    expect(zero.finalLoss).toBe(zero.lossAtStart);
    expect(zero.lossAtStart).toBe(r.losses[0]);

    // abort from inside step 2's callback: steps 1 and 2 applied, nothing after
    const ctl = new AbortController();
    const lora = fresh();
    const trainer = new CpuTrainer(cpu, lora);
    const seen: number[] = [];
    const err = await trainer.train(ids, mask, { ...opts, signal: ctl.signal }, (e) => {
      seen.push(e.step);
      if (e.step === 2) ctl.abort();
    }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(seen).toEqual([1, 2]);
    const two = new CpuTrainer(cpu, fresh());
    await two.train(ids, mask, { steps: 2, lr: 1e-2 });
    for (const { layer, target, pair } of loraPairs(lora)) {
      expect(pair.A).toEqual(two.lora.layers[layer][target]!.A);
      expect(pair.B).toEqual(two.lora.layers[layer][target]!.B);
    }
    // an abort from a timer lands between steps as well
    const ctl2 = new AbortController();
    const t2 = new CpuTrainer(cpu, fresh());
    const p = t2.train(ids, mask, { steps: 1000, lr: 1e-2, signal: ctl2.signal });
    setTimeout(() => ctl2.abort(), 20);
    await expect(p).rejects.toBeInstanceOf(AbortError);
    // already-aborted signal: nothing applied
    const t3 = new CpuTrainer(cpu, fresh());
    await expect(t3.train(ids, mask, { ...opts, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    for (const { pair } of loraPairs(t3.lora)) expect(pair.B.every((x) => x === 0)).toBe(true);

    // the interrupted model is usable, and reset clears the partial update
    expect(Number.isFinite(trainer.loss(ids, mask))).toBe(true);
    cpu.resetCache();
    const base = cpu.forward(ids, { allLogits: true });
    expect(trainer.generator().forward(ids, { allLogits: true })).not.toEqual(base);
    trainer.reset();
    const after = trainer.generator().forward(ids, { allLogits: true });
    expect(Buffer.from(after.buffer)).toEqual(Buffer.from(base.buffer));
    const again = await trainer.train(ids, mask, opts);
    expect(again.losses).toEqual(r.losses); // A restored and Adam moments cleared: a fresh run
  });

  it('weight decay and gradient clipping change the update as configured', async () => {
    const cpu = await loadRandom(MODELS[0][1]);
    const { ids, mask } = sequence(40, 12, 4, 5);
    const events: number[] = [];
    const t = new CpuTrainer(cpu, randomPoint(cpu, 3));
    await t.train(ids, mask, { steps: 1, lr: 1e-3, maxGradNorm: 1e-3 }, (e) => {
      expect(e.gradNorm).toBeGreaterThan(1e-3);
      events.push(e.clipScale);
    });
    expect(events[0]).toBeLessThan(1);
  });
});

describe('bad inputs -> InvalidInputError', () => {
  it('rejects mask without targets, ids out of vocabulary, too long sequences, length mismatch, bad options', async () => {
    const cpu = await loadRandom(MODELS[0][1], 16);
    const t = new CpuTrainer(cpu, initLora(cpu.config, { rank: 2, alpha: 4, targets: ['q_proj'] }, 1));
    const ok = [1, 2, 3, 4];
    const cases: [() => unknown, RegExp][] = [
      [() => t.lossAndGrads(ok, [0, 0, 0, 0]), /selects no token/],
      [() => t.lossAndGrads(ok, [1, 0, 0, 0]), /selects no token/], // token 0 is never predicted
      [() => t.lossAndGrads([1], [1]), /selects no token/],
      [() => t.lossAndGrads([], []), /at least two tokens/],
      [() => t.lossAndGrads([1, 40, 3], [0, 1, 1]), /Token id 40 is outside the vocabulary/],
      [() => t.lossAndGrads([1, -1, 3], [0, 1, 1]), /Token id -1/],
      [() => t.lossAndGrads([1, 2.5, 3], [0, 1, 1]), /Token id 2.5/],
      [() => t.lossAndGrads(new Array(17).fill(1), new Array(17).fill(1)), /17 tokens exceeds the context of 16/],
      [() => t.lossAndGrads(ok, [0, 1, 1]), /3 entries but there are 4 ids/],
      [() => t.lossAndGrads(ok, [0, 1, 2, 1]), /must be 0 or 1/],
    ];
    for (const [f, msg] of cases) {
      expect(f).toThrow(InvalidInputError);
      expect(f).toThrow(msg);
    }
    await expect(t.train(ok, [0, 0, 0, 0], { steps: 1, lr: 1e-3 })).rejects.toThrow(InvalidInputError);
    await expect(t.train(ok, [0, 1, 1, 1], { steps: -1, lr: 1e-3 })).rejects.toThrow(/steps/);
    await expect(t.train(ok, [0, 1, 1, 1], { steps: 1, lr: Number.NaN })).rejects.toThrow(/lr/);
    await expect(t.train(ok, [0, 1, 1, 1], { steps: 1, lr: 1e-3, beta2: 1 })).rejects.toThrow(/beta2/);
    expect(() => new CpuTrainer(cpu, zeroLora({ ...cpu.config, numLayers: 3 }, { rank: 2, alpha: 4, targets: ['q_proj'] }))).toThrow(/3 layers/);
  });
});
