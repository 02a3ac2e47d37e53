/**
 * LlamaModel.load with the weight cache, CPU reference and WebGPU (Dawn): a cached load gives
 * bit-identical logits with no source access; corrupt, truncated or foreign entries are refused,
 * deleted and re-downloaded; an interrupted load resumes with only the missing tensors read;
 * running out of space is a StorageQuotaError with no complete entry left behind.
 */
import { mkdtemp, open, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, LoadProgress, Precision, WeightFormat } from '../../../models/api.ts';
import { MANIFEST_FILE, tensorPath } from '../../../models/cache/format.ts';
import { cacheKeyFor } from '../../../models/cache/key.ts';
import { MemoryCacheStore } from '../../../models/cache/memory-store.ts';
import { NodeCacheStore } from '../../../node/cache/node-store.ts';
import { engineTensorPlan } from '../../../models/cache/plan.ts';
import type { CacheStore } from '../../../models/cache/store.ts';
import { WeightCache } from '../../../models/cache/weight-cache.ts';
import { openCheckpoint } from '../../../models/checkpoint.ts';
import { AbortError, CacheCorruptError, StorageQuotaError } from '../../../models/errors.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { LlamaModel } from '../../../models/llama-model.ts';
import { writeRandomLlama, type RandomLlamaOptions } from '../../helpers/random-model.ts';
import { CountingSource } from './counting-source.ts';
import { expectNoGpuErrors, watchedGpu } from '../../helpers/gpu.ts';

// K = 80 is not a multiple of 32 (padded groups) and N*G odd somewhere (padded scales).
const SHAPE: RandomLlamaOptions = { seed: 5, hiddenSize: 64, intermediateSize: 80, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 97 };
const IDS = [1, 5, 9, 33, 2, 70];

let tmp: string;
let modelDir: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'cached-load-'));
  modelDir = join(tmp, 'model');
  await writeRandomLlama(modelDir, SHAPE);
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

// Every test in this file: no WebGPU validation error on the devices the loads acquire.
expectNoGpuErrors();

let storeCount = 0;
const nodeStore = () => new NodeCacheStore(join(tmp, `cache-${++storeCount}`));

async function load(backend: Backend, weights: WeightFormat, store: CacheStore | null, source = new CountingSource(new NodeDirSource(modelDir)), extra: { signal?: AbortSignal; onProgress?: (p: LoadProgress) => void; mode?: 'use' | 'refresh' | 'off'; precision?: Precision } = {}) {
  const model = await LlamaModel.load(source, {
    backend, weights, maxContext: 32, precision: extra.precision ?? 'f32', ...(backend === 'webgpu' ? { gpu: await watchedGpu() } : {}),
    signal: extra.signal, onProgress: extra.onProgress, ...(store ? { cache: { store, mode: extra.mode } } : {}),
  });
  return { model, source };
}

async function logitsOf(m: LlamaModel): Promise<Float32Array> {
  const l = await m.logits(IDS, { allLogits: true });
  m.dispose();
  return l;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
}

const key = (weights: WeightFormat) => cacheKeyFor(new NodeDirSource(modelDir), weights);

describe.each([['cpu'], ['webgpu']] as const)('weight cache, %s engine', (backend) => {
  for (const weights of ['q4', 'f32'] as const) {
    it(`${weights}: load -> cache -> cached load gives bit-identical logits with zero source reads`, async () => {
      const reference = await logitsOf((await load(backend, weights, null)).model);
      const store = nodeStore();
      const first = await load(backend, weights, store);
      expect(first.model.loadedFrom).toBe('source');
      expect(first.model.cacheEntry).toMatchObject({ key: key(weights) });
      expect(await logitsOf(first.model)).toEqual(reference); // writing through changes nothing
      const [entry] = await new WeightCache(store).list();
      const plan = engineTensorPlan((await openCheckpoint(new NodeDirSource(modelDir))).config, weights);
      expect(entry).toMatchObject({ key: key(weights), complete: true, weights, kind: 'node-dir', tensorsDone: plan.length, tensorsTotal: plan.length });
      expect(entry.bytes).toBeGreaterThanOrEqual(plan.reduce((n, t) => n + t.bytes, 0));

      const progress: LoadProgress[] = [];
      const cached = await load(backend, weights, store, undefined, { onProgress: (p) => progress.push(p) });
      expect(cached.source.calls).toBe(0);
      expect(cached.source.reads).toEqual([]);
      expect(cached.model.loadedFrom).toBe('cache');
      expect(cached.model.cacheEntry).toEqual(first.model.cacheEntry);
      const weightEvents = progress.filter((p) => p.phase === 'weights');
      expect(weightEvents.length).toBeGreaterThan(0);
      expect(weightEvents.every((p) => p.from === 'cache' && p.file?.startsWith('tensors/'))).toBe(true);
      expect(progress.at(-1)).toMatchObject({ phase: 'ready', from: 'cache' });
      const logits = await logitsOf(cached.model);
      expect(logits.length).toBe(IDS.length * SHAPE.vocabSize);
      expect(logits).toEqual(reference);
    });
  }

  it('a flipped byte in a tensor file -> CacheCorruptError naming it, entry deleted, next load from the source', async () => {
    const store = nodeStore();
    const reference = await logitsOf((await load(backend, 'q4', store)).model);
    const name = 'model.layers.1.mlp.up_proj.weight';
    const path = join(store.root, key('q4'), tensorPath(name));
    const fh = await open(path, 'r+');
    const b = new Uint8Array(1);
    await fh.read(b, 0, 1, 100);
    b[0] ^= 0x10;
    await fh.write(b, 0, 1, 100);
    await fh.close();
    const e = await rejection(load(backend, 'q4', store));
    expect(e).toBeInstanceOf(CacheCorruptError);
    expect(e.message).toContain(name);
    expect(e.message).toMatch(/checksum.*downloaded again/);
    expect(await store.entries()).toEqual([]);
    const again = await load(backend, 'q4', store);
    expect(again.model.loadedFrom).toBe('source');
    expect(again.source.calls).toBeGreaterThan(0);
    expect(await logitsOf(again.model)).toEqual(reference);
    expect((await load(backend, 'q4', store)).model.loadedFrom).toBe('cache');
  });
});

describe('weight cache with the default precision', () => {
  // The other WebGPU cases pin f32 activations; the app and CLI default to f16 where the adapter has shader-f16 (lavapipe does).
  it("webgpu q4, precision 'auto': the cached load gives the first load's logits with zero source calls", async () => {
    const store = nodeStore();
    const first = await load('webgpu', 'q4', store, undefined, { precision: 'auto' });
    expect(first.model.loadedFrom).toBe('source');
    const precision = first.model.precision;
    const reference = await logitsOf(first.model);
    const cached = await load('webgpu', 'q4', store, undefined, { precision: 'auto' });
    expect(cached.model.loadedFrom).toBe('cache');
    expect(cached.source.calls).toBe(0);
    expect(cached.model.precision).toBe(precision);
    const logits = await logitsOf(cached.model);
    expect(logits.length).toBe(IDS.length * SHAPE.vocabSize);
    expect(logits).toEqual(reference);
  });
});

describe('weight cache: bad entries are never used', () => {
  it('a truncated tensor file -> CacheCorruptError before anything loads; entry deleted', async () => {
    const store = nodeStore();
    (await load('cpu', 'f32', store)).model.dispose();
    const name = 'model.embed_tokens.weight';
    await truncate(join(store.root, key('f32'), tensorPath(name)), 1000);
    const e = await rejection(load('cpu', 'f32', store));
    expect(e).toBeInstanceOf(CacheCorruptError);
    expect(e.message).toMatch(new RegExp(`tensor ${name.replace(/\./g, '\\.')} has 1000 bytes on disk, ${SHAPE.vocabSize * SHAPE.hiddenSize * 4} expected`));
    expect(await store.entries()).toEqual([]);
    expect((await load('cpu', 'f32', store)).model.loadedFrom).toBe('source');
  });

  it('another cache format version, an unreadable manifest, a missing file -> refused, deleted, re-downloaded', async () => {
    const cases: [string, (root: string) => Promise<void>, RegExp][] = [
      ['version bump', async (dir) => {
        const m = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8'));
        await writeFile(join(dir, MANIFEST_FILE), JSON.stringify({ ...m, version: m.version + 1 }));
      }, /cache format version 2, this app reads version 1/],
      ['torn manifest', async (dir) => {
        const text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
        await writeFile(join(dir, MANIFEST_FILE), text.slice(0, text.length / 2));
      }, /manifest is unreadable/],
      ['missing tensor', (dir) => rm(join(dir, tensorPath('model.norm.weight'))), /tensor model\.norm\.weight is missing/],
    ];
    for (const [what, damage, message] of cases) {
      const store = nodeStore();
      (await load('cpu', 'q4', store)).model.dispose();
      await damage(join(store.root, key('q4')));
      const e = await rejection(load('cpu', 'q4', store));
      expect(e, what).toBeInstanceOf(CacheCorruptError);
      expect(e.message, what).toMatch(message);
      expect(await store.entries(), what).toEqual([]);
      const again = await load('cpu', 'q4', store);
      expect(again.model.loadedFrom, what).toBe('source');
    }
  });

  it('verify() reads every file: a flipped byte in a cached config.json is caught there', async () => {
    const store = nodeStore();
    (await load('cpu', 'q4', store)).model.dispose();
    const path = join(store.root, key('q4'), 'files', 'config.json');
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('"hidden_size": 64', '"hidden_size": 65'));
    const wc = new WeightCache(store);
    await expect(wc.verify(key('q4'))).rejects.toThrow(/file config\.json fails its checksum/);
    expect(await wc.verify(key('q4'))).toBe(false); // deleted
  });
});

describe('weight cache: interrupted loads resume', () => {
  /** First byte of each file's data section: reads before it are headers. */
  async function dataStart(dir: string): Promise<(file: string) => number> {
    const ck = await openCheckpoint(new NodeDirSource(dir));
    const starts = new Map<string, number>();
    for (const t of ck.tensors.values()) starts.set(t.file.name, Math.min(starts.get(t.file.name) ?? Infinity, t.begin));
    return (f) => starts.get(f) ?? 0;
  }

  for (const backend of ['cpu', 'webgpu'] as const) {
    it(`${backend}: abort mid-way, then only the missing tensors are read from the source`, async () => {
      const store = nodeStore();
      const reference = await logitsOf((await load(backend, 'q4', null)).model);
      const ac = new AbortController();
      const stopAt = 'model.layers.1.self_attn.k_proj.weight';
      const e = await rejection(load(backend, 'q4', store, undefined, { signal: ac.signal, onProgress: (p) => { if (p.tensor === stopAt) ac.abort(); } }));
      expect(e).toBeInstanceOf(AbortError);
      const [partial] = await new WeightCache(store).list();
      expect(partial.complete).toBe(false);
      expect(partial.tensorsDone).toBeGreaterThan(5);
      expect(partial.tensorsDone).toBeLessThan(partial.tensorsTotal);
      const m = (await new WeightCache(store).manifest(key('q4')))!;
      const ck = await openCheckpoint(new NodeDirSource(modelDir));
      const done = new Set(m.tensors.map((t) => t.name));
      expect(done.has(stopAt)).toBe(false);
      const missingBytes = [...ck.tensors.values()].filter((t) => !done.has(t.name)).reduce((n, t) => n + t.end - t.begin, 0);

      const resumed = await load(backend, 'q4', store);
      expect(resumed.model.loadedFrom).toBe('source');
      expect(resumed.source.bytesRead(await dataStart(modelDir))).toBe(missingBytes);
      expect(missingBytes).toBeLessThan(ck.totalBytes);
      expect(await logitsOf(resumed.model)).toEqual(reference);
      const [entry] = await new WeightCache(store).list();
      expect(entry.complete).toBe(true);
      expect((await load(backend, 'q4', store)).source.calls).toBe(0);
    });
  }

  it('a partial entry of a source that changed since (new mtime) starts over', async () => {
    const dir = join(tmp, 'changing');
    await writeRandomLlama(dir, { ...SHAPE, seed: 1 });
    const store = nodeStore();
    const src = () => new CountingSource(new NodeDirSource(dir));
    const ac = new AbortController();
    await rejection(load('cpu', 'f32', store, src(), { signal: ac.signal, onProgress: (p) => { if (p.tensor === 'model.layers.1.mlp.up_proj.weight') ac.abort(); } }));
    expect((await new WeightCache(store).list())[0].complete).toBe(false);
    await writeRandomLlama(dir, { ...SHAPE, seed: 2 }); // same sizes, other values
    const later = new Date(Date.now() + 5000);
    await utimes(join(dir, 'model.safetensors'), later, later);
    const again = await load('cpu', 'f32', store, src());
    const ck = await openCheckpoint(new NodeDirSource(dir));
    expect(again.source.bytesRead(() => 1000)).toBeGreaterThanOrEqual(ck.totalBytes - 1000); // everything read again
    const fresh = await logitsOf((await load('cpu', 'f32', null, src())).model);
    expect(await logitsOf(again.model)).toEqual(fresh);
  });
});

/** A full disk that does not say how full it is: the quota error comes mid-write. */
class SilentFullStore extends MemoryCacheStore {
  override async available(): Promise<number | null> { return null; }
}

describe('weight cache: storage quota', () => {
  it('refuses up front when the store says the entry will not fit, before reading any weights', async () => {
    const store = new MemoryCacheStore({ limitBytes: 10_000 });
    const source = new CountingSource(new NodeDirSource(modelDir));
    const e = await rejection(load('cpu', 'q4', store, source));
    expect(e).toBeInstanceOf(StorageQuotaError);
    expect(e.message).toMatch(/needs .* more, .* is available in memory/);
    expect(source.bytesRead(() => 1000)).toBe(0);
    expect(await store.entries()).toEqual([]);
  });

  for (const backend of ['cpu', 'webgpu'] as const) {
    it(`${backend}: quota exceeded while writing -> StorageQuotaError, no entry left (complete or not)`, async () => {
      const store = new SilentFullStore({ limitBytes: 20_000 });
      const e = await rejection(load(backend, 'q4', store));
      expect(e).toBeInstanceOf(StorageQuotaError);
      expect(e.message).toMatch(/Storage is full while writing .*tensors\//);
      expect(await new WeightCache(store).list()).toEqual([]);
      expect((await load(backend, 'q4', null)).model.loadedFrom).toBe('source'); // loading without the cache works
    });
  }
});

describe('weight cache modes', () => {
  it("'refresh' reads the source again and rewrites the entry; 'off' neither reads nor writes it", async () => {
    const store = nodeStore();
    (await load('cpu', 'q4', store)).model.dispose();
    const created = (await new WeightCache(store).manifest(key('q4')))!.createdAt;
    await new Promise((r) => setTimeout(r, 5));
    const refreshed = await load('cpu', 'q4', store, undefined, { mode: 'refresh' });
    expect(refreshed.model.loadedFrom).toBe('source');
    expect(refreshed.source.bytesRead()).toBeGreaterThan(0);
    const m = (await new WeightCache(store).manifest(key('q4')))!;
    expect(m.complete).toBe(true);
    expect(m.createdAt).not.toBe(created);
    const off = await load('cpu', 'f32', store, undefined, { mode: 'off' });
    expect(off.model.loadedFrom).toBe('source');
    expect(off.model.cacheEntry).toBeNull();
    expect(await store.entries()).toEqual([key('q4')]);
  });
});
