/**
 * The memory plan (models/memory-plan.ts) against the allocator: seeded random models loaded on
 * Dawn (f16 and f32 activations, 4-bit and f32 weights, with and without a GpuTrainer) must give
 * exactly the plan's buffers (label, category, bytes), byCategory, total and peak. Then the plan at
 * FineMedLM-o1's real shape without loading anything, checked against device limits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finemedLayerConfig } from '../../scripts/bench/synthetic-checkpoint.ts';
import { measureTttMemory, TTT_MEMORY_DEFAULTS } from '../../scripts/bench/ttt-memory.ts';
import { openCheckpoint, type Checkpoint } from '../../models/checkpoint.ts';
import { PROJECTIONS, type LlamaConfig, type Projection } from '../../models/config.ts';
import { ConfigError, DeviceLimitsError, GpuOutOfMemoryError, InvalidInputError } from '../../models/errors.ts';
import type { GpuAllocator } from '../../models/gpu/allocator.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../models/gpu/gpu-trainer.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { initLora } from '../../models/lora/adapter.ts';
import { assertPlanFits, checkPlan, describePlan, planFromConfigJson, planMemory, type MemoryPlan, type MemoryPlanOptions } from '../../models/memory-plan.ts';
import { q4Bytes } from '../../models/quant/q4.ts';
import { q8Bytes } from '../../models/quant/q8.ts';
import { expectNoGpuErrors, gpuContext } from '../helpers/gpu.ts';
import { writeRandomLlama, type RandomLlamaOptions } from '../helpers/random-model.ts';

const MiB = 2 ** 20, GiB = 2 ** 30;

/** Sorted "category label bytes" lines: the plan's resident buffers vs the allocator's live ones. */
const planLines = (p: MemoryPlan) => p.buffers.filter((b) => b.phase === 'resident').map((b) => `${b.category} ${b.label} ${b.bytes}`).sort();
const liveLines = (a: GpuAllocator) => a.liveBuffers().map((b) => `${b.category} ${b.label} ${b.size}`).sort();

function expectPlanEqualsAllocator(plan: MemoryPlan, alloc: GpuAllocator, what: string): void {
  const live = liveLines(alloc), planned = planLines(plan);
  expect(planned.length, `${what}: buffer count`).toBe(live.length);
  expect(planned, what).toEqual(live);
  expect(plan.byCategory, what).toEqual(alloc.byCategory());
  expect(plan.total, what).toBe(alloc.total);
  expect(plan.peak, what).toBe(alloc.peak);
}

describe('memory plan equals the allocator on seeded random models (Dawn)', () => {
  const dirs: string[] = [];
  const models = new Map<string, Checkpoint>();
  const shapes: Record<string, RandomLlamaOptions> = {
    // K = 136 is not a multiple of 32 (q4 padding); GQA, untied head, llama3 rope.
    gqa: { seed: 31, hiddenSize: 64, intermediateSize: 136, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 120, ropeScaling: true },
    // MHA (KV * D = C: uniforms with equal contents coincide) and a tied head.
    mha: { seed: 32, hiddenSize: 64, intermediateSize: 96, numLayers: 1, numHeads: 4, numKvHeads: 4, vocabSize: 100, tie: true },
  };
  beforeAll(async () => {
    for (const [name, opts] of Object.entries(shapes)) {
      const dir = await mkdtemp(join(tmpdir(), `plan-${name}-`));
      dirs.push(dir);
      await writeRandomLlama(dir, opts);
      models.set(name, await openCheckpoint(new NodeDirSource(dir)));
    }
  });
  expectNoGpuErrors();
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const cases: { precision: 'f16' | 'f32'; weights: 'q4' | 'f32' }[] = [
    { precision: 'f16', weights: 'q4' }, { precision: 'f16', weights: 'f32' },
    { precision: 'f32', weights: 'q4' }, { precision: 'f32', weights: 'f32' },
  ];
  for (const { precision, weights } of cases) {
    it(`${precision} activations, ${weights} weights: after load, and after GpuTrainer.create (3 loss-head chunks)`, async () => {
      const ck = models.get('gqa')!;
      const ctx = await gpuContext(precision === 'f16');
      const base: MemoryPlanOptions = { weights, precision, maxContext: 160 };
      const m = await GpuLlama.load(ck, ctx, { weights, maxContext: 160 });
      try {
        const plan = planMemory(ck.config, base);
        expect(plan.options.maxBatch).toBe(m.maxBatch);
        expectPlanEqualsAllocator(plan, m.alloc, 'after load');
        // 4-bit: the quantizer's ~32 MiB staging, freed at the end of the upload, makes the high-water mark.
        const staging = plan.buffers.filter((b) => b.phase === 'load').reduce((s, b) => s + b.bytes, 0);
        if (weights === 'q4') {
          expect(staging).toBe(32 * MiB + 8 * 4 * 4096 + 16);
          expect(plan.peak).toBe(plan.byCategory.weights + plan.byCategory.kvCache + staging);
          expect(plan.peak).toBeGreaterThan(plan.total);
        } else {
          expect(staging).toBe(16);
          expect(plan.peak).toBe(plan.total);
        }

        const ttt = { rank: 4, alpha: 8, targets: [...PROJECTIONS], maxTokens: 150, chunkRows: 64 };
        const t = await GpuTrainer.create(m, initLora(ck.config, { rank: 4, alpha: 8, targets: [...PROJECTIONS] }, 1), { maxTokens: 150, chunkRows: 64 });
        const withTtt = planMemory(ck.config, { ...base, ttt });
        expect(withTtt.options.ttt!.chunks).toBe(3);
        expectPlanEqualsAllocator(withTtt, m.alloc, 'after GpuTrainer.create');
        expect(withTtt.byCategory.optimizer).toBeGreaterThan(0);
        // The plan still says what a forward pass needs: it ran without a GPU error.
        await t.loss([1, 2, 3, 4], [0, 1, 1, 1]);
      } finally {
        m.dispose();
      }
    }, 120_000);
  }

  it('tied head, MHA, alpha = rank (more uniforms coincide), a few targets, allLogits, default chunking', async () => {
    const ck = models.get('mha')!;
    const ctx = await gpuContext(true);
    const m = await GpuLlama.load(ck, ctx, { weights: 'q4', maxContext: 48, maxBatch: 16 });
    try {
      const base: MemoryPlanOptions = { weights: 'q4', precision: 'f16', maxContext: 48, maxBatch: 16 };
      expectPlanEqualsAllocator(planMemory(ck.config, base), m.alloc, 'after load');
      await m.forward([1, 5, 9, 3], { allLogits: true }); // allocates 'logits all'
      expectPlanEqualsAllocator(planMemory(ck.config, { ...base, allLogits: true }), m.alloc, 'after an allLogits forward');
      const targets: Projection[] = ['v_proj', 'q_proj', 'down_proj']; // not in PROJECTIONS order on purpose
      await GpuTrainer.create(m, initLora(ck.config, { rank: 8, alpha: 8, targets }, 2), { maxTokens: 100 }); // clamped to 48
      const plan = planMemory(ck.config, { ...base, allLogits: true, ttt: { rank: 8, alpha: 8, targets, maxTokens: 100 } });
      expect(plan.options.ttt).toMatchObject({ maxTokens: 48, chunkRows: 64, chunks: 1, targets: ['q_proj', 'v_proj', 'down_proj'] });
      expectPlanEqualsAllocator(plan, m.alloc, 'after GpuTrainer.create');
    } finally {
      m.dispose();
    }
  }, 120_000);

  it("equals scripts/bench/ttt-memory.ts' accounted figures for one FineMedLM-o1 layer at the real vocabulary", async (t) => {
    const ctx = await gpuContext(true);
    let snap;
    try {
      snap = await measureTttMemory(ctx, 1, TTT_MEMORY_DEFAULTS); // q4, 1024 tokens = the context, rank 8, 7 targets
    } catch (e) {
      if (e instanceof GpuOutOfMemoryError) {
        console.warn(`\n[SKIPPED] one FineMedLM-o1 layer: this device refused the allocation (${e.message}).\n`);
        t.skip();
        return;
      }
      throw e;
    }
    const o = TTT_MEMORY_DEFAULTS;
    const plan = planMemory(finemedLayerConfig(1, o.vocab), { weights: 'q4', precision: 'f16', maxContext: o.tokens, ttt: { ...o.lora, maxTokens: o.tokens }, limits: ctx.limits });
    expect(plan.byCategory).toEqual(snap.byCategory);
    expect(plan.total).toBe(snap.total);
    expect(plan.peak).toBe(snap.peak);
    // The bindings Dawn saw over lavapipe's 128 MiB are exactly those the plan names: none, the
    // embedding and lm_head are in row blocks.
    const named = checkPlan(plan, ctx.device.limits).map((p) => p.buffer).sort();
    expect(named).toEqual(snap.oversize.map((b) => b.buffer).sort());
    expect(snap.validationError).toBeUndefined();
    if (ctx.device.limits.maxStorageBufferBindingSize < q4Bytes(o.vocab ?? 128256, 4096)) {
      expect(plan.buffers.filter((b) => b.label.startsWith('model.embed_tokens.weight q4')).length).toBeGreaterThan(1);
    }
    console.log(`[memory plan] 1 FineMedLM-o1 layer, vocab ${o.vocab}: plan = allocator = ${(plan.total / MiB).toFixed(1)} MiB (peak ${(plan.peak / MiB).toFixed(1)} MiB), measured in ${(snap.ms / 1000).toFixed(1)} s`);
  }, 300_000);
});

describe("memory plan at FineMedLM-o1's real shape (nothing loaded)", () => {
  const finemed = finemedLayerConfig(32, 128256);
  const lavapipe = { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 128 * MiB, maxUniformBufferBindingSize: 65536 };
  const oneGiB = { maxBufferSize: GiB, maxStorageBufferBindingSize: GiB };
  const q4f16: MemoryPlanOptions = { weights: 'q4', precision: 'f16', maxContext: 4096 };
  const ttt1024 = { rank: 8, targets: [...PROJECTIONS], maxTokens: 1024 };

  it('4-bit weights about 4.5 GB, 4.8 GB with the default 8-bit lm_head; KV cache 128 KiB per token in f16 (256 KiB in f32)', () => {
    const plan = planMemory(finemed, q4f16);
    const perLayer = 218_103_808 * 9 / 16 + 2 * 4096 * 4; // 4.5 bits per weight + two f32 norms
    expect(plan.options.lmHead).toBe('q8');
    expect(plan.byCategory.weights).toBe(32 * perLayer + q4Bytes(128256, 4096) + q8Bytes(128256, 4096) + 4096 * 4);
    expect(plan.byCategory.weights / 1e9).toBeGreaterThan(4.7);
    expect(plan.byCategory.weights / 1e9).toBeLessThan(4.8);
    const allQ4 = planMemory(finemed, { ...q4f16, lmHead: 'q4' });
    expect(allQ4.byCategory.weights).toBe(32 * perLayer + 2 * q4Bytes(128256, 4096) + 4096 * 4);
    expect(allQ4.byCategory.weights / 1e9).toBeGreaterThan(4.4);
    expect(allQ4.byCategory.weights / 1e9).toBeLessThan(4.6);
    expect(describePlan(allQ4)).toMatch(/^weights 4\.52 GB \(4-bit\), KV cache/);
    expect(plan.byCategory.kvCache / 4096).toBe(128 * 1024);
    expect(planMemory(finemed, { ...q4f16, precision: 'f32' }).byCategory.kvCache / 4096).toBe(256 * 1024);
    expect(plan.options.maxBatch).toBe(256); // 32 heads x 4096 keys x f32 scores within 128 MiB
    expect(plan.byCategory.staging).toBe(0);
    expect(plan.buffers.filter((b) => b.phase === 'load').map((b) => b.label)).toEqual(['quantize params', 'quantize staging']);
    expect(describePlan(plan)).toMatch(/^weights 4\.78 GB \(4-bit, lm_head 8-bit\), KV cache 0\.54 GB \(4096 tokens, f16\), activations 0\.\d\d GB/);
  });

  it('with TTT (rank 8, all targets, 1024 tokens): every category, and the trainer within weights + 1.5 GB', () => {
    const base = planMemory(finemed, q4f16);
    const plan = planMemory(finemed, { ...q4f16, ttt: ttt1024 });
    const trainer = plan.buffers.filter((b) => b.owner === 'trainer').reduce((s, b) => s + b.bytes, 0);
    expect(plan.total - base.total).toBe(trainer);
    expect(plan.byCategory.weights).toBe(base.byCategory.weights);
    // LoRA: (r x in + out x r) per projection, 64-float aligned; grads in 'lora', Adam m and v in 'optimizer'.
    const perLayerFloats = 8 * ((4096 + 4096) + (4096 + 1024) * 2 + (4096 + 4096) + (4096 + 14336) * 2 + (14336 + 4096));
    expect(plan.byCategory.optimizer).toBe(2 * 32 * perLayerFloats * 4 + 1024 * 4 + 16 + 48); // Adam m, v, grad-norm partials, stats, params
    expect(plan.total - plan.byCategory.weights - plan.byCategory.kvCache).toBeLessThan(1.5e9);
    console.log(`[memory plan] FineMedLM-o1 q4/f16, context 4096, TTT rank 8 x 7 targets x 1024 tokens: ${describePlan(plan)}\n  byCategory (bytes): ${JSON.stringify(plan.byCategory)}; total ${plan.total}; peak ${plan.peak}`);
  });

  it("planned for lavapipe's 128 MiB per binding, the q4 embedding is two row blocks, the q8 lm_head four, and everything fits", () => {
    for (const ttt of [undefined, ttt1024]) {
      const plan = planMemory(finemed, { ...q4f16, ttt, limits: lavapipe });
      expect(checkPlan(plan, lavapipe)).toEqual([]);
      for (const [name, format, n, rows, groupBytes] of [['model.embed_tokens.weight', 'q4', 2, 64128, 16], ['lm_head.weight', 'q8', 4, 32064, 32]] as const) {
        const q = plan.buffers.filter((b) => b.label.startsWith(`${name} ${format}`));
        expect(q.map((b) => b.label)).toEqual(Array.from({ length: n }, (_, i) => `${name} ${format} #${i}`));
        expect(q.map((b) => b.bytes)).toEqual(Array(n).fill(rows * 128 * groupBytes));
        expect(q.every((b) => b.bytes <= 128 * MiB)).toBe(true);
      }
      // Same weight bytes as unsplit (the blocks partition the rows; even rows keep the scales whole).
      expect(plan.byCategory.weights).toBe(planMemory(finemed, { ...q4f16, ttt }).byCategory.weights);
      expect(plan.largestBinding!.bytes).toBeLessThanOrEqual(128 * MiB);
    }
    // 32 MiB, one layer (the 32 layers' flat LoRA and Adam buffers are 80 MiB each, TTT at 1024
    // tokens' attention probabilities 128 MiB): eight blocks of 16,032 rows; the loss head's logits
    // chunk shrinks to 64 rows (32.8 MB), the allLogits buffer to at most 65 rows.
    const low = { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 32 * MiB };
    const plan = planMemory(finemedLayerConfig(1, 128256), { ...q4f16, ttt: { ...ttt1024, maxTokens: 512 }, limits: low, allLogits: true });
    expect(checkPlan(plan, low)).toEqual([]);
    expect(plan.buffers.filter((b) => b.label.startsWith('lm_head.weight q8')).length).toBe(16); // 8-bit rows: twice the blocks of q4's eight
    expect(plan.options.ttt!.chunkRows).toBe(64);
    expect(plan.options.maxBatch).toBe(64); // the (H, B, S) scores within 32 MiB too
    expect(plan.buffers.find((b) => b.label === 'logits all')!.bytes).toBe(64 * 128256 * 4);
    expect(planMemory(finemedLayerConfig(1, 128256), { ...q4f16, maxBatch: 256, limits: low, allLogits: true }).buffers.find((b) => b.label === 'logits all')!.bytes).toBe(65 * 128256 * 4);
    // A limit below one row pair (2 x 2 KiB of nibbles) cannot be met by splitting: refused, typed.
    const tiny = { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 3000 };
    expect(() => assertPlanFits(planMemory(finemed, { ...q4f16, limits: tiny }), tiny)).toThrow(DeviceLimitsError);
  });

  it("unsplit (planned without limits), against lavapipe's 128 MiB per binding: names model.embed_tokens.weight and lm_head; 1 GiB limits pass", () => {
    for (const ttt of [undefined, ttt1024]) {
      const plan = planMemory(finemed, { ...q4f16, ttt });
      const problems = checkPlan(plan, lavapipe);
      expect(problems.map((p) => p.buffer)).toEqual(['model.embed_tokens.weight q4', 'lm_head.weight q8']);
      for (const p of problems) expect(p.limit).toBe('maxStorageBufferBindingSize');
      expect(problems.map((p) => p.bytes)).toEqual([128256 * 128 * 16, 128256 * 128 * 32]);
      expect(problems[0].message).toBe("model.embed_tokens.weight q4 needs 262.7 MB (250.5 MiB) in one storage binding; this GPU's maxStorageBufferBindingSize is 128 MiB");
      expect(problems[1].message).toBe("lm_head.weight q8 needs 525.3 MB (501 MiB) in one storage binding; this GPU's maxStorageBufferBindingSize is 128 MiB");
      expect(checkPlan(plan, oneGiB)).toEqual([]);
      expect(() => assertPlanFits(plan, oneGiB)).not.toThrow();
    }
    // f32 weights: the embedding is 2.1 GB in one buffer.
    const f32 = checkPlan(planMemory(finemed, { ...q4f16, weights: 'f32' }), oneGiB);
    expect(f32.filter((p) => p.limit === 'maxBufferSize').map((p) => p.buffer)).toEqual(['model.embed_tokens.weight', 'lm_head.weight']);
  });

  it('TTT at 2048 tokens: the attention runs in query blocks inside the prefill score buffer (no (H, T, T) buffer); 4096 tokens are refused, naming the buffer', () => {
    const plan = planMemory(finemed, { ...q4f16, ttt: { ...ttt1024, maxTokens: 2048 }, limits: lavapipe });
    // The score buffer (32, 256, 4096) f32 = 128 MiB holds (32, 512, 2048): 4 blocks of 512 query rows.
    expect(plan.options.ttt).toMatchObject({ queryRows: 512, attentionBlocks: 4, sharedProbs: true });
    expect(plan.buffers.filter((b) => b.label === 'probs')).toEqual([]);
    expect(checkPlan(plan, lavapipe).filter((p) => plan.buffers.find((b) => b.label === p.buffer)?.owner === 'trainer')).toEqual([]);
    // At 4096 tokens the unblocked (T, F) f32 MLP gradients would be 235 MB, over 128 MiB: the MLP
    // runs in blocks of 256 rows (14 MiB each), and everything fits.
    const long = planMemory(finemed, { ...q4f16, ttt: { ...ttt1024, maxTokens: 4096 }, limits: lavapipe });
    expect(long.options.ttt).toMatchObject({ queryRows: 256, attentionBlocks: 16, sharedProbs: true, mlpRows: 256, mlpBlocks: 16 });
    expect(long.buffers.find((b) => b.label === 'dact')?.bytes).toBe(256 * 14336 * 4);
    expect(checkPlan(long, lavapipe)).toEqual([]);
    // At 16384 tokens the (T, C) f32 gradients (256 MiB) are over 128 MiB: typed refusal naming them.
    const longer = planMemory(finemed, { ...q4f16, maxContext: 16384, ttt: { ...ttt1024, maxTokens: 16384 }, limits: lavapipe });
    expect(checkPlan(longer, lavapipe).map((p) => p.buffer)).toEqual(expect.arrayContaining(['dx', 'dxn']));
    expect(() => assertPlanFits(longer, lavapipe)).toThrow(/TTT length \(16384 tokens\)/);
    // MLP rows must keep the block bindings aligned.
    expect(() => planMemory(finemed, { ...q4f16, ttt: { ...ttt1024, mlpRows: 100 } })).toThrow(/mlpRows must be a positive multiple of 64/);
    // Asked for more query rows than the score buffer holds: a buffer of the trainer's own, checked like any other.
    const own = planMemory(finemed, { ...q4f16, ttt: { ...ttt1024, maxTokens: 2048, queryRows: 2048 } });
    expect(own.buffers.find((b) => b.label === 'probs')?.bytes).toBe(32 * 2048 * 2048 * 4);
    expect(checkPlan(own, lavapipe).map((p) => p.buffer)).toContain('probs');
  });

  it('a made-up config with hidden 16384 and vocab 128256 fails 1 GiB maxBufferSize, naming the buffer (typed error)', () => {
    const big: LlamaConfig = { ...finemed, hiddenSize: 16384, intermediateSize: 53248, numHeads: 128, numKvHeads: 8, headDim: 128, numLayers: 4 };
    const plan = planMemory(big, { ...q4f16, weights: 'f32' });
    let err: unknown;
    try {
      assertPlanFits(plan, oneGiB);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeviceLimitsError);
    const e = err as DeviceLimitsError;
    expect(e.code).toBe('device-limits');
    expect(e.message).toMatch(/^This model cannot run on this GPU: model\.embed_tokens\.weight needs 8405\.4 MB \(8016 MiB\) in one buffer; this GPU's maxBufferSize is 1024 MiB/);
    expect(e.problems.length).toBeGreaterThan(0);
    expect(e.problems.some((p) => p.buffer === 'model.embed_tokens.weight' && p.limit === 'maxBufferSize' && p.limitBytes === GiB)).toBe(true);
    expect(e.toJSON()).toMatchObject({ name: 'DeviceLimitsError', code: 'device-limits' });
    // The same model all in 4 bits: the embedding's packed nibbles are 1.05 GB, just under 1 GiB (1.074 GB).
    const q4 = planMemory(big, { ...q4f16, lmHead: 'q4' });
    expect(q4.buffers.find((b) => b.label === 'model.embed_tokens.weight q4')!.bytes).toBe(128256 * 512 * 16);
    expect(checkPlan(q4, oneGiB).filter((p) => p.limit === 'maxBufferSize')).toEqual([]);
    expect(checkPlan(q4, lavapipe).map((p) => p.buffer)).toContain('model.embed_tokens.weight q4');
  });

  it('planFromConfigJson parses config.json (and refuses what the engine cannot run); bad options are typed errors', () => {
    const raw = {
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
      num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 128256, rms_norm_eps: 1e-5, rope_theta: 500000,
      rope_scaling: { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      max_position_embeddings: 131072, tie_word_embeddings: false, bos_token_id: 128000, eos_token_id: [128001, 128009], hidden_act: 'silu',
    };
    const fromJson = planFromConfigJson(raw, q4f16);
    const direct = planMemory(finemed, q4f16);
    expect(fromJson.total).toBe(direct.total);
    expect(fromJson.buffers.length).toBe(direct.buffers.length);
    expect(() => planFromConfigJson({ ...raw, architectures: ['MistralForCausalLM'] }, q4f16)).toThrow(ConfigError);
    expect(() => planMemory(finemed, { ...q4f16, maxContext: 0 })).toThrow(InvalidInputError);
    expect(() => planMemory(finemed, { ...q4f16, ttt: { ...ttt1024, chunkRows: 100 } })).toThrow(InvalidInputError);
    expect(() => planMemory(finemed, { ...q4f16, ttt: { ...ttt1024, targets: ['q_proj', 'q_proj'] } })).toThrow(InvalidInputError);
    expect(() => planMemory(finemed, { ...q4f16, ttt: { ...ttt1024, targets: [] } })).toThrow(InvalidInputError);
  });
});
