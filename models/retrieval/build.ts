/**
 * Builds and opens indexes: embeds every record's question, persists, and reloads when the stored
 * index is fresh for this corpus and embedder (one index per (corpus, embedder) pair = per store).
 * Builds are resumable: the embedded rows are stored checkpoint by checkpoint (partial-build.ts),
 * and a build that finds a usable partial build continues from its last checkpoint.
 */
import { AbortError, throwIfAborted } from '../errors.ts';
import { hashCorpus } from './corpus-hash.ts';
import type { Embedder } from './embedder-types.ts';
import { EMBEDDED_FIELD, type VectorDtype } from './manifest.ts';
import { appendChunk, clearPartial, newMarker, partialStatus, readChunks, type PartialMarker } from './partial-build.ts';
import { indexStatus, loadIndex, saveIndex, type IndexData, type IndexStatus } from './persist.ts';
import type { CorpusRecord } from './record.ts';
import type { IndexStore } from './store.ts';
import { roundToF16 } from './vectors.ts';

export type BuildPhase = 'hash' | 'embed' | 'save' | 'load';

export interface BuildProgress {
  phase: BuildPhase;
  done: number;
  total: number;
  /** embed: texts per second measured in this session (absent until the first batch is done). */
  textsPerSecond?: number;
  /** embed: milliseconds left at that rate. */
  etaMs?: number;
  /** embed: rows found embedded in a partial build and not embedded again (0 for a fresh build). */
  resumedFrom?: number;
}

/** Runs `fn` with the embedder to itself (the worker serialises embedder use with it). */
export type EmbedderLock = <T>(fn: () => Promise<T>) => Promise<T>;

export interface BuildOptions {
  /** Shown in the manifest (file name, 'demo', 'FineMed-DPO'). */
  corpusName: string;
  /** Storage precision of the vectors; default 'F32'. */
  dtype?: VectorDtype;
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
  /** Continue a stored partial build when it matches (default true); false starts again. */
  resume?: boolean;
  /**
   * Rows per checkpoint (stored chunk). Default 'auto': 64 rows first, then about
   * CHECKPOINT_SECONDS of work at the measured rate (a cancel loses at most that).
   */
  checkpointRows?: number | 'auto';
  /** The corpus hash when the caller has it already. */
  corpusHash?: string;
  lock?: EmbedderLock;
}

/** Work between checkpoints in 'auto' mode. */
export const CHECKPOINT_SECONDS = 5;
const FIRST_CHECKPOINT = 64;
const MAX_CHECKPOINT = 4096;

const noLock: EmbedderLock = (fn) => fn();

function nextChunkRows(setting: number | 'auto', rate: number | undefined): number {
  if (setting !== 'auto') return Math.max(1, Math.floor(setting));
  if (!rate) return FIRST_CHECKPOINT;
  return Math.min(MAX_CHECKPOINT, Math.max(16, Math.round((rate * CHECKPOINT_SECONDS) / 16) * 16));
}

/**
 * Embeds the corpus (resuming a stored partial build) and saves it to `store`; returns the index
 * as it was saved. Progress reports texts/s and an ETA from this session's measured rate.
 * @example
 *   const data = await buildIndex(new NodeDirStore('out/idx'), records, embedder, { corpusName: 'traces.jsonl' });
 */
export async function buildIndex(store: IndexStore, records: CorpusRecord[], embedder: Embedder, options: BuildOptions): Promise<IndexData> {
  const { onProgress, signal } = options;
  const dtype = options.dtype ?? 'F32';
  const lock = options.lock ?? noLock;
  const total = records.length;
  const dims = embedder.info.dims;
  onProgress?.({ phase: 'hash', done: 0, total });
  const corpusHash = options.corpusHash ?? (await hashCorpus(records));
  throwIfAborted(signal);

  const vectors = new Float32Array(total * dims);
  let marker: PartialMarker | null = null;
  const status = await partialStatus(store, { corpusHash, embedder: embedder.info, dtype });
  if (status.state === 'usable' && (options.resume ?? true) && status.marker.count === total) {
    try {
      await readChunks(store, status.marker, vectors);
      marker = status.marker;
    } catch {
      marker = null; // damaged: start again
    }
  }
  if (!marker) {
    if (status.state !== 'none') await clearPartial(store);
    marker = newMarker({ corpusHash, corpusName: options.corpusName, count: total, embedder: embedder.info, dtype, device: embedder.device, embedderSource: embedder.source });
  }
  const resumedFrom = marker.done;

  let embedded = 0; // rows embedded in this session
  let sessionMs = 0;
  let rate: number | undefined;
  const report = (done: number): void => {
    onProgress?.({ phase: 'embed', done, total, resumedFrom, ...(rate ? { textsPerSecond: rate, etaMs: ((total - done) / rate) * 1000 } : {}) });
  };
  report(marker.done);
  while (marker.done < total) {
    const start = marker.done;
    const end = Math.min(total, start + nextChunkRows(options.checkpointRows ?? 'auto', rate));
    const texts = records.slice(start, end).map((r) => r[EMBEDDED_FIELD]);
    const t0 = performance.now();
    const chunk = await lock(() =>
      embedder.embed(texts, {
        signal,
        onProgress: (p) => {
          // Within a chunk: the rate so far including this chunk's finished batches.
          const ms = sessionMs + (performance.now() - t0);
          if (p.done < p.total && ms > 0) rate = ((embedded + p.done) / ms) * 1000;
          report(start + p.done);
        },
      }),
    );
    const ms = performance.now() - t0;
    throwIfAborted(signal);
    embedded += end - start;
    sessionMs += ms;
    rate = sessionMs > 0 ? (embedded / sessionMs) * 1000 : undefined;
    vectors.set(chunk, start * dims);
    marker = await appendChunk(store, marker, start, chunk, ms, embedder.device);
    report(marker.done);
  }
  if (signal?.aborted) throw new AbortError();
  if (dtype === 'F16') roundToF16(vectors); // same values in memory as on disk
  onProgress?.({ phase: 'save', done: 0, total: 1 });
  const manifest = await saveIndex(store, {
    embedder: embedder.info, corpusName: options.corpusName, corpusHash, records, vectors, dtype,
    embedderSource: embedder.source,
    build: { device: embedder.device, textsPerSecond: rate ?? 0, resumedFrom },
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
 * Loads the stored index when it is fresh for `records` and `embedder`, else builds and saves it
 * (resuming a partial build of the same corpus and embedder).
 * @example
 *   const { data, previous } = await openOrBuildIndex(store, records, embedder, { corpusName: 'demo' });
 *   if (previous.state === 'stale') console.log('rebuilt:', previous.reasons);
 */
export async function openOrBuildIndex(store: IndexStore, records: CorpusRecord[], embedder: Embedder, options: BuildOptions): Promise<OpenResult> {
  options.onProgress?.({ phase: 'hash', done: 0, total: records.length });
  const corpusHash = options.corpusHash ?? (await hashCorpus(records));
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
  return { data: await buildIndex(store, records, embedder, { ...options, corpusHash }), previous };
}
