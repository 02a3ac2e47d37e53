/**
 * The LLM worker's weight cache: one OPFS store for every load (models/cache/opfs-store.ts), the
 * check that a cached entry is sound before a working model is replaced by it, and the
 * list / delete requests of the model manager. Where OPFS is missing, loads simply go uncached.
 */
import type { CacheMode, WeightFormat } from '../models/api.ts';
import { cacheKeyFor } from '../models/cache/key.ts';
import type { LoadCacheOptions } from '../models/cache/open-weights.ts';
import { OpfsCacheStore } from '../models/cache/opfs-store.ts';
import { WeightCache, type CachedModelInfo } from '../models/cache/weight-cache.ts';
import { InvalidInputError } from '../models/errors.ts';
import type { ModelSource } from '../models/io/source.ts';

let cache: Promise<WeightCache | null> | null = null;

/** The worker's cache (opened once), or null where this browser has no OPFS. */
export function workerCache(): Promise<WeightCache | null> {
  cache ??= OpfsCacheStore.available().then(async (ok) => (ok ? new WeightCache(await OpfsCacheStore.open()) : null));
  return cache;
}

/** LoadOptions.cache for a load request's mode; undefined for 'off' or without OPFS. */
export async function loadCacheOptions(mode: CacheMode | undefined): Promise<LoadCacheOptions | undefined> {
  const m = mode ?? 'use';
  if (m !== 'use' && m !== 'refresh' && m !== 'off') throw new InvalidInputError(`cache must be 'use', 'refresh' or 'off', got ${JSON.stringify(mode)}.`);
  const wc = m === 'off' ? null : await workerCache();
  return wc ? { store: wc.store, mode: m } : undefined;
}

/**
 * When the load would come from a complete entry, reads it whole and checks every size and
 * checksum first, so a corrupt entry fails (CacheCorruptError, entry deleted) while the model
 * loaded now is still there. Returns true when it verified an entry.
 */
export async function verifyBeforeReplacing(source: ModelSource, weights: WeightFormat, opts: LoadCacheOptions | undefined, signal: AbortSignal): Promise<boolean> {
  if (!opts || (opts.mode ?? 'use') !== 'use') return false;
  return new WeightCache(opts.store).verify(cacheKeyFor(source, weights), signal);
}

export async function listCachedModels(): Promise<CachedModelInfo[]> {
  return (await workerCache())?.list() ?? [];
}

export async function deleteCachedModel(key: unknown): Promise<{ deleted: boolean; freedBytes: number }> {
  if (typeof key !== 'string' || !key) throw new InvalidInputError('delete-cached-model needs the entry key (from list-cached-models).');
  const wc = await workerCache();
  return wc ? wc.delete(key) : { deleted: false, freedBytes: 0 };
}
