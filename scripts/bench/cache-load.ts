/**
 * One first-vs-cached load pair through LlamaModel.load and a weight-cache store, the same code in
 * Node (NodeCacheStore) and in the browser worker (OpfsCacheStore). The first load starts with no
 * entry (source read + quantize + write-through); the cached load must come from the entry with
 * zero source calls, or the pair is an error rather than a misleading figure.
 */
import type { LoadOptions, WeightFormat } from '../../models/api.ts';
import { cacheKeyFor } from '../../models/cache/key.ts';
import type { CacheStore } from '../../models/cache/store.ts';
import { GpuLlama } from '../../models/gpu/gpu-llama.ts';
import type { ModelSource } from '../../models/io/source.ts';
import { LlamaModel } from '../../models/llama-model.ts';
import { CountingSource } from '../../tests/models/cache/counting-source.ts';

export interface LoadPair {
  firstMs: number;
  cachedMs: number;
  /**
   * The cached load's weights phase: from the first to the last tensor's progress event (every
   * tensor but the first, a norm vector of a few KB). The rest of cachedMs is setup that does not
   * grow with the weights: tokenizer, GPU device, pipelines, activations.
   */
  cachedWeightsMs: number;
  /** Bytes of the cache entry (tensors + small files). */
  entryBytes: number;
  /** Bytes the first load read from the source. */
  sourceBytes: number;
  /** "vendor / architecture / device / description" of the GPU, null on the CPU backend. */
  adapter: string | null;
}

/** Ms of one load, counted until the GPU has finished the uploads it queued, and of its weights phase. */
async function timedLoad(source: ModelSource, opts: LoadOptions): Promise<{ model: LlamaModel; ms: number; weightsMs: number }> {
  let firstTensor = 0, lastTensor = 0;
  const onProgress: LoadOptions['onProgress'] = (p) => {
    if (p.phase !== 'weights') return;
    lastTensor = performance.now();
    firstTensor ||= lastTensor;
  };
  const t0 = performance.now();
  const model = await LlamaModel.load(source, { ...opts, onProgress });
  if (model.engine instanceof GpuLlama) await model.engine.ctx.device.queue.onSubmittedWorkDone();
  return { model, ms: performance.now() - t0, weightsMs: lastTensor - firstTensor };
}

function adapterName(model: LlamaModel): string | null {
  if (!(model.engine instanceof GpuLlama)) return null;
  const a = model.engine.ctx.adapterInfo;
  return [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') + (a.isFallback ? ' (fallback)' : '');
}

/**
 * Deletes the source's entry from `store`, loads from the source (writing the entry), then loads
 * again from the entry.
 * @example const p = await firstVsCached(new NodeDirSource(dir), new NodeCacheStore(tmp), { backend: 'cpu', weights: 'q4' });
 */
export async function firstVsCached(source: ModelSource, store: CacheStore, opts: Omit<LoadOptions, 'cache'> & { weights: WeightFormat }): Promise<LoadPair> {
  await store.deleteEntry(cacheKeyFor(source, opts.weights));
  const firstSource = new CountingSource(source);
  const first = await timedLoad(firstSource, { ...opts, cache: { store } });
  const adapter = adapterName(first.model);
  const entryBytes = first.model.cacheEntry?.bytes ?? 0;
  first.model.dispose();
  if (first.model.loadedFrom !== 'source' || entryBytes === 0) throw new Error(`first load of ${source.description} did not write a cache entry`);

  const cachedSource = new CountingSource(source);
  const cached = await timedLoad(cachedSource, { ...opts, cache: { store } });
  cached.model.dispose();
  if (cached.model.loadedFrom !== 'cache' || cachedSource.calls !== 0) {
    throw new Error(`second load of ${source.description} was not a pure cache load (${cached.model.loadedFrom}, ${cachedSource.calls} source calls)`);
  }
  return { firstMs: first.ms, cachedMs: cached.ms, cachedWeightsMs: cached.weightsMs, entryBytes, sourceBytes: firstSource.bytesRead(), adapter };
}
