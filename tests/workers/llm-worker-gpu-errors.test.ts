/**
 * GPU errors through the LLM worker (the real workers/llm.worker.ts, in process, messages
 * structured-cloned): a validation and an out-of-memory error during load, and device loss
 * mid-generation and mid-training (the test request `debug-lose-device`), reach LlmClient as
 * their own classes; later calls reject with DeviceLostError, and the worker loads again.
 */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLostError, GpuOutOfMemoryError, GpuValidationError } from '../../models/errors.ts';
import { LlmClient } from '../../workers/client.ts';
import type { ModelSourceSpec, WorkerLoadOptions } from '../../workers/protocol.ts';
import { faultyGpu, type FaultyGpu } from '../helpers/gpu-faults.ts';
import { inProcessWorker } from '../helpers/in-process-worker.ts';
import { writeRandomLlama } from '../helpers/random-model.ts';

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms); });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

const PROMPT = [1, 5, 9, 3];
const OPTIONS: WorkerLoadOptions = { backend: 'webgpu', weights: 'f32', precision: 'f32', maxContext: 64 };

describe('GPU errors through the LLM worker', () => {
  let dir: string;
  let f: FaultyGpu;
  let client: LlmClient;
  let source: ModelSourceSpec;
  let reference: number[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'worker-gpu-errors-'));
    await writeRandomLlama(dir, { seed: 7, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 97 });
    const names = await readdir(dir);
    source = { kind: 'files', files: await Promise.all(names.map(async (n) => new File([await readFile(join(dir, n))], n))), paths: names, description: 'random' };
    f = faultyGpu();
    client = new LlmClient(await inProcessWorker(() => import('../../workers/llm.worker.ts'), { navigator: { gpu: f.gpu } }).then((w) => () => w));
    await client.load(source, OPTIONS);
    reference = (await client.generate({ ids: PROMPT, options: { maxNewTokens: 8, stopIds: [] } })).ids;
    expect(reference).toHaveLength(8); // seed 7: no eos (id 2) in the first 40 greedy tokens
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a validation error during load arrives as GpuValidationError', async () => {
    f.invalidOn('model.norm.weight');
    const err = await client.load(source, OPTIONS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuValidationError);
    expect(err).toMatchObject({ name: 'GpuValidationError', code: 'gpu-validation', message: expect.stringContaining('during the load') });
  });

  it('out of memory during load arrives as GpuOutOfMemoryError', async () => {
    f.oomOn('model.norm.weight');
    const err = await client.load(source, OPTIONS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuOutOfMemoryError);
    expect(err).toMatchObject({ code: 'gpu-oom' });
  });

  it('device lost mid-generation: DeviceLostError, later calls too, then a new load generates', async () => {
    await client.load(source, OPTIONS);
    const tokens: number[] = [];
    let lost: Promise<{ lost: boolean }> | null = null;
    const pending = client.generate({ ids: PROMPT, options: { maxNewTokens: 40, stopIds: [] } }, (t) => {
      tokens.push(t.tokenId);
      if (tokens.length === 2) lost = client.debugLoseDevice();
    });
    const err = await within(pending.catch((e: unknown) => e), 10_000, 'generate after debug-lose-device');
    expect(await lost).toEqual({ lost: true });
    expect(err).toBeInstanceOf(DeviceLostError);
    expect(tokens.length).toBeLessThan(40);
    await expect(within(client.generate({ ids: PROMPT, options: { maxNewTokens: 2 } }), 2000, 'generate on a lost device')).rejects.toBeInstanceOf(DeviceLostError);
    await client.load(source, OPTIONS);
    expect((await client.generate({ ids: PROMPT, options: { maxNewTokens: 8, stopIds: [] } })).ids).toEqual(reference);
  });

  it('device lost mid-training: DeviceLostError, then a new load trains', async () => {
    await client.attachAdapter({ config: { rank: 4, seed: 1, maxTokens: 16 } });
    const input = { ids: [1, 5, 9, 3, 7, 2, 8, 4], mask: [0, 0, 1, 1, 1, 1, 1, 1] };
    let lost: Promise<{ lost: boolean }> | null = null;
    const pending = client.ttt({ ...input, options: { steps: 50, lr: 1e-2 } }, (s) => { if (s.step === 1) lost = client.debugLoseDevice(); });
    const settled = pending.catch((e: unknown) => e);
    // The first step may take long (shader compilation); the bound starts once the device is lost.
    while (!lost && !(await Promise.race([settled.then(() => true), new Promise((r) => setTimeout(() => r(false), 50))]))) { /* wait */ }
    const err = await within(settled, 10_000, 'ttt after debug-lose-device');
    expect(err).toBeInstanceOf(DeviceLostError);
    await expect(within(client.ttt({ ...input, options: { steps: 1 } }), 2000, 'ttt on a lost device')).rejects.toBeInstanceOf(DeviceLostError);
    await client.load(source, OPTIONS);
    await client.attachAdapter({ config: { rank: 4, seed: 1, maxTokens: 16 } });
    const r = await client.ttt({ ...input, options: { steps: 2, lr: 1e-2 } });
    expect(r.losses).toHaveLength(2);
    await client.unload();
  });
});
