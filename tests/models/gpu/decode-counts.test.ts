/**
 * Issue 10, items 2 and 3: the GPU work of one decode token, counted by GpuLlama.counters(): one
 * pass, one submit and one readback wait, and 6 dispatches per layer with the fused kernels
 * (norm1 + q, k, v as one matvec over their fused rows, rope + KV write, attention in one pass, o + residual,
 * norm2 + gate + up + SwiGLU, down + residual) plus embed, final norm, lm_head and argmax. With a
 * LoRA adapter on gate and v, decode takes the unfused norms and MLP and the adapter's steps;
 * with LoRA disabled, the fused ones again. And the kernels a load compiles ahead
 * (forward-pipelines.ts) are exactly the ones a decode token dispatches.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { forwardPipelineSources } from '../../../models/gpu/forward-pipelines.ts';
import { GpuLlama, type GpuCounters } from '../../../models/gpu/gpu-llama.ts';
import { embedFormat } from '../../../models/weights-plan.ts';
import { GpuLora } from '../../../models/gpu/gpu-lora.ts';
import { initLora } from '../../../models/lora/adapter.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { expectNoGpuErrors, gpuContext } from '../../helpers/gpu.ts';
import { writeRandomLlama } from '../../helpers/random-model.ts';

const LAYERS = 3;
const diff = (a: GpuCounters, b: GpuCounters) => ({ dispatches: b.dispatches - a.dispatches, passes: b.passes - a.passes, submits: b.submits - a.submits, readbacks: b.readbacks - a.readbacks });

describe('GPU work per decode token (Dawn)', () => {
  let dir: string;
  let ck: Checkpoint;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'decode-counts-'));
    await writeRandomLlama(dir, { seed: 41, hiddenSize: 64, intermediateSize: 96, numLayers: LAYERS, numHeads: 4, numKvHeads: 2, vocabSize: 90 });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  expectNoGpuErrors();

  for (const weights of ['f32', 'q4'] as const) {
    it(`${weights}: one pass, one submit, one readback and 6 x layers + 4 dispatches; unfused MLP while LoRA on gate/up is enabled`, async () => {
      const m = await GpuLlama.load(ck, await gpuContext(false), { weights, maxContext: 64 });
      try {
        await m.forward([1, 2, 3]);
        const token = async () => { const a = m.counters(); await m.forwardArgmax([4]); return diff(a, m.counters()); };
        expect(await token()).toEqual({ dispatches: 6 * LAYERS + 4, passes: 1, submits: 1, readbacks: 1 });
        expect(m.counters().pipelines).toBeGreaterThan(0);
        // The sources compiled at the start of a load are the decode token's kernels, no more, no fewer.
        const embed = embedFormat(ck.config, weights, m.lmHeadFormat);
        const formats = { layers: weights, embed, lmHead: ck.config.tieWordEmbeddings ? embed : m.lmHeadFormat };
        const listed = await Promise.all(forwardPipelineSources(m.shader, formats, ck.config).map(({ label, code }) => m.pipelines.get(label, code)));
        const used = m.decodePipelines();
        expect(used.size).toBeGreaterThan(5);
        // By identity (the cache gives the same object per source; deep equality cannot tell pipelines apart).
        const names = (ps: Iterable<GPUComputePipeline>, of: Set<GPUComputePipeline>) => [...ps].filter((p) => !of.has(p)).map((p) => p.label);
        expect(names(used, new Set(listed)), 'dispatched by decode, not compiled ahead').toEqual([]);
        expect(names(listed, used), 'compiled ahead, not dispatched by decode').toEqual([]);
        const lora = initLora(ck.config, { rank: 4, alpha: 8, targets: ['gate_proj', 'v_proj'] }, 1);
        await m.attachLora(GpuLora.create(m.device, m.alloc, lora));
        // Unfused: norm1, q, k, v, rope, attention, o, norm2, gate, up, swiglu, down (12), and 2 LoRA dispatches per target (4).
        expect((await token()).dispatches).toBe((12 + 4) * LAYERS + 4);
        m.loraEnabled = false; // LoRA off: the fused MLP and no adapter work
        expect((await token()).dispatches).toBe(6 * LAYERS + 4);
      } finally {
        m.dispose();
      }
    }, 120_000);
  }
});
