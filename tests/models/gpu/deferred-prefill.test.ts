/**
 * Issue 10 (load time): generation's prefill-only kernels are compiled on first need, not at load.
 * kernelStep/prepareSteps on their own (no GPU), then on Dawn: a load compiles only what a decode
 * step needs; a prompt of up to DECODE_PROMPT_TOKENS runs token by token through the decode
 * kernels (no new pipeline, logits as the tiled path's); a longer one compiles the prefill
 * kernels then; warmUp compiles them ahead, after which a long prompt compiles nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { kernelStep, prepareSteps } from '../../../models/gpu/deferred-step.ts';
import { DECODE_PROMPT_TOKENS, GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { expectNoGpuErrors, gpuContext } from '../../helpers/gpu.ts';
import { writeRandomLlama } from '../../helpers/random-model.ts';

describe('kernelStep / prepareSteps', () => {
  const fakePipeline = (name: string) => ({ name }) as unknown as GPUComputePipeline;
  const fakeBind = (p: GPUComputePipeline) => ({ of: p }) as unknown as GPUBindGroup;

  it('a compiled pipeline makes a plain step; a deferred one compiles once, only where its grid dispatches', async () => {
    const plain = kernelStep('plain', fakePipeline('a'), fakeBind, () => [1, 1, 1]);
    expect(plain.prepare).toBeUndefined();
    expect(plain.pipeline).toEqual({ name: 'a' });
    let compiles = 0;
    const ref = async () => { compiles++; return fakePipeline('tiled'); };
    const tiled = kernelStep('tiled', ref, fakeBind, (T) => (T === 1 ? [0, 0, 0] : [2, T, 1]));
    expect(() => tiled.pipeline).toThrow(/encoded before its pipeline was compiled/);
    expect(() => tiled.bind).toThrow(/tiled/);
    await prepareSteps([plain, tiled], 1, 1); // T = 1: the tiled step does not dispatch
    expect(compiles).toBe(0);
    expect(tiled.prepare).toBeDefined();
    await Promise.all([prepareSteps([tiled], 4, 4), prepareSteps([tiled], 5, 5)]);
    expect(compiles).toBe(1);
    expect(tiled.prepare).toBeUndefined();
    expect(tiled.pipeline).toEqual({ name: 'tiled' });
    expect(tiled.bind).toEqual({ of: { name: 'tiled' } });
    const other = kernelStep('other', ref, fakeBind, () => [0, 0, 0]);
    await prepareSteps([other], null); // null: every step, whatever its grid
    expect(compiles).toBe(2);
  });

  it('a failed compile rejects prepare and leaves the step unusable (never encoded half-made)', async () => {
    const st = kernelStep('bad', async () => { throw new Error('WGSL compile error in bad'); }, fakeBind, () => [1, 1, 1]);
    await expect(prepareSteps([st], 2)).rejects.toThrow(/WGSL compile error/);
    expect(() => st.pipeline).toThrow(/encoded before/);
  });
});

describe('deferred prefill kernels on Dawn', () => {
  let dir: string;
  let ck: Checkpoint;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deferred-prefill-'));
    await writeRandomLlama(dir, { seed: 43, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 90 });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  expectNoGpuErrors();

  const ids = (n: number) => Array.from({ length: n }, (_, i) => (i * 7 + 3) % 90);
  /** Largest |a - b| over max |b|. */
  const relMax = (a: Float32Array, b: Float32Array) => {
    expect(a.length).toBe(b.length);
    let d = 0, m = 0;
    for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
    return d / m;
  };

  for (const weights of ['f32', 'q4'] as const) {
    it(`${weights}: short prompts by token with no new pipeline and the tiled path's logits; a long one compiles the prefill kernels`, async () => {
      const m = await GpuLlama.load(ck, await gpuContext(false), { weights, maxContext: 64 });
      try {
        const atLoad = m.counters().pipelines;
        const short = DECODE_PROMPT_TOKENS;
        const a = m.counters();
        const last = await m.forward(ids(short));
        const b = m.counters();
        expect(b.pipelines).toBe(atLoad);
        expect({ submits: b.submits - a.submits, readbacks: b.readbacks - a.readbacks }).toEqual({ submits: short, readbacks: 1 });
        m.resetCache();
        const longer = await m.forward(ids(short + 1));
        const c = m.counters();
        expect(c.submits - b.submits).toBe(1); // one tiled pass
        expect(c.pipelines).toBeGreaterThan(atLoad);
        // The same prompt through the tiled kernels (every position's logits): the last row agrees.
        m.resetCache();
        const all = await m.forward(ids(short), { allLogits: true });
        const err = relMax(last, all.subarray((short - 1) * 90));
        console.log(`[deferred prefill] ${weights}: ${short}-token prompt by token vs tiled, last logits ${err.toExponential(2)} of max |logit|`);
        expect(err).toBeLessThan(5e-6); // summation order only: measured 2.8e-7 (f32), 4.3e-7 (q4); 10x margin
        expect(longer).toHaveLength(90);
      } finally {
        m.dispose();
      }
    }, 120_000);
  }

  it('warmUp compiles the prefill kernels ahead: a long prompt after it compiles nothing', async () => {
    const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'q4', maxContext: 64 });
    try {
      const atLoad = m.counters().pipelines;
      await m.warmUp();
      const warmed = m.counters().pipelines;
      expect(warmed).toBeGreaterThan(atLoad);
      await m.forward(ids(20));
      await m.forwardArgmax([5]);
      expect(m.counters().pipelines).toBe(warmed);
    } finally {
      m.dispose();
    }
  }, 120_000);
});
