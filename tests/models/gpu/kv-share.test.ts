/**
 * Issue 9, item 4: the KV cache lives in slabs, and while training (when it is idle) the trainer
 * places its saved layer inputs in them. Placement (borrowFromPool) never overlaps, stays aligned and
 * in bounds; on Dawn, training with the shared slabs gives bit-identical loss and gradients to
 * buffers of its own, takes less memory, and generation afterwards starts from a clean cache:
 * after reset the logits equal those before any training, bit for bit.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { borrowFromPool, kvSlabs, STORAGE_OFFSET_ALIGN } from '../../../models/gpu/buffer-sizes.ts';
import { GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../../models/gpu/gpu-trainer.ts';
import { initLora, loraPairs, type LoraWeights } from '../../../models/lora/adapter.ts';
import { planMemory } from '../../../models/memory-plan.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { finemedLayerConfig } from '../../../scripts/bench/synthetic-checkpoint.ts';
import { concatAll, expectNoGpuErrors, gpuContext } from '../../helpers/gpu.ts';
import { mulberry32, writeRandomLlama } from '../../helpers/random-model.ts';

describe('borrowFromPool and kvSlabs (pure)', () => {
  it('places largest first, in the first slab with room, aligned, in bounds and without overlap', () => {
    const rand = mulberry32(5);
    for (let trial = 0; trial < 50; trial++) {
      const pool = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => 1024 * (1 + Math.floor(rand() * 64)));
      const requests = Array.from({ length: 1 + Math.floor(rand() * 30) }, (_, i) => ({ label: `b${i}`, bytes: 4 * (1 + Math.floor(rand() * 8192)) }));
      const placed = borrowFromPool(pool, requests);
      const bySlab = pool.map(() => [] as [number, number][]);
      for (const [label, { slab, offset }] of placed) {
        const bytes = requests.find((r) => r.label === label)!.bytes;
        expect(offset % STORAGE_OFFSET_ALIGN).toBe(0);
        expect(offset + bytes).toBeLessThanOrEqual(pool[slab]);
        bySlab[slab].push([offset, offset + bytes]);
      }
      for (const spans of bySlab) {
        spans.sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
      }
      // What was left out fits in no slab's remaining room at the end (first fit, largest first).
      const end = pool.map((_, s) => Math.max(0, ...bySlab[s].map((x) => x[1])));
      for (const r of requests) {
        if (placed.has(r.label)) continue;
        for (let s = 0; s < pool.length; s++) expect(Math.ceil(end[s] / STORAGE_OFFSET_ALIGN) * STORAGE_OFFSET_ALIGN + r.bytes).toBeGreaterThan(pool[s]);
      }
    }
    expect(borrowFromPool([1024], [{ label: 'big', bytes: 1025 }]).size).toBe(0); // fits nowhere: its own
  });

  it('FineMedLM-o1: 16 layers per 256 MiB slab at 4096 tokens in f16; one layer per slab once a layer is over it', () => {
    const c = finemedLayerConfig(32, 128256);
    const f16 = kvSlabs(c, 4096, 2);
    expect(f16.bytes).toBe(4096 * 8 * 128 * 2);
    expect(f16.slabs).toEqual([{ first: 0, count: 16, bytes: 256 * 2 ** 20 }, { first: 16, count: 16, bytes: 256 * 2 ** 20 }]);
    const huge = kvSlabs(c, 131072, 4, { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 30 });
    expect(huge.slabs).toHaveLength(32);
    expect(huge.slabs[0].bytes).toBe(2 * 131072 * 8 * 128 * 4);
  });
});

describe('GpuTrainer in the idle KV cache (Dawn)', () => {
  let dir: string;
  let ck: Checkpoint;
  const lora = (): LoraWeights => {
    const l = initLora(ck.config, { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'down_proj'] }, 2);
    const rand = mulberry32(9);
    for (const { pair } of loraPairs(l)) for (let i = 0; i < pair.B.length; i++) pair.B[i] = (rand() * 2 - 1) * 0.1;
    return l;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kv-share-'));
    await writeRandomLlama(dir, { seed: 21, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 96, tie: false });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  expectNoGpuErrors();

  for (const f16 of [false, true]) {
    it(`${f16 ? 'f16' : 'f32'} activations: shared slabs = own buffers, bit for bit; less memory; after training and reset the logits are those before it`, async () => {
      const ctx = await gpuContext(f16);
      const maxContext = 2048, maxTokens = 256; // slabs of 1 MiB (f32): room for most training buffers
      const ids = Array.from({ length: 200 }, (_, i) => (i * 29 + 3) % 96), mask = ids.map((_, t) => (t >= 8 ? 1 : 0));
      const prompt = [5, 17, 33, 2, 60, 71];
      const run = async (shareKvCache: boolean) => {
        const m = await GpuLlama.load(ck, ctx, { weights: 'f32', maxContext });
        try {
          const before = await m.forward(prompt);
          m.resetCache();
          await m.forward(prompt.slice(0, 3)); // a cache in use when training starts
          const t = await GpuTrainer.create(m, lora(), { maxTokens, shareKvCache });
          const plan = planMemory(ck.config, { weights: 'f32', precision: m.precision, maxContext, limits: ctx.limits, ttt: { ...lora().config, maxTokens, shareKvCache } });
          expect(m.alloc.total).toBe(plan.total);
          const loss = await t.lossAndGrads(ids, mask);
          const grads = concatAll([...(await t.lora.read(t.lora.trainingBuffers().grads)).values()].flatMap((p) => [p.A, p.B]));
          await t.train(ids, mask, { steps: 2, lr: 1e-2 });
          expect(m.position).toBe(0); // the cache was overwritten: the next forward starts afresh
          const adapted = await m.forward(prompt);
          m.resetCache();
          t.reset();
          const after = await m.forward(prompt);
          return { before, adapted, after, loss, grads, total: m.alloc.total, borrowed: plan.borrowed.length };
        } finally {
          m.dispose();
        }
      };
      const shared = await run(true), own = await run(false);
      expect(shared.borrowed).toBeGreaterThan(0);
      expect(own.borrowed).toBe(0);
      expect(shared.total).toBeLessThan(own.total);
      console.log(`[kv share] ${f16 ? 'f16' : 'f32'}: ${shared.borrowed} trainer buffers in the KV slabs, ${own.total - shared.total} bytes saved of ${own.total}`);
      expect(shared.loss).toBe(own.loss);
      expect(shared.grads.length).toBe(own.grads.length);
      expect(shared.grads).toEqual(own.grads);
      expect(shared.adapted).toEqual(own.adapted);
      for (const r of [shared, own]) {
        expect(r.after.length).toBe(r.before.length);
        expect(r.after).toEqual(r.before);
        expect(r.adapted).not.toEqual(r.before);
      }
    }, 120_000);
  }
});
