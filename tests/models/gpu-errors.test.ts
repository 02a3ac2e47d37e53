/**
 * GPU errors reach the caller of LlamaModel as typed errors, never as output: a validation error
 * (Dawn's own) and an out-of-memory error (reported as a driver would, tests/helpers/gpu-faults.ts)
 * during load, generation and training; device loss mid-generation and mid-training rejects the
 * pending call with DeviceLostError (bounded: no hang), every later call too, and a new load works.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLostError, GpuOutOfMemoryError, GpuValidationError } from '../../models/errors.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import { LlamaModel } from '../../models/llama-model.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { faultyGpu, type FaultyGpu } from '../helpers/gpu-faults.ts';
import { writeRandomLlama } from '../helpers/random-model.ts';

/** Rejects when `p` has not settled after `ms`: a hang fails the test instead of timing it out silently. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms); });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

const PROMPT = [1, 5, 9, 3];
const MASK = [0, 0, 1, 1, 1, 1, 1, 1];
const TRAIN_IDS = [1, 5, 9, 3, 7, 2, 8, 4];

describe('GPU errors as typed errors (LlamaModel on Dawn)', () => {
  let dir: string;
  let f: FaultyGpu;
  let reference: number[];
  const load = () => LlamaModel.load(new NodeDirSource(dir), { backend: 'webgpu', gpu: f.gpu, weights: 'f32', precision: 'f32', maxContext: 64 });
  const gpuOf = (m: LlamaModel) => m.engine as GpuLlama;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpu-errors-'));
    await writeRandomLlama(dir, { seed: 7, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 97 });
    f = faultyGpu();
    const m = await load();
    reference = (await m.generate(PROMPT, { maxNewTokens: 8, stopIds: [] })).ids; // seed 7: no eos (id 2) in the first 40 greedy tokens
    m.dispose();
    expect(reference).toHaveLength(8);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a validation error during load rejects the load with GpuValidationError (it used to load and give zeros)', async () => {
    f.invalidOn('model.norm.weight');
    const err = await load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuValidationError);
    expect(err).toMatchObject({ code: 'gpu-validation', message: expect.stringMatching(/during the load.*BufferUsage/s) });
    expect((await within(f.devices.at(-1)!.lost, 2000, 'the failed load\'s device')).reason).toBe('destroyed'); // nothing left held
    expect(f.uncaptured).toEqual([]); // caught by the scope, not left to the console
  });

  it('out of memory during load rejects with GpuOutOfMemoryError', async () => {
    f.oomOn('model.norm.weight'); // a vector: allocated outside the allocator's own per-group scopes
    const err = await load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuOutOfMemoryError);
    expect((err as Error).message).toMatch(/out of memory during the load.*model\.norm\.weight/s);
  });

  it('a validation error during generation rejects the call instead of returning tokens', async () => {
    const m = await load();
    expect((await m.generate(PROMPT, { maxNewTokens: 8, stopIds: [] })).ids).toEqual(reference);
    gpuOf(m).norm.destroy(); // the final norm's weight: every forward pass now submits a destroyed buffer
    const tokens: number[] = [];
    const err = await m.generate(PROMPT, { maxNewTokens: 8, stopIds: [], onToken: (id) => tokens.push(id) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuValidationError);
    expect((err as Error).message).toMatch(/during the prefill of 4 tokens/);
    expect(tokens).toEqual([]); // not one token of the failed pass was streamed
    await expect(m.logits(PROMPT)).rejects.toBeInstanceOf(GpuValidationError);
    expect(f.uncaptured).toEqual([]);
    // Every scope pushed was popped, failed calls included: the device's scope stack is empty.
    await expect(f.devices.at(-1)!.popErrorScope()).rejects.toThrow();
    m.dispose();
  });

  it('out of memory during generation rejects with GpuOutOfMemoryError; the model then works again', async () => {
    const m = await load();
    f.oomOn('logits all'); // allocated on first use of allLogits
    await expect(m.logits(PROMPT, { allLogits: true })).rejects.toBeInstanceOf(GpuOutOfMemoryError);
    expect(await m.logits(PROMPT, { allLogits: true })).toHaveLength(PROMPT.length * 97);
    expect((await m.generate(PROMPT, { maxNewTokens: 8, stopIds: [] })).ids).toEqual(reference);
    m.dispose();
  });

  it('an uncaptured GPU error between calls rejects the next call, once', async () => {
    const m = await load();
    const device = gpuOf(m).device;
    // Outside every call, as a stray write between requests would be.
    device.createBuffer({ label: 'stray', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    await device.queue.onSubmittedWorkDone();
    await new Promise((r) => setTimeout(r, 20)); // uncaptured errors are delivered as events
    expect(f.uncaptured).toHaveLength(1);
    await expect(m.generate(PROMPT, { maxNewTokens: 2 })).rejects.toMatchObject({ code: 'gpu-validation', message: expect.stringContaining('outside any call') });
    expect((await m.generate(PROMPT, { maxNewTokens: 8, stopIds: [] })).ids).toEqual(reference);
    f.uncaptured.length = 0;
    m.dispose();
  });

  it('a validation error during training rejects train() before any step is reported', async () => {
    const m = await load();
    await m.attachAdapter({ rank: 4, seed: 1, maxTokens: 16 });
    gpuOf(m).lora!.params.destroy();
    const steps: number[] = [];
    const err = await m.train(TRAIN_IDS, MASK, (s) => steps.push(s.step), { steps: 3, lr: 1e-2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuValidationError);
    // 'training step 1' when the step's readback completes, 'the training' when Dawn fails the
    // readback first and the run throws before step 1's event: both are the same typed error.
    expect((err as Error).message).toMatch(/during (the )?training( step 1)?/);
    expect(steps).toEqual([]);
    await expect(f.devices.at(-1)!.popErrorScope()).rejects.toThrow(); // balanced through the per-step checks too
    m.dispose();
  });

  it('device lost mid-generation: the pending generate and every later call reject with DeviceLostError; a new load works', async () => {
    const m = await load();
    const tokens: number[] = [];
    const pending = m.generate(PROMPT, {
      maxNewTokens: 40, stopIds: [],
      onToken: (id) => { tokens.push(id); if (tokens.length === 2) setTimeout(() => gpuOf(m).device.destroy(), 0); },
    });
    const err = await within(pending.catch((e: unknown) => e), 10_000, 'generate after device.destroy()');
    expect(err).toBeInstanceOf(DeviceLostError);
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    expect(tokens.length).toBeLessThan(40);
    expect(m.usable).toBe(false);
    const t0 = performance.now();
    await expect(within(m.generate(PROMPT, { maxNewTokens: 2 }), 2000, 'generate on a lost device')).rejects.toBeInstanceOf(DeviceLostError);
    await expect(within(m.logits(PROMPT), 2000, 'logits on a lost device')).rejects.toBeInstanceOf(DeviceLostError);
    await expect(within(m.attachAdapter({ rank: 2 }), 2000, 'attachAdapter on a lost device')).rejects.toBeInstanceOf(DeviceLostError);
    expect(performance.now() - t0).toBeLessThan(1000); // at once, not after a GPU wait
    m.dispose();
    const again = await load();
    expect((await again.generate(PROMPT, { maxNewTokens: 8, stopIds: [] })).ids).toEqual(reference);
    again.dispose();
  });

  it('device lost mid-training: train() rejects with DeviceLostError, later calls too; a new load trains', async () => {
    const m = await load();
    await m.attachAdapter({ rank: 4, seed: 1, maxTokens: 16 });
    const steps: number[] = [];
    let destroyed!: () => void;
    const destroyedAt = new Promise<void>((r) => { destroyed = r; });
    // Destroyed from the step callback while the next step runs (the first step may take long: shader compilation).
    const pending = m.train(TRAIN_IDS, MASK, (s) => { steps.push(s.step); if (s.step === 1) { gpuOf(m).device.destroy(); destroyed(); } }, { steps: 50, lr: 1e-2 });
    const settled = pending.catch((e: unknown) => e);
    await Promise.race([destroyedAt, settled]);
    const err = await within(settled, 10_000, 'train after device.destroy()');
    expect(err).toBeInstanceOf(DeviceLostError);
    expect(steps[0]).toBe(1);
    expect(steps.length).toBeLessThan(50);
    await expect(within(m.train(TRAIN_IDS, MASK, undefined, { steps: 1 }), 2000, 'train on a lost device')).rejects.toBeInstanceOf(DeviceLostError);
    await expect(within(m.lossAndGrads(TRAIN_IDS, MASK), 2000, 'lossAndGrads on a lost device')).rejects.toBeInstanceOf(DeviceLostError);
    expect(() => m.resetAdapter()).toThrow(DeviceLostError);
    await expect(m.adapter()).rejects.toBeInstanceOf(DeviceLostError);
    m.dispose();
    const again = await load();
    await again.attachAdapter({ rank: 4, seed: 1, maxTokens: 16 });
    const r = await again.train(TRAIN_IDS, MASK, undefined, { steps: 2, lr: 1e-2 });
    expect(r.losses).toHaveLength(2);
    expect(Number.isFinite(r.finalLoss)).toBe(true);
    again.dispose();
  });
});
