/**
 * Builds and opens indexes: embeds every record's question, persists, and reloads when the stored
 * index is fresh for this corpus and embedder (one index per (corpus, embedder) pair = per store).
 */
import { throwIfAborted } from '../errors.ts';
import { hashCorpus } from './corpus-hash.ts';
import type { Embedder } from './embedder-types.ts';
import { EMBEDDED_FIELD, type VectorDtype } from './manifest.ts';
import { indexStatus, loadIndex, saveIndex, type IndexData, type IndexStatus } from './persist.ts';
import type { CorpusRecord } from './record.ts';
import type { IndexStore } from './store.ts';
import { roundToF16 } from './vectors.ts';

export type BuildPhase = 'hash' | 'embed' | 'save' | 'load';

export interface BuildProgress {
  phase: BuildPhase;
  done: number;
  total: number;
}

export interface BuildOptions {
  /** Shown in the manifest (file name, 'demo', 'FineMed-DPO'). */
  corpusName: string;
  /** Storage precision of the vectors; default 'F32'. */
  dtype?: VectorDtype;
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
}

/**
 * Embeds the corpus and saves it to `store`; returns the index as it was saved.
 * @example
 *   const data = await buildIndex(new NodeDirStore('out/idx'), records, embedder, { corpusName: 'traces.jsonl' });
 */
export async function buildIndex(store: IndexStore, records: CorpusRecord[], embedder: Embedder, options: BuildOptions): Promise<IndexData> {
  const { onProgress, signal } = options;
  onProgress?.({ phase: 'hash', done: 0, total: records.length });
  const corpusHash = await hashCorpus(records);
  throwIfAborted(signal);
  onProgress?.({ phase: 'embed', done: 0, total: records.length });
  const vectors = await embedder.embed(
    records.map((r) => r[EMBEDDED_FIELD]),
    { signal, onProgress: (p) => onProgress?.({ phase: 'embed', ...p }) },
  );
  if (options.dtype === 'F16') roundToF16(vectors); // same values in memory as on disk
  throwIfAborted(signal);
  onProgress?.({ phase: 'save', done: 0, total: 1 });
  const manifest = await saveIndex(store, {
    embedder: embedder.info, corpusName: options.corpusName, corpusHash, records, vectors, dtype: options.dtype,
  });
  onProgress?.({ phase: 'save', done: 1, total: 1 });
  return { manifest, vectors, records };
}

export interface OpenResult {
  data: IndexData;
  /** What the store held before: 'fresh' means it was loaded, otherwise it was (re)built. */
  previous: IndexStatus;
}

/**
 * Loads the stored index when it is fresh for `records` and `embedder`, else builds and saves it.
 * @example
 *   const { data, previous } = await openOrBuildIndex(store, records, embedder, { corpusName: 'demo' });
 *   if (previous.state === 'stale') console.log('rebuilt:', previous.reasons);
 */
export async function openOrBuildIndex(store: IndexStore, records: CorpusRecord[], embedder: Embedder, options: BuildOptions): Promise<OpenResult> {
  options.onProgress?.({ phase: 'hash', done: 0, total: records.length });
  const corpusHash = await hashCorpus(records);
  let previous = await indexStatus(store, { corpusHash, embedder: embedder.info });
  const dtype = options.dtype ?? 'F32';
  if (previous.state === 'fresh' && previous.manifest.vectors.dtype !== dtype) {
    previous = { state: 'stale', manifest: previous.manifest, reasons: [`the vector storage changed (${previous.manifest.vectors.dtype} -> ${dtype})`] };
  }
  if (previous.state === 'fresh') {
    options.onProgress?.({ phase: 'load', done: 0, total: 1 });
    // The hash was just computed from these records, and the stored ones are checked against it.
    const data = await loadIndex(store, { corpusHash, embedder: embedder.info });
    options.onProgress?.({ phase: 'load', done: 1, total: 1 });
    return { data, previous };
  }
  return { data: await buildIndex(store, records, embedder, options), previous };
}
