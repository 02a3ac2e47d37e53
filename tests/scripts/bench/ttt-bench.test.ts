/**
 * The TTT bench's kernel families (scripts/bench/ttt-bench.ts familyOf) against a real trainer's
 * step labels (GpuTrainer.stepLists): every family is found, and each list's steps land in the
 * families that list can hold. A renamed step would otherwise fall silently into norms/elementwise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAMILIES, familyOf } from '../../../scripts/bench/ttt-bench.ts';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../../models/gpu/gpu-trainer.ts';
import { DEFAULT_LORA, initLora } from '../../../models/lora/adapter.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { expectNoGpuErrors, gpuContext } from '../../helpers/gpu.ts';
import { writeRandomLlama } from '../../helpers/random-model.ts';

describe('TTT bench kernel families vs GpuTrainer step labels (Dawn)', () => {
  let dir: string;
  let ck: Checkpoint;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ttt-bench-families-'));
    await writeRandomLlama(dir, { seed: 5, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 100 });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  expectNoGpuErrors();

  it('every family is found; forward, backward, head and Adam steps fall where they belong', async () => {
    const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'q4', maxContext: 64 });
    try {
      const t = await GpuTrainer.create(m, initLora(ck.config, { ...DEFAULT_LORA, rank: 4 }, 1), { maxTokens: 64 });
      const lists = t.stepLists();
      const families = (steps: { label: string }[]) => new Set(steps.map((s) => familyOf(s.label)));
      const all = families(Object.values(lists).flat());
      expect(FAMILIES.filter((f) => !all.has(f))).toEqual([]);
      expect([...families(lists.adam)]).toEqual(['Adam']);
      expect([...families(lists.head)].sort()).toEqual(['lm_head + CE', 'norms/elementwise']); // the final norm and its backward
      expect(families(lists.fwd).has('attention bwd')).toBe(false);
      expect(families(lists.bwd).has('attention bwd')).toBe(true);
      await t.dispose();
    } finally {
      m.dispose();
    }
  }, 120_000);
});
