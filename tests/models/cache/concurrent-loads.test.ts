/**
 * Two loads of one model into one weight cache at once (two tabs, two CLI processes): one writes
 * the entry under its lock, the other reads the source and leaves the entry alone, and both get
 * the right logits. Deleting, refreshing or dropping a corrupt entry waits for no one and breaks
 * no writer: it is refused or left to the writer. The Node lock file is taken over when its
 * process is gone.
 */
import { fork } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheKeyFor } from '../../../models/cache/key.ts';
import { MemoryCacheStore } from '../../../models/cache/memory-store.ts';
import type { CacheStore } from '../../../models/cache/store.ts';
import { WeightCache } from '../../../models/cache/weight-cache.ts';
import { InvalidInputError } from '../../../models/errors.ts';
import { LlamaModel } from '../../../models/llama-model.ts';
import { NodeCacheStore } from '../../../node/cache/node-store.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { writeRandomLlama } from '../../helpers/random-model.ts';
import { CountingSource } from './counting-source.ts';

const IDS = [1, 5, 9, 33, 2, 70];
let tmp: string;
let modelDir: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'concurrent-loads-'));
  modelDir = join(tmp, 'model');
  await writeRandomLlama(modelDir, { seed: 9, hiddenSize: 64, intermediateSize: 80, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 97 });
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

let n = 0;
const stores: [string, () => CacheStore][] = [
  ['NodeCacheStore', () => new NodeCacheStore(join(tmp, `cache-${++n}`))],
  ['MemoryCacheStore', () => new MemoryCacheStore()],
];
const key = () => cacheKeyFor(new NodeDirSource(modelDir), 'q4');

async function load(store: CacheStore | null, source = new CountingSource(new NodeDirSource(modelDir))) {
  const model = await LlamaModel.load(source, { backend: 'cpu', weights: 'q4', maxContext: 32, ...(store ? { cache: { store } } : {}) });
  const logits = await model.logits(IDS, { allLogits: true });
  const out = { from: model.loadedFrom, entry: model.cacheEntry, logits, source };
  model.dispose();
  return out;
}

describe.each(stores)('%s', (_name, make) => {
  it('a lock is held once: a second tryLock is null until release; keys are independent; release is idempotent', async () => {
    const s = make();
    const a = await s.tryLock('a');
    expect(a).not.toBeNull();
    expect(await s.tryLock('a')).toBeNull();
    const b = await s.tryLock('b');
    expect(b).not.toBeNull();
    await a!.release();
    await a!.release();
    const again = await s.tryLock('a');
    expect(again).not.toBeNull();
    expect(await s.tryLock('b')).toBeNull(); // a's second release did not free b
    await again!.release();
    await b!.release();
  });

  it('two loads at once: both give the uncached logits, one writes a sound entry, the other reads the source and writes nothing', async () => {
    const reference = (await load(null)).logits;
    const store = make();
    const [x, y] = await Promise.all([load(store), load(store)]);
    expect(x.logits).toEqual(reference);
    expect(y.logits).toEqual(reference);
    const writers = [x, y].filter((r) => r.entry !== null);
    expect(writers).toHaveLength(1); // the other found the entry locked
    expect([x.from, y.from]).toEqual(['source', 'source']);
    const wc = new WeightCache(store);
    expect(await wc.verify(key())).toBe(true);
    const third = await load(store);
    expect(third.from).toBe('cache');
    expect(third.source.reads).toHaveLength(0);
    expect(third.logits).toEqual(reference);
    expect(await store.tryLock(key())).not.toBeNull(); // every load let go of the lock
  });

  it('while another load holds the entry: a load reads the source and caches nothing; delete is refused; the entry is kept', async () => {
    const store = make();
    const wc = new WeightCache(store);
    const first = await load(store);
    expect(first.entry).not.toBeNull();
    const other = (await store.tryLock(key()))!; // "another tab is rewriting it"
    expect(other).not.toBeNull();
    const refresh = await LlamaModel.load(new NodeDirSource(modelDir), { backend: 'cpu', weights: 'q4', maxContext: 32, cache: { store, mode: 'refresh' } });
    expect(refresh.loadedFrom).toBe('source');
    expect(refresh.cacheEntry).toBeNull();
    expect(await refresh.logits(IDS, { allLogits: true })).toEqual(first.logits);
    refresh.dispose();
    const err = await wc.delete(key()).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toMatch(/being written by a load in progress/);
    expect(await wc.dropUnlessBusy(key())).toBe(0);
    expect(await wc.verify(key())).toBe(true); // neither refresh, delete nor drop touched it
    await other.release();
    expect(await wc.delete(key())).toMatchObject({ deleted: true });
  });
});

describe('NodeCacheStore lock file', () => {
  it('another process holding it keeps it; once that process is killed, its stale lock is taken over', async () => {
    const root = join(tmp, 'cache-child');
    const holder = fork(join(import.meta.dirname, 'hold-lock.ts'), [root, 'k'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        holder.once('message', () => resolve());
        holder.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before taking the lock`)));
      });
      const store = new NodeCacheStore(root);
      expect(await readFile(join(root, 'k.lock'), 'utf8')).toBe(String(holder.pid));
      expect(await store.tryLock('k')).toBeNull();
      holder.kill('SIGKILL');
      await exited;
      const lock = await store.tryLock('k');
      expect(lock).not.toBeNull();
      expect(await readFile(join(root, 'k.lock'), 'utf8')).toBe(String(process.pid));
      await lock!.release();
    } finally {
      holder.kill('SIGKILL');
    }
  }, 30_000);

  it('an empty lock file counts as held for a few seconds (its owner is writing its pid), then as stale', async () => {
    const root = join(tmp, 'cache-empty');
    const store = new NodeCacheStore(root);
    await (await store.tryLock('k'))!.release(); // makes the root
    await writeFile(join(root, 'k.lock'), '');
    expect(await store.tryLock('k')).toBeNull();
    const old = new Date(Date.now() - 60_000);
    await utimes(join(root, 'k.lock'), old, old);
    const lock = await store.tryLock('k');
    expect(lock).not.toBeNull();
    await lock!.release();
  });
});
