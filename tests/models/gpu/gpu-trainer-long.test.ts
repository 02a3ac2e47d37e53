/**
 * Training at length (issue 9, item 4): the trainer's attention runs in blocks of query rows, so
 * its probabilities are (H, rows, T) f32, not (H, T, T), and they live in the model's idle prefill
 * score buffer. At 2048 tokens with 16 heads the unblocked (H, T, T) buffer (256 MiB) would break
 * lavapipe's 128 MiB binding limit: loss and gradients still equal the CPU trainer's. The MLP runs
 * in blocks of token rows, so its (rows, F) scratch stays within the limit at any length (checked
 * under a forced 512 KiB limit against the CPU trainer). Several blocks equal one block at a small
 * T; a length whose buffers cannot fit is refused with a typed error before anything is allocated.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { CpuLlama } from '../../../models/cpu/cpu-llama.ts';
import { CpuTrainer } from '../../../models/cpu/cpu-trainer.ts';
import { DeviceLimitsError } from '../../../models/errors.ts';
import type { GpuContext } from '../../../models/gpu/device.ts';
import { GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../../models/gpu/gpu-trainer.ts';
import { initLora, loraPairs, type LoraWeights } from '../../../models/lora/adapter.ts';
import { planMemory } from '../../../models/memory-plan.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { concatAll, expectBelow, expectNoGpuErrors, gpuContext, printMeasured, relErr } from '../../helpers/gpu.ts';
import { mulberry32, writeRandomLlama } from '../../helpers/random-model.ts';

const H = 16, T_LONG = 2048;

describe('GpuTrainer at length: attention in query blocks (Dawn)', () => {
  let dir: string;
  let ck: Checkpoint;
  const lora = (model = ck): LoraWeights => {
    const l = initLora(model.config, { rank: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, 3);
    const rand = mulberry32(4);
    for (const { pair } of loraPairs(l)) for (let i = 0; i < pair.B.length; i++) pair.B[i] = (rand() * 2 - 1) * 0.1;
    return l;
  };
  const sequence = (T: number) => {
    const ids = Array.from({ length: T }, (_, i) => (i * 37 + 5) % 96);
    return { ids, mask: ids.map((_, t) => (t >= 16 ? 1 : 0)) };
  };
  const flat = (g: Map<string, { A: Float32Array; B: Float32Array }>, ref: LoraWeights) =>
    concatAll([...loraPairs(ref)].flatMap(({ layer, target }) => [g.get(`${layer}.${target}`)!.A, g.get(`${layer}.${target}`)!.B]));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpu-ttt-long-'));
    // Narrow and many-headed: 16 heads of dim 4 (GQA groups of 4), so the attention dominates.
    await writeRandomLlama(dir, { seed: 13, hiddenSize: 64, intermediateSize: 96, numLayers: 1, numHeads: H, numKvHeads: 4, vocabSize: 96, tie: false });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  expectNoGpuErrors();
  printMeasured('ttt at length');
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function gpuRun(ctx: GpuContext, T: number, maxTokens: number, queryRows?: number, mlpRows?: number, model = ck) {
    const m = await GpuLlama.load(model, ctx, { weights: 'f32', maxContext: maxTokens });
    const t = await GpuTrainer.create(m, lora(model), { maxTokens, queryRows, mlpRows });
    const { ids, mask } = sequence(T);
    const t0 = performance.now();
    const loss = await t.lossAndGrads(ids, mask);
    const ms = performance.now() - t0;
    const grads = flat(await t.lora.read(t.lora.trainingBuffers().grads), lora(model));
    const live = m.alloc.liveBuffers();
    await t.dispose();
    m.dispose();
    return { loss, grads, ms, live };
  }

  it(`${T_LONG} tokens, 16 heads: the (H, T, T) probabilities would break the binding limit; loss and gradients equal the CPU trainer`, async () => {
    const ctx = await gpuContext(false);
    const limit = ctx.limits.maxStorageBufferBindingSize;
    expect(H * T_LONG * T_LONG * 4).toBeGreaterThan(limit); // 256 MiB vs lavapipe's 128 MiB
    const plan = planMemory(ck.config, { weights: 'f32', precision: 'f32', maxContext: T_LONG, limits: ctx.limits, ttt: { ...lora().config, maxTokens: T_LONG } });
    expect(plan.options.ttt!.attentionBlocks).toBeGreaterThan(1);
    expect(plan.options.ttt!.sharedProbs).toBe(true);
    const gpu = await gpuRun(ctx, T_LONG, T_LONG);
    // No trainer buffer of its own for the probabilities, and none over the limit.
    expect(gpu.live.filter((b) => b.label === 'probs')).toEqual([]);
    expect(gpu.live.filter((b) => b.size > limit)).toEqual([]);
    expect(gpu.live.filter((b) => b.label.startsWith('ttt attn run')).length).toBe(plan.options.ttt!.attentionBlocks);

    const { ids, mask } = sequence(T_LONG);
    const c0 = performance.now();
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'f32', maxContext: T_LONG });
    const ref = new CpuTrainer(cpu, lora()).lossAndGrads(ids, mask);
    const cpuMs = performance.now() - c0;
    const refGrads = concatAll([...loraPairs(ref.grads)].flatMap(({ pair }) => [pair.A, pair.B]));
    expect(gpu.grads.length).toBe(refGrads.length);
    console.log(`[ttt at length] ${T_LONG} tokens, ${plan.options.ttt!.attentionBlocks} query blocks of ${plan.options.ttt!.queryRows}: GPU step ${gpu.ms.toFixed(0)} ms, CPU reference ${cpuMs.toFixed(0)} ms`);
    // f32 on both sides: measured loss 2.3e-8, gradients 1.6e-7 relative; bounds x ~10-40.
    expectBelow(`${T_LONG} tokens: loss vs CPU (rel)`, Math.abs(gpu.loss - ref.loss) / ref.loss, 1e-6);
    expectBelow(`${T_LONG} tokens: grads relErr vs CPU`, relErr(gpu.grads, refGrads), 2e-6);
  }, 300_000);

  for (const f16 of [false, true]) {
    it(`several query blocks (a partial last one) equal one block: ${f16 ? 'f16' : 'f32'} activations`, async () => {
      const ctx = await gpuContext(f16);
      const T = 200;
      const one = await gpuRun(ctx, T, 256, 256);
      const many = await gpuRun(ctx, T, 256, 48); // blocks of 48, 48, 48, 48, 8 rows
      expect(many.live.filter((b) => b.label.startsWith('ttt attn run')).length).toBe(Math.ceil(256 / 48));
      expect(one.live.filter((b) => b.label.startsWith('ttt attn run')).length).toBe(1);
      expect(many.grads.length).toBe(one.grads.length);
      // Only the order of the key-gradient sums differs (dk, dv over the blocks): measured loss
      // identical (0), gradients 1.2e-7 (f32) and 1.4e-7 (f16) relative; bounds x ~10.
      expectBelow(`${f16 ? 'f16' : 'f32'}: blocks vs one block loss (rel)`, Math.abs(many.loss - one.loss) / one.loss, 1e-7);
      expectBelow(`${f16 ? 'f16' : 'f32'}: blocks vs one block grads relErr`, relErr(many.grads, one.grads), 2e-6);
    }, 120_000);
  }

  for (const f16 of [false, true]) {
    it(`the MLP in several row blocks (a partial last one) equals one block: ${f16 ? 'f16' : 'f32'} activations`, async () => {
      const ctx = await gpuContext(f16);
      const T = 200;
      const one = await gpuRun(ctx, T, 256, undefined, 256);
      const many = await gpuRun(ctx, T, 256, undefined, 64); // blocks of 64, 64, 64, 8 rows
      expect(many.live.filter((b) => b.label.startsWith('ttt mlp run')).length).toBe(4);
      expect(one.live.filter((b) => b.label.startsWith('ttt mlp run')).length).toBe(1);
      expect(many.live.find((b) => b.label === 'dact')!.size).toBe(64 * 96 * 4);
      expect(many.grads.length).toBe(one.grads.length);
      // Only the order of the LoRA gradient sums of the MLP targets differs (over the blocks):
      // measured loss identical (0), gradients 4e-8 (f32) and 5e-8 (f16) relative; bounds x ~20.
      expectBelow(`${f16 ? 'f16' : 'f32'}: MLP blocks vs one block loss (rel)`, Math.abs(many.loss - one.loss) / one.loss, 1e-7);
      expectBelow(`${f16 ? 'f16' : 'f32'}: MLP blocks vs one block grads relErr`, relErr(many.grads, one.grads), 1e-6);
    }, 120_000);
  }

  it('binding limit forced to 512 KiB: the unblocked (1024, F) f32 MLP gradients (768 KiB) would break it; blocked, loss and gradients equal the CPU trainer', async () => {
    const wide = await mkdtemp(join(tmpdir(), 'gpu-ttt-wide-'));
    try {
      await writeRandomLlama(wide, { seed: 17, hiddenSize: 64, intermediateSize: 192, numLayers: 1, numHeads: 4, numKvHeads: 2, vocabSize: 96, tie: false });
      const model = await openCheckpoint(new NodeDirSource(wide));
      const base = await gpuContext(false);
      const limit = 512 * 1024, T = 1024;
      const ctx: GpuContext = { ...base, limits: { maxBufferSize: base.limits.maxBufferSize, maxStorageBufferBindingSize: limit } };
      expect(T * 192 * 4).toBeGreaterThan(limit);
      const plan = planMemory(model.config, { weights: 'f32', precision: 'f32', maxContext: T, limits: ctx.limits, ttt: { ...lora(model).config, maxTokens: T } });
      expect(plan.options.ttt!.mlpBlocks).toBeGreaterThan(1);
      const gpu = await gpuRun(ctx, T, T, undefined, undefined, model);
      expect(gpu.live.filter((b) => b.size > limit)).toEqual([]);
      expect(gpu.live.filter((b) => b.label.startsWith('ttt mlp run')).length).toBe(plan.options.ttt!.mlpBlocks);
      const { ids, mask } = sequence(T);
      const cpu = await CpuLlama.load(model.config, model, { weights: 'f32', maxContext: T });
      const ref = new CpuTrainer(cpu, lora(model)).lossAndGrads(ids, mask);
      const refGrads = concatAll([...loraPairs(ref.grads)].flatMap(({ pair }) => [pair.A, pair.B]));
      expect(gpu.grads.length).toBe(refGrads.length);
      console.log(`[ttt at length] ${T} tokens under a 512 KiB binding limit: ${plan.options.ttt!.mlpBlocks} MLP blocks of ${plan.options.ttt!.mlpRows} rows, ${plan.options.ttt!.attentionBlocks} query blocks of ${plan.options.ttt!.queryRows}`);
      // f32 on both sides: bounds as the 2048-token case above.
      expectBelow(`${T} tokens, 512 KiB limit: loss vs CPU (rel)`, Math.abs(gpu.loss - ref.loss) / ref.loss, 1e-6);
      expectBelow(`${T} tokens, 512 KiB limit: grads relErr vs CPU`, relErr(gpu.grads, refGrads), 2e-6);
    } finally {
      await rm(wide, { recursive: true, force: true });
    }
  }, 300_000);

  it('a length whose buffers break the limits is refused with DeviceLimitsError before anything is allocated; queryRows is checked', async () => {
    const base = await gpuContext(false);
    // 256 KiB: the model loads (its prefill chunk shrinks to fit), the trainer's (2048, C) f32 gradients (512 KiB) cannot.
    const ctx: GpuContext = { ...base, limits: { maxBufferSize: base.limits.maxBufferSize, maxStorageBufferBindingSize: 256 * 1024 } };
    const m = await GpuLlama.load(ck, ctx, { weights: 'f32', maxContext: T_LONG });
    try {
      const before = m.alloc.liveBuffers().length;
      let err: unknown;
      try { await GpuTrainer.create(m, lora(), { maxTokens: T_LONG }); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(DeviceLimitsError);
      expect((err as DeviceLimitsError).message).toMatch(/needs .*maxStorageBufferBindingSize is 262144 bytes/);
      expect((err as DeviceLimitsError).message).toMatch(/TTT length \(2048 tokens\)/);
      expect((err as DeviceLimitsError).message).not.toMatch(/\b(dact|dup|gate|up|act) needs/); // the MLP runs in row blocks
      expect(m.alloc.liveBuffers().length).toBe(before);
      // A shorter length fits on the same device.
      const t = await GpuTrainer.create(m, lora(), { maxTokens: 256 });
      await t.dispose();
      await expect(GpuTrainer.create(m, lora(), { maxTokens: 256, queryRows: 0 })).rejects.toThrow(/queryRows must be a positive multiple/);
      await expect(GpuTrainer.create(m, lora(), { maxTokens: 256, mlpRows: 32 })).rejects.toThrow(/mlpRows must be a positive multiple of 64/);
    } finally {
      m.dispose();
    }
  }, 120_000);
});
