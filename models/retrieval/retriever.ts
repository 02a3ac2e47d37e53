/**
 * The retrieval API of the app: `retrieve(question, k)` -> the k most similar records with their
 * scores and timings, and which retriever answered. Retriever embeds the question alone and
 * searches voy (or the exact scan); LexicalRetriever (lexical-retriever.ts) ranks by BM25.
 */
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import type { EmbedderLock } from './build.ts';
import type { Embedder } from './embedder-types.ts';
import { StaleIndexError } from './errors.ts';
import { staleReasons } from './manifest.ts';
import { ExactIndex } from './exact-index.ts';
import type { IndexData } from './persist.ts';
import type { CorpusRecord } from './record.ts';
import { chooseIndexKind, type IndexChoice } from './index-kind.ts';
import type { VectorIndex } from './search-types.ts';
import { VoyIndex } from './voy-index.ts';
import type { VoyApi } from './voy-wasm.ts';

/** Which retriever answered: BM25 over the questions, or the embedding index. */
export type RetrieverKind = 'lexical' | 'embedding';

export interface Retrieved {
  record: CorpusRecord;
  /**
   * embedding: cosine similarity of the question and the record's question, in [-1, 1].
   * lexical: the BM25 score normalised to [0, 1] by the query's self-match score (1 = the
   * record's question has the query's words as the query has them; see lexical-index.ts).
   */
  score: number;
  /** 0-based rank. */
  rank: number;
  /** lexical only: the raw BM25+ score. */
  bm25?: number;
}

export interface RetrieveTimings {
  embedMs: number;
  searchMs: number;
  totalMs: number;
}

export interface RetrieveResult {
  results: Retrieved[];
  /** embedMs is 0 for the lexical retriever. */
  timings: RetrieveTimings;
  /** Which retriever answered. Always set by Retriever, LexicalRetriever and the worker (optional in the type for older producers). */
  retriever?: RetrieverKind;
  /** Name of the corpus searched (set by the session; absent from a bare Retriever). */
  corpus?: string;
}

export interface RetrieverOptions {
  /** 'voy' (default) needs `voy`; 'exact' scans the vectors; 'auto' is voy up to 768 dims, else exact. */
  index?: IndexChoice;
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
    const requested = options.index ?? 'voy';
    // 'voy' asked explicitly is refused above 768 dims (DimensionsError); 'auto' picks exact then.
    const kind = requested === 'auto' ? chooseIndexKind('auto', dims).kind : requested;
    if (kind === 'voy') {
      if (!options.voy) throw new InvalidInputError('A voy index needs the voy-search module (loadVoy).');
      index = await VoyIndex.build(options.voy, data.vectors, dims, { onProgress: options.onProgress, signal: options.signal });
    } else {
      index = new ExactIndex(data.vectors, dims);
    }
    return new Retriever(data, embedder, index, performance.now() - t0);
  }

  /** The k records whose questions are nearest to `question`, nearest first. */
  async retrieve(question: string, k = 5, signal?: AbortSignal, lock: EmbedderLock = (fn) => fn()): Promise<RetrieveResult> {
    const q = question.trim();
    if (q === '') throw new InvalidInputError('The question is empty.');
    const t0 = performance.now();
    const vector = await lock(() => this.embedder.embed([q], { signal }));
    throwIfAborted(signal);
    const t1 = performance.now();
    const hits = this.index.search(vector, k);
    const t2 = performance.now();
    return {
      results: hits.map((h, rank) => ({ record: this.data.records[h.row], score: h.score, rank })),
      timings: { embedMs: t1 - t0, searchMs: t2 - t1, totalMs: t2 - t0 },
      retriever: 'embedding',
    };
  }

  dispose(): void {
    this.index.dispose();
  }
}
