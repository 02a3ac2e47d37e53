/**
 * Where a load's weights come from, decided once before the engine starts:
 * - a complete entry for the source's key: config, tokenizer files and tensors from the cache,
 *   nothing read from the source (no checkpoint is opened);
 * - otherwise the source, with every tensor written through to a new entry as the engine makes
 *   it; a partial entry of the same source (commit/ETags and sizes unchanged) is resumed, so only
 *   its missing tensors are read from the source.
 * LlamaModel.load calls `finish` when the engine is loaded and `fail` when anything went wrong.
 */
import type { Backend, CacheMode, LmHeadFormat, WeightFormat } from '../api.ts';
import { openCheckpoint, type Checkpoint } from '../checkpoint.ts';
import { parseLlamaConfig, type LlamaConfig } from '../config.ts';
import { EngineError, InvalidInputError } from '../errors.ts';
import type { ModelSource } from '../io/source.ts';
import { CacheEntry, isCorruption } from './entry-reader.ts';
import { EntryWriter } from './entry-writer.ts';
import { corruptEntryError, tensorPath, type Manifest, type SourceInfo } from './format.ts';
import { cacheKey, identifySource, type SourceIdentity } from './key.ts';
import { engineTensorPlan } from './plan.ts';
import { RecordingSource } from './recording-source.ts';
import type { CacheLock, CacheStore } from './store.ts';
import { checkpointTensors, type TensorSource } from './tensor-source.ts';
import { WeightCache } from './weight-cache.ts';
import { resolveLmHead } from '../weights-plan.ts';

/** LoadOptions.cache: the store, and whether to use ('use'), replace ('refresh') or skip ('off') it. */
export interface LoadCacheOptions {
  store: CacheStore;
  mode?: CacheMode;
}

/** The cache entry a model was loaded from or written to. */
export interface CacheEntryInfo {
  key: string;
  /** Bytes of the entry's tensors and files. */
  bytes: number;
  /** The hub commit the entry holds, when the source told it. */
  commit?: string;
}

export interface OpenedWeights {
  config: LlamaConfig;
  tensors: TensorSource;
  /** Where config.json and the tokenizer files are read: the cache entry, or the source. */
  files: ModelSource;
  from: 'cache' | 'source';
  /** Bytes the weights phase will report in all (cache bytes for cached tensors, source bytes otherwise). */
  totalBytes: number;
  /** Bytes one tensor contributes to totalBytes. */
  bytesOf(name: string): number;
  /** Where one tensor is read from, for progress. */
  where(name: string): { from: 'cache' | 'source'; file?: string };
  /** Null without a cache; for a load from the source, filled in by finish(). */
  entry: CacheEntryInfo | null;
  /** True when another load (tab, worker, process) was writing this model's entry: this one read the source and cached nothing. */
  cacheBusy: boolean;
  /** The engine has every tensor: store the small files and mark the entry complete. */
  finish(signal?: AbortSignal): Promise<void>;
  /** The load failed: a corrupt or over-quota entry is deleted; a partial one stays to resume. */
  fail(e: unknown): Promise<void>;
}

/** Same source as when the partial entry was written: commit, ETags and sizes agree where both know them. */
function sameSource(a: SourceInfo, b: SourceInfo): boolean {
  if (a.commit && b.commit && a.commit !== b.commit) return false;
  const agree = (x: Record<string, string | number>, y: Record<string, string | number>) => Object.keys(x).every((k) => !(k in y) || x[k] === y[k]);
  return agree(a.etags, b.etags) && agree(a.files, b.files);
}

function sourceInfo(id: SourceIdentity, ckpt: Checkpoint, rev: { commit?: string; etags: Record<string, string> }, configText: number): SourceInfo {
  const files: Record<string, number> = { 'config.json': configText };
  for (const t of ckpt.tensors.values()) files[t.file.name] = t.file.size;
  return { ...id, ...(rev.commit ? { commit: rev.commit } : {}), etags: rev.etags, files };
}

function plain(ckpt: Checkpoint, files: ModelSource): OpenedWeights {
  const tensors = checkpointTensors(ckpt);
  return {
    config: ckpt.config, tensors, files, from: 'source', totalBytes: ckpt.totalBytes, entry: null,
    bytesOf: (n) => tensors.storedBytes(n),
    where: (n) => ({ from: 'source', file: ckpt.tensors.get(n)?.file.name }),
    cacheBusy: false,
    finish: async () => {},
    fail: async () => {},
  };
}

function fromCache(wc: WeightCache, entry: CacheEntry): OpenedWeights {
  const m = entry.manifest;
  const config = parseLlamaConfig(m.config);
  const missing = (name: string) => corruptEntryError(m.key, `tensor ${name} is not in the entry`);
  const ready = (name: string) => entry.tensor(name);
  const tensors: TensorSource = {
    config,
    storedBytes: (n) => ready(n)?.bytes ?? 0,
    readRows: async (n) => { throw missing(n); },
    readTensor: async (n) => { throw missing(n); },
    ready,
  };
  return {
    config, tensors, files: entry.files(), from: 'cache',
    totalBytes: m.tensors.reduce((n, t) => n + t.bytes, 0),
    bytesOf: (n) => ready(n)?.bytes ?? 0,
    where: (n) => ({ from: 'cache', file: tensorPath(n) }),
    entry: { key: m.key, bytes: m.totalBytes, ...(m.source.commit ? { commit: m.source.commit } : {}) },
    finish: async () => {},
    cacheBusy: false,
    fail: async (e) => { if (isCorruption(e)) await wc.dropUnlessBusy(m.key).catch(() => {}); },
  };
}

/**
 * @example
 *   const w = await openWeights(source, { weights: 'q4', backend: 'webgpu', cache: { store } });
 *   try { engine = await GpuLlama.load(w.tensors, ctx, opts); await w.finish(); }
 *   catch (e) { await w.fail(e); throw e; }
 */
export async function openWeights(
  source: ModelSource,
  o: {
    weights: WeightFormat; backend: Backend; cache?: LoadCacheOptions; signal?: AbortSignal;
    /** The lm_head's format (default resolveLmHead(weights)): part of the entry key. */
    lmHead?: LmHeadFormat;
    /** Runs once the config is known, before any weight is read or written (e.g. the device-limits check). */
    check?: (config: LlamaConfig) => void | Promise<void>;
  },
): Promise<OpenedWeights> {
  const mode = o.cache?.mode ?? 'use';
  if (mode !== 'use' && mode !== 'refresh' && mode !== 'off') throw new InvalidInputError(`cache mode must be 'use', 'refresh' or 'off', got ${JSON.stringify(mode)}.`);
  const rec = new RecordingSource(source);
  if (!o.cache || mode === 'off') {
    const ckpt = await openCheckpoint(rec, o.signal);
    await o.check?.(ckpt.config);
    return plain(ckpt, rec);
  }

  const wc = new WeightCache(o.cache.store);
  const id = identifySource(source);
  const lmHead = resolveLmHead(o.weights, o.lmHead);
  const key = cacheKey(id, o.weights, lmHead);
  const cachedLoad = async (entry: CacheEntry) => {
    const cached = fromCache(wc, entry);
    await o.check?.(cached.config);
    return cached;
  };
  if (mode === 'use') {
    const entry = await wc.completeEntry(key);
    if (entry) return cachedLoad(entry);
  }

  // Writing (or replacing) the entry takes its lock. Without it another load (a second tab, a
  // second CLI process) is writing this very entry now: read the source, and leave the entry be.
  const lock = await wc.store.tryLock(key);
  if (!lock) {
    const ckpt = await openCheckpoint(rec, o.signal);
    await o.check?.(ckpt.config);
    return { ...plain(ckpt, rec), cacheBusy: true };
  }
  try {
    let partial: Manifest | null = null;
    if (mode === 'refresh') await wc.store.deleteEntry(key);
    else {
      const entry = await wc.completeEntry(key, true); // another load may have finished it since the first look
      if (entry) {
        await lock.release();
        return await cachedLoad(entry);
      }
      partial = await wc.manifest(key, true);
    }
    return await writeThrough(wc, lock, rec, { ...o, id, key, lmHead, partial });
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/** A load from the source with every tensor written through to the entry `key`, under its lock. */
async function writeThrough(
  wc: WeightCache, lock: CacheLock, rec: RecordingSource,
  o: {
    weights: WeightFormat; backend: Backend; signal?: AbortSignal; check?: (config: LlamaConfig) => void | Promise<void>;
    id: SourceIdentity; key: string; lmHead: LmHeadFormat; partial: Manifest | null;
  },
): Promise<OpenedWeights> {
  const { id, key, lmHead, partial } = o;
  const ckpt = await openCheckpoint(rec, o.signal);
  await o.check?.(ckpt.config); // before the quota check: a model that cannot run needs no room
  const configBytes = rec.bytesOf('config.json') ?? 0;
  const info = sourceInfo(id, ckpt, await rec.revision(o.signal), configBytes);
  const resumable = partial && partial.weights === o.weights && partial.lmHead === lmHead && sameSource(partial.source, info)
    && JSON.stringify(partial.config) === JSON.stringify(ckpt.rawConfig) ? partial : null;
  let cached: CacheEntry | null = null;
  if (resumable) cached = await wc.guard(key, async () => { const e = new CacheEntry(wc.store, resumable); await e.checkSizes(); return e; }, true);
  const plan = engineTensorPlan(ckpt.config, o.weights, lmHead);
  const writer = await EntryWriter.start(wc.store, {
    key, source: info, weights: o.weights, lmHead, producer: o.backend, config: ckpt.rawConfig, plan,
  }, resumable);

  const ready = (n: string) => cached?.tensor(n) ?? null;
  const tensors = checkpointTensors(ckpt, { ready, sink: writer });
  const bytesOf = (n: string) => ready(n)?.bytes ?? tensors.storedBytes(n);
  const opened: OpenedWeights = {
    config: ckpt.config, tensors, files: rec, from: 'source',
    totalBytes: plan.reduce((n, t) => n + bytesOf(t.name), 0),
    bytesOf,
    where: (n) => (ready(n) ? { from: 'cache', file: tensorPath(n) } : { from: 'source', file: ckpt.tensors.get(n)?.file.name }),
    entry: null,
    cacheBusy: false,
    finish: async (signal) => {
      try {
        const m = await writer.finish(await rec.collect(signal));
        opened.entry = { key, bytes: m.totalBytes, ...(m.source.commit ? { commit: m.source.commit } : {}) };
      } finally {
        await lock.release();
      }
    },
    fail: async (e) => {
      try {
        // A partial entry is kept for the next load to resume, unless it is bad or did not fit.
        if (isCorruption(e) || (e instanceof EngineError && e.code === 'storage-quota')) await wc.store.deleteEntry(key).catch(() => {});
      } finally {
        await lock.release();
      }
    },
  };
  return opened;
}
