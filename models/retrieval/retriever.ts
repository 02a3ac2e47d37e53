/**
 * The retrieval API of the app: `retrieve(question, k)` -> the k most similar records with their
 * cosine scores and timings. Embeds the question alone, searches voy (or the exact scan).
 */
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import type { Embedder } from './embedder-types.ts';
import { StaleIndexError } from './errors.ts';
import { staleReasons } from './manifest.ts';
import { ExactIndex } from './exact-index.ts';
import type { IndexData } from './persist.ts';
import type { CorpusRecord } from './record.ts';
import type { IndexKind, VectorIndex } from './search-types.ts';
import { VoyIndex } from './voy-index.ts';
import type { VoyApi } from './voy-wasm.ts';

export interface Retrieved {
  record: CorpusRecord;
  /** Cosine similarity to the question. */
  score: number;
  /** 0-based rank. */
  rank: number;
}

export interface RetrieveTimings {
  embedMs: number;
  searchMs: number;
  totalMs: number;
}

export interface RetrieveResult {
  results: Retrieved[];
  timings: RetrieveTimings;
}

export interface RetrieverOptions {
  /** 'voy' (default) needs `voy`; 'exact' scans the vectors. */
  index?: IndexKind;
  voy?: VoyApi;
  /** Index build progress (voy shards). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export class Retriever {
  private constructor(
    readonly data: IndexData,
    readonly embedder: Embedder,
    readonly index: VectorIndex,
    /** How long building the in-memory index took. */
    readonly indexBuildMs: number,
  ) {}

  /**
   * @example
   *   const retriever = await Retriever.create(await loadIndex(store), embedder, { voy });
   *   const { results, timings } = await retriever.retrieve('Fever and a stiff neck in a 20-year-old?', 5);
   */
  static async create(data: IndexData, embedder: Embedder, options: RetrieverOptions = {}): Promise<Retriever> {
    const dims = data.manifest.vectors.dims;
    // Questions must be embedded by the same model as the corpus, or the scores mean nothing.
    const reasons = staleReasons(data.manifest, { embedder: embedder.info });
    if (reasons.length) throw new StaleIndexError(reasons);
    const t0 = performance.now();
    let index: VectorIndex;
    if ((options.index ?? 'voy') === 'voy') {
      if (!options.voy) throw new InvalidInputError('A voy index needs the voy-search module (loadVoy).');
      index = await VoyIndex.build(options.voy, data.vectors, dims, { onProgress: options.onProgress, signal: options.signal });
    } else {
      index = new ExactIndex(data.vectors, dims);
    }
    return new Retriever(data, embedder, index, performance.now() - t0);
  }

  /** The k records whose questions are nearest to `question`, nearest first. */
  async retrieve(question: string, k = 5, signal?: AbortSignal): Promise<RetrieveResult> {
    const q = question.trim();
    if (q === '') throw new InvalidInputError('The question is empty.');
    const t0 = performance.now();
    const vector = await this.embedder.embed([q], { signal });
    throwIfAborted(signal);
    const t1 = performance.now();
    const hits = this.index.search(vector, k);
    const t2 = performance.now();
    return {
      results: hits.map((h, rank) => ({ record: this.data.records[h.row], score: h.score, rank })),
      timings: { embedMs: t1 - t0, searchMs: t2 - t1, totalMs: t2 - t0 },
    };
  }

  dispose(): void {
    this.index.dispose();
  }
}
