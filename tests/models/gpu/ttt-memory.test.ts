/**
 * Issue 3, "Memory and speed": the accounted peak GPU memory of TTT at 1024 tokens, rank 8, all
 * seven targets, for FineMedLM-o1's real shape, must stay below the 4-bit weights + 1.5 GB. The
 * figure comes from GpuAllocator's accounting of a real load + GpuTrainer.create on 1- and
 * 2-layer models of the real width and vocabulary (scripts/bench/ttt-memory.ts), scaled by layers.
 * Buffers are really created on the device (Dawn/lavapipe); the test skips if it refuses them.
 */
import { describe, expect, it } from 'vitest';
import { CATEGORIES, FINEMED_LAYERS, formatTttMemory, measureTttMemory, scaleByLayers, TTT_MEMORY_DEFAULTS, TTT_OVERHEAD_BUDGET, type MemorySnapshot } from '../../../scripts/bench/ttt-memory.ts';
import { GpuOutOfMemoryError } from '../../../models/errors.ts';
import { finemedLayerConfig } from '../../../scripts/bench/synthetic-checkpoint.ts';
import { planMemory } from '../../../models/memory-plan.ts';
import { expectNoGpuErrors, gpuContext } from '../../helpers/gpu.ts';

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

describe('TTT memory of FineMedLM-o1 (allocator accounting on 1 and 2 layers, scaled to 32)', () => {
  expectNoGpuErrors();

  it('1024 tokens, rank 8, all 7 targets, f16 activations: below the 4-bit weights + 1.5 GB', async (t) => {
    const ctx = await gpuContext(true);
    const opts = TTT_MEMORY_DEFAULTS; // tokens 1024 (= the context), rank 8, alpha 16, 7 targets, vocab 128256
    let one: MemorySnapshot, two: MemorySnapshot;
    try {
      one = await measureTttMemory(ctx, 1, opts);
      two = await measureTttMemory(ctx, 2, opts);
    } catch (e) {
      if (e instanceof GpuOutOfMemoryError) {
        console.warn(`\n[SKIPPED] TTT memory of FineMedLM-o1's shape: this device refused the allocation (${e.message}).\n`);
        t.skip();
        return;
      }
      throw e;
    }

    // The computation, spelled out: per category, per layer = mem(2) - mem(1); 32 layers = mem(1) + 31 x per layer.
    const lines: string[] = [];
    let total32 = 0;
    for (const c of CATEGORIES) {
      const perLayer = two.byCategory[c] - one.byCategory[c];
      const at32 = one.byCategory[c] + (FINEMED_LAYERS - 1) * perLayer;
      total32 += at32;
      lines.push(`${c.padEnd(11)} ${MiB(one.byCategory[c]).padStart(12)} + 31 x ${MiB(perLayer).padStart(10)} = ${MiB(at32).padStart(12)}`);
    }
    const weights32 = one.byCategory.weights + (FINEMED_LAYERS - 1) * (two.byCategory.weights - one.byCategory.weights);
    const peak32 = one.peak + (FINEMED_LAYERS - 1) * (two.peak - one.peak);
    const bound = weights32 + TTT_OVERHEAD_BUDGET;
    const r = scaleByLayers(one, two);
    console.log([
      `[ttt memory] FineMedLM-o1, ${opts.tokens} tokens, rank ${opts.lora.rank}, ${opts.lora.targets.length} targets, vocab ${opts.vocab}, f16 activations:`,
      ...lines,
      `total ${MiB(total32)} (${(total32 / 1e9).toFixed(3)} GB), allocator peak scaled ${(peak32 / 1e9).toFixed(3)} GB; bound = weights ${(weights32 / 1e9).toFixed(3)} GB + 1.5 GB = ${(bound / 1e9).toFixed(3)} GB`,
      formatTttMemory({ options: { ...opts, maxContext: opts.tokens }, device: { maxStorageBufferBindingSize: ctx.device.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.device.limits.maxBufferSize, f16: ctx.f16 }, one, two, ...r }),
    ].join('\n'));

    // Sanity of the accounting: one layer's q4 matrices are 218,103,808 weights x 9/16 byte (4-bit
    // + an f16 scale per 32) plus two f32 norm vectors; its KV cache is 2 x 1024 x 8 x 128 x f16.
    expect(two.byCategory.weights - one.byCategory.weights).toBe(218_103_808 * 9 / 16 + 2 * 4096 * 4);
    expect(two.byCategory.kvCache - one.byCategory.kvCache).toBe(2 * 1024 * 8 * 128 * 2);
    expect(two.byCategory.staging).toBe(0);
    // The extrapolation from 1 and 2 real layers must equal the memory plan of all 32 layers,
    // computed from the config alone (models/memory-plan.ts; no allocation), category by category.
    // The device's limits, as the engine planned the measured models with (row blocks, chunk sizes).
    const plan32 = planMemory(finemedLayerConfig(FINEMED_LAYERS, opts.vocab), { weights: 'q4', precision: 'f16', maxContext: opts.tokens, ttt: { ...opts.lora, maxTokens: opts.tokens }, limits: ctx.limits });
    for (const c of CATEGORIES) expect(r.scaled[c], c).toBe(plan32.byCategory[c]);
    expect(total32).toBe(plan32.total);
    expect(r.scaledTotal).toBe(plan32.total);
    expect(peak32).toBe(plan32.peak);
    expect(peak32).toBeLessThanOrEqual(total32); // everything is allocated up front: the peak is the live total
    // The requirement.
    expect(Math.max(total32, peak32)).toBeLessThan(bound);
    // Every binding over this device's limit is a 128256-row weight (lavapipe: 128 MiB per binding
    // vs 250.5 MiB for the q4 embedding / lm_head); none of TTT's own buffers is.
    for (const b of [...one.oversize, ...two.oversize]) expect(b.buffer).toMatch(/^(model\.embed_tokens|lm_head)\.weight/);
  }, 120_000);
});
