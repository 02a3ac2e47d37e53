/**
 * The lexical retriever with the same API as the embedding Retriever: BM25 over the records'
 * questions (lexical-index.ts), no model needed.
 */
import type { CorpusRecord } from './record.ts';
import { LexicalIndex, type LexicalBuildOptions } from './lexical-index.ts';
import type { RetrieveResult } from './retriever.ts';

export class LexicalRetriever {
  private constructor(
    readonly records: readonly CorpusRecord[],
    readonly index: LexicalIndex,
    /** How long building the index took. */
    readonly indexBuildMs: number,
  ) {}

  /**
   * @example
   *   const lexical = await LexicalRetriever.create(records);
   *   const { results, retriever } = await lexical.retrieve('fever and a stiff neck', 5); // retriever === 'lexical'
   */
  static async create(records: readonly CorpusRecord[], options: LexicalBuildOptions = {}): Promise<LexicalRetriever> {
    const t0 = performance.now();
    const index = await LexicalIndex.build(records, options);
    return new LexicalRetriever(records, index, performance.now() - t0);
  }

  /** The k records whose questions share the most (and rarest) words with `question`, best first. */
  async retrieve(question: string, k = 5): Promise<RetrieveResult> {
    const t0 = performance.now();
    const hits = this.index.search(question, k);
    const ms = performance.now() - t0;
    return {
      results: hits.map((h, rank) => ({ record: this.records[h.row], score: h.score, bm25: h.bm25, rank })),
      timings: { embedMs: 0, searchMs: ms, totalMs: ms },
      retriever: 'lexical',
    };
  }
}
