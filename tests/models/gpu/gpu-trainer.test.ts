import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../../models/gpu/gpu-trainer.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { cloneLora, DEFAULT_LORA, initLora, loadLora, loraPairs, saveLora, type LoraWeights } from '../../../models/lora/adapter.ts';
import { expectNoGpuErrors, gpuContext, relErr } from '../../helpers/gpu.ts';
import { mulberry32, writeRandomLlama } from '../../helpers/random-model.ts';

/** Tensors probed by finite differences: A and B, attention and MLP, both layers. */
const FD_TENSORS = [[0, 'q_proj', 'A'], [0, 'v_proj', 'B'], [1, 'o_proj', 'A'], [1, 'gate_proj', 'B'], [1, 'down_proj', 'A'], [0, 'up_proj', 'B'], [1, 'k_proj', 'B']] as const;
/** Random unit directions per tensor (a 14% error orthogonal to g measured 0.04 .. 0.34 with 4). */
const FD_DIRECTIONS = 4;
/** Step along a unit direction: large enough that the f32 loss noise / h stays small. */
const FD_H = 5e-2;
/** Directional error over directional derivative: measured 1.9e-4 .. 2.0e-3, x 10. */
const FD_BOUND = 2e-2;

// The WebGPU trainer on a seeded random model the test generates, so a fresh clone without
// ../shared still checks the backward pass: finite differences, cancellation, bad input.
describe('GpuTrainer on a seeded random model (Dawn)', () => {
  let dir: string;
  let ck: Checkpoint;
  const T = 24;
  const ids = Array.from({ length: T }, (_, i) => (i * 29 + 3) % 120);
  const mask = ids.map((_, t) => (t >= 8 ? 1 : 0));
  const withRandomB = (seed: number): LoraWeights => {
    const lora = initLora(ck.config, { ...DEFAULT_LORA, rank: 4, alpha: 8 }, seed);
    const rand = mulberry32(seed + 1);
    for (const { pair } of loraPairs(lora)) for (let i = 0; i < pair.B.length; i++) pair.B[i] = (rand() * 2 - 1) * 0.1;
    return lora;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpu-ttt-'));
    await writeRandomLlama(dir, { seed: 21, hiddenSize: 64, intermediateSize: 136, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 120, ropeScaling: true, tie: false });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  expectNoGpuErrors();
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gradients agree with central finite differences of the GPU loss along random directions (A and B of several projections)', async () => {
    const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    const lora = withRandomB(7);
    const t = await GpuTrainer.create(m, lora, { maxTokens: 32 });
    await t.lossAndGrads(ids, mask);
    const grads = await t.lora.read(t.lora.trainingBuffers().grads);
    const rand = mulberry32(99);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const unit = (n: number) => { const u = Float64Array.from({ length: n }, gauss); const s = Math.hypot(...u); return u.map((v) => v / s); };
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
    const report: string[] = [];
    for (const [layer, target, which] of FD_TENSORS) {
      const g = grads.get(`${layer}.${target}`)![which];
      expect(g.length).toBe(lora.layers[layer][target]![which].length);
      const lossAt = async (u: Float64Array, sign: number) => {
        const w = cloneLora(lora);
        const p = w.layers[layer][target]![which];
        for (let i = 0; i < p.length; i++) p[i] += sign * FD_H * u[i];
        t.lora.upload(w);
        return t.loss(ids, mask);
      };
      // A random direction u sees every component of an error e equally: (g + e).u vs g.u, so
      // the directional error over the directional derivative is about |e| / |g| whatever e's
      // direction (along g alone, an error orthogonal to g would show only squared).
      const fd: number[] = [], an: number[] = [], dirs: Float64Array[] = [];
      for (let k = 0; k < FD_DIRECTIONS; k++) {
        const u = unit(g.length);
        dirs.push(u);
        fd.push(((await lossAt(u, 1)) - (await lossAt(u, -1))) / (2 * FD_H));
        an.push(dot(g, u));
      }
      const err = (a: number[]) => Math.sqrt(a.reduce((s, v, i) => s + (v - fd[i]) ** 2, 0) / fd.reduce((s, v) => s + v * v, 0));
      const rel = err(an);
      // The same check on a gradient with a 14% error orthogonal to g must fail: the check sees it.
      const r = unit(g.length), rg = dot(r, g) / dot(g, g);
      const e = r.map((v, i) => v - rg * g[i]);
      const eScale = (0.14 * Math.hypot(...g)) / Math.hypot(...e);
      const wrong = Float64Array.from(g, (v, i) => v + eScale * e[i]);
      const seen = err(dirs.map((u) => dot(wrong, u)));
      report.push(`${layer}.${target}.${which} ${rel.toExponential(1)} (14% orthogonal error: ${seen.toFixed(3)})`);
      expect(rel, `${layer}.${target}.${which}: analytic ${an} vs fd ${fd}`).toBeLessThan(FD_BOUND);
      expect(seen, `${layer}.${target}.${which}: a 14% orthogonal error must fail the check`).toBeGreaterThan(FD_BOUND);
    }
    console.log(`[gpu ttt finite differences] relative error per tensor over ${FD_DIRECTIONS} random directions: ${report.join(', ')}`);
    m.dispose();
  });

  it('the loss head in several row chunks gives the same loss and gradients as one chunk', async () => {
    const long = Array.from({ length: 150 }, (_, i) => (i * 17 + 1) % 120);
    const longMask = long.map((_, t) => (t % 3 === 0 ? 0 : 1));
    const run = async (chunkRows?: number) => {
      const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 160 });
      const t = await GpuTrainer.create(m, withRandomB(4), { maxTokens: 160, chunkRows });
      const loss = await t.lossAndGrads(long, longMask);
      const grads = await t.lora.read(t.lora.trainingBuffers().grads);
      m.dispose();
      return { loss, grads };
    };
    const one = await run(), three = await run(64); // 150 rows = 64 + 64 + 22
    expect(Math.abs(three.loss - one.loss) / one.loss).toBeLessThan(1e-6);
    expect([...three.grads.keys()]).toEqual([...one.grads.keys()]);
    expect(one.grads.size).toBe(7 * ck.config.numLayers);
    for (const [key, g] of one.grads) {
      const h = three.grads.get(key)!;
      for (const w of ['A', 'B'] as const) expect(relErr(h[w], g[w]), key + w).toBeLessThan(1e-5);
    }
  });

  it('cancellation mid-training leaves the model usable and reset clears the partial update', async () => {
    const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    const base = await m.forward(ids, { allLogits: true });
    const t = await GpuTrainer.create(m, initLora(ck.config, DEFAULT_LORA, 1), { maxTokens: 32 });
    const ac = new AbortController();
    const seen: number[] = [];
    await expect(t.train(ids, mask, { steps: 50, lr: 1e-2, signal: ac.signal }, (e) => { seen.push(e.loss); if (e.step === 2) ac.abort(); })).rejects.toMatchObject({ code: 'aborted' });
    expect(seen).toHaveLength(2);
    m.resetCache();
    expect(Array.from(await m.forward(ids, { allLogits: true }))).not.toEqual(Array.from(base)); // 2 steps applied
    t.reset();
    m.resetCache();
    expect(Array.from(await m.forward(ids, { allLogits: true }))).toEqual(Array.from(base));
    const again = await t.train(ids, mask, { steps: 2, lr: 1e-2 });
    expect(again.losses[1]).toBeLessThan(again.losses[0]);
    expect(again.losses[0]).toBeCloseTo(seen[0], 5); // the same start as the cancelled run
    m.dispose();
  });

  it('bad input: no active target, ids outside the vocabulary, too long, another shape of adapter', async () => {
    const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    const t = await GpuTrainer.create(m, initLora(ck.config, DEFAULT_LORA, 1), { maxTokens: 32 });
    await expect(t.train(ids, ids.map(() => 0), { steps: 1, lr: 1e-3 })).rejects.toThrow(/selects no token/);
    await expect(t.train([...ids.slice(0, -1), 120], mask, { steps: 1, lr: 1e-3 })).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(t.train(Array(33).fill(1), Array(33).fill(1), { steps: 1, lr: 1e-3 })).rejects.toThrow(/exceeds/);
    const other = initLora({ ...ck.config, hiddenSize: 32 }, { ...DEFAULT_LORA, rank: 4, alpha: 8 }, 1);
    expect(() => loadLora(saveLora(other), ck.config, { ...DEFAULT_LORA, rank: 4, alpha: 8 })).toThrow(expect.objectContaining({ code: 'weights-mismatch' }));
    // Still usable after the refusals.
    const r = await t.train(ids, mask, { steps: 1, lr: 1e-3 });
    expect(Number.isFinite(r.finalLoss)).toBe(true);
    m.dispose();
  });
});
