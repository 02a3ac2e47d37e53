import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import { AbortError } from '../../../models/errors.ts';
import { GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { GpuTrainer, MAX_DISPATCHES_PER_SUBMIT } from '../../../models/gpu/gpu-trainer.ts';
import { DEFAULT_LORA, initLora } from '../../../models/lora/adapter.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { expectNoGpuErrors, gpuContext } from '../../helpers/gpu.ts';
import { writeRandomLlama } from '../../helpers/random-model.ts';

/** Counts queue submits and the dispatches in each, from now until `stop()`; `onSubmit` sees the count. */
function countSubmits(onSubmit?: (n: number) => void): { perSubmit: number[]; stop: () => void } {
  const perSubmit: number[] = [];
  let open = 0;
  const dispatch = GPUComputePassEncoder.prototype.dispatchWorkgroups;
  const submit = GPUQueue.prototype.submit;
  GPUComputePassEncoder.prototype.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...a: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>) {
    open++;
    return dispatch.apply(this, a);
  };
  GPUQueue.prototype.submit = function (this: GPUQueue, cbs: Iterable<GPUCommandBuffer>) {
    perSubmit.push(open);
    open = 0;
    const r = submit.call(this, cbs);
    onSubmit?.(perSubmit.length);
    return r;
  };
  return { perSubmit, stop: () => { GPUComputePassEncoder.prototype.dispatchWorkgroups = dispatch; GPUQueue.prototype.submit = submit; } };
}

// A TTT step in bounded submits (one per layer forward, the loss head, one per layer backward,
// Adam), and a cancel that lands inside a step without applying any of it.
describe('GpuTrainer: one step in bounded submits, cancel within a step (Dawn)', () => {
  let dir: string;
  let ck: Checkpoint;
  const L = 3, T = 24;
  const ids = Array.from({ length: T }, (_, i) => (i * 29 + 3) % 120);
  const mask = ids.map((_, t) => (t >= 8 ? 1 : 0));
  const opts = { lr: 1e-2 };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpu-ttt-submits-'));
    await writeRandomLlama(dir, { seed: 5, hiddenSize: 64, intermediateSize: 136, numLayers: L, numHeads: 4, numKvHeads: 2, vocabSize: 120, tie: false });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  expectNoGpuErrors();
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const readParams = async (t: GpuTrainer): Promise<Float32Array> => {
    const parts = [...(await t.lora.read(t.lora.params)).values()].flatMap(({ A, B }) => [A, B]);
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  };

  it('a step is 2 L + 2 submits of at most MAX_DISPATCHES_PER_SUBMIT dispatches each', async () => {
    const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    const t = await GpuTrainer.create(m, initLora(ck.config, DEFAULT_LORA, 1), { maxTokens: 32 });
    await t.train(ids, mask, { steps: 1, ...opts }); // warm: pipelines built
    const c = countSubmits();
    try {
      await t.train(ids, mask, { steps: 1, ...opts }); // one step, then the final loss (forward only)
    } finally { c.stop(); }
    const step = c.perSubmit.slice(0, 2 * L + 2), finalLoss = c.perSubmit.slice(2 * L + 2);
    expect(c.perSubmit.length).toBe(2 * L + 2 + L + 1);
    expect(finalLoss.length).toBe(L + 1); // forward per layer, loss head
    expect(Math.max(...c.perSubmit)).toBeLessThanOrEqual(MAX_DISPATCHES_PER_SUBMIT);
    expect(Math.min(...step)).toBeGreaterThan(0);
    expect(step.at(-1)).toBe(3); // Adam: grad norm partial, final, update
    m.dispose();
  });

  it('abort mid-step rejects with AbortError before the next submit; the step is not applied; training goes on as if it never ran', async () => {
    const m = await GpuLlama.load(ck, await gpuContext(false), { weights: 'f32', maxContext: 64 });
    // Reference: 2 uninterrupted steps.
    const ref = await GpuTrainer.create(m, initLora(ck.config, DEFAULT_LORA, 1), { maxTokens: 32 });
    const loss0 = await ref.loss(ids, mask);
    await ref.train(ids, mask, { steps: 2, ...opts });
    const p2Ref = await readParams(ref);
    await ref.dispose();

    const t = await GpuTrainer.create(m, initLora(ck.config, DEFAULT_LORA, 1), { maxTokens: 32 });
    const p0 = await readParams(t);
    await t.train(ids, mask, { steps: 1, ...opts });
    const p1 = await readParams(t);
    expect(p1).not.toEqual(p0);

    // Abort during the third submit of the next step: after the forward of layers 0 and 1.
    const ac = new AbortController();
    let abortedAt = 0;
    const c = countSubmits((n) => { if (n === 3) { ac.abort(); abortedAt = performance.now(); } });
    const steps: number[] = [];
    let err: unknown;
    try {
      err = await t.train(ids, mask, { steps: 3, ...opts, signal: ac.signal }, (e) => steps.push(e.step)).catch((e: unknown) => e);
    } finally { c.stop(); }
    const latencyMs = performance.now() - abortedAt;
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ code: 'aborted' });
    expect(steps).toEqual([]); // no step completed
    expect(c.perSubmit.length).toBe(3); // nothing submitted after the abort
    expect(latencyMs).toBeLessThan(5000); // only what was in flight (at most two layers' forward) finished
    expect(await readParams(t)).toEqual(p1); // the cut step left the adapter as step 1 did

    // The next step is step 2 (moments and step count intact): equal to the uninterrupted run.
    await t.train(ids, mask, { steps: 1, ...opts });
    const p2 = await readParams(t);
    expect(p2.length).toBe(p2Ref.length);
    let worst = 0;
    for (let i = 0; i < p2.length; i++) worst = Math.max(worst, Math.abs(p2[i] - p2Ref[i]));
    expect(worst).toBe(0);

    // reset restores the base adapter: the loss is the untrained one again, bit for bit.
    t.reset();
    expect(await t.loss(ids, mask)).toBe(loss0);
    expect((await t.train(ids, mask, { steps: 1, ...opts })).losses[0]).toBe(loss0);
    m.dispose();
  });
});
