/**
 * The weight cache over one store: looking entries up, verifying, listing and deleting them.
 * Whatever finds an entry unusable deletes it before the CacheCorruptError reaches the caller,
 * so the next load downloads again instead of failing the same way. Writing and deleting happen
 * under the entry's lock (CacheStore.tryLock), so concurrent loads never break each other's entry.
 */
import type { WeightFormat } from '../api.ts';
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import { CacheEntry, isCorruption } from './entry-reader.ts';
import { MANIFEST_FILE, parseManifest, type Manifest, type SourceKind } from './format.ts';
import type { CacheStore } from './store.ts';

/** One entry as the model manager lists it. */
export interface CachedModelInfo {
  key: string;
  /** URL base or folder the weights came from. */
  source: string;
  kind: SourceKind | 'unknown';
  repo?: string;
  revision?: string;
  commit?: string;
  weights: WeightFormat | 'unknown';
  /** Bytes the entry takes in the store now. */
  bytes: number;
  complete: boolean;
  tensorsDone: number;
  tensorsTotal: number;
  createdAt: string;
  /** Why the entry cannot be used (unreadable manifest, other format), if so. */
  problem?: string;
}

/**
 * @example
 *   const cache = new WeightCache(await OpfsCacheStore.open());
 *   for (const e of await cache.list()) console.log(e.key, e.bytes, e.complete);
 *   await cache.delete(key); // { deleted: true, freedBytes: 4.5e9 }
 */
export class WeightCache {
  constructor(readonly store: CacheStore) {}

  /**
   * Runs `fn`; when it finds the entry corrupt, the entry is deleted before the error goes on
   * (`locked`: the caller holds the entry's lock; otherwise it is taken for the delete).
   */
  async guard<T>(key: string, fn: () => Promise<T>, locked = false): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isCorruption(e)) await (locked ? this.store.deleteEntry(key) : this.dropUnlessBusy(key)).catch(() => {});
      throw e;
    }
  }

  /** Deletes the entry unless another load holds its lock (it is rewriting the entry then); the bytes freed. */
  async dropUnlessBusy(key: string): Promise<number> {
    const lock = await this.store.tryLock(key);
    if (!lock) return 0;
    try {
      return await this.store.deleteEntry(key);
    } finally {
      await lock.release();
    }
  }

  /** The entry's manifest, or null when there is none. CacheCorruptError (entry deleted) when unreadable. */
  manifest(key: string, locked = false): Promise<Manifest | null> {
    return this.guard(key, async () => {
      const bytes = await this.store.readFile(key, MANIFEST_FILE);
      return bytes ? parseManifest(bytes, key) : null;
    }, locked);
  }

  /** The entry if it is complete and its files have their sizes; null when absent or partial. */
  completeEntry(key: string, locked = false): Promise<CacheEntry | null> {
    return this.guard(key, async () => {
      const m = await this.manifest(key, locked);
      if (!m?.complete) return null;
      const entry = new CacheEntry(this.store, m);
      await entry.checkSizes();
      return entry;
    }, locked);
  }

  /**
   * Reads every file of a complete entry and checks sizes and checksums. True when verified,
   * false when there is no complete entry; CacheCorruptError (entry deleted) when it fails.
   */
  verify(key: string, signal?: AbortSignal): Promise<boolean> {
    return this.guard(key, async () => {
      const entry = await this.completeEntry(key);
      if (!entry) return false;
      await entry.verify(signal);
      return true;
    });
  }

  async list(): Promise<CachedModelInfo[]> {
    const out: CachedModelInfo[] = [];
    for (const key of await this.store.entries()) {
      const bytes = await this.store.entryBytes(key);
      let m: Manifest | null = null, problem: string | undefined;
      try {
        const raw = await this.store.readFile(key, MANIFEST_FILE);
        if (raw) m = parseManifest(raw, key);
        else problem = 'no manifest (an interrupted first write)';
      } catch (e) {
        problem = (e as Error).message;
      }
      out.push(m
        ? {
          key, source: m.source.location, kind: m.source.kind, repo: m.source.repo, revision: m.source.revision, commit: m.source.commit,
          weights: m.weights, bytes, complete: m.complete, tensorsDone: m.tensors.length, tensorsTotal: m.tensorsTotal, createdAt: m.createdAt,
        }
        : { key, source: '', kind: 'unknown', weights: 'unknown', bytes, complete: false, tensorsDone: 0, tensorsTotal: 0, createdAt: '', problem });
    }
    return out;
  }

  /**
   * Deletes an entry and says how many bytes that freed. InvalidInputError while a load (this or
   * another tab or process) is writing it: deleting under a writer would leave a broken entry.
   */
  async delete(key: string, signal?: AbortSignal): Promise<{ deleted: boolean; freedBytes: number }> {
    throwIfAborted(signal);
    const lock = await this.store.tryLock(key);
    if (!lock) throw new InvalidInputError(`The cached model ${key} is being written by a load in progress (in this or another tab or process); cancel that load or let it finish, then delete.`);
    try {
      const exists = (await this.store.entries()).includes(key);
      const freedBytes = exists ? await this.store.deleteEntry(key) : 0;
      return { deleted: exists, freedBytes };
    } finally {
      await lock.release();
    }
  }
}
