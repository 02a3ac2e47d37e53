/**
 * The lexical retriever: BM25 (MiniSearch's BM25+, k=1.2, b=0.7, d=0.5) over the records'
 * question, the same field the embedder embeds. Needs no model, so it serves before an embedder is
 * downloaded and while the embedding index builds.
 *
 * Scores. `bm25` is MiniSearch's raw score: the sum over the query's distinct words (English
 * function words left out) of idf * (d + tf (k+1) / (tf + k (1 - b + b len/avgLen))), where len is
 * the record's count of distinct words; fuzzy and prefix matches (for words the corpus lacks)
 * weighted down; times the number of query words the record matched. `score` is that divided by the
 * self-match score of the query, the score a record whose question were exactly the query would
 * get from this index (same corpus statistics), clamped to [0, 1]: a query equal to a record's
 * question gives that record 1, a record sharing none of its words 0. It compares records for one
 * query, not with the embedder's cosine.
 */
import MiniSearch, { type AsPlainObject, type SearchOptions } from 'minisearch';
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import { IndexFormatError } from './errors.ts';
import { EMBEDDED_FIELD } from './manifest.ts';
import type { CorpusRecord } from './record.ts';

export const LEXICAL_FORMAT = 'finemed-lexical-index';
export const LEXICAL_VERSION = 1;
export const LEXICAL_FILE = 'lexical.json';

/** MiniSearch's defaults, repeated because the self-match score uses them too. */
const BM25 = { k: 1.2, b: 0.7, d: 0.5 };
/** Documents added between yields to the event loop (a worker keeps answering meanwhile). */
const ADD_CHUNK = 2000;
const QUESTION = EMBEDDED_FIELD;

/** MiniSearch's separator: Unicode spaces, newlines and punctuation. */
const SEPARATOR = /[\n\r\p{Z}\p{P}]+/u;

/**
 * Lower-cased words, in order, duplicates kept. Indexing and search share it, so a record's field
 * length (MiniSearch counts distinct tokens) and term counts are those of these words.
 * @example tokenize('Fever, neck-stiffness?'); // ['fever', 'neck', 'stiffness']
 */
export function tokenize(text: string): string[] {
  return text.toLowerCase().split(SEPARATOR).filter((t) => t !== '');
}

/**
 * English function words, left out of queries (still indexed): they match most records, so they
 * cost the most to score, and BM25 gives them almost no weight anyway.
 */
const STOP_WORDS = new Set(
  ('a an and are as at be been but by can could did do does for from had has have he her his how i if in into is it its ' +
    'may me my no not of on or our she should so than that the their them then there these they this those to too was ' +
    'we were what when where which while who whom why will with would you your').split(' '),
);

/** Distinct query words without function words (a repeated word would count once per repetition). */
function queryTerms(text: string): string[] {
  return [...new Set(tokenize(text))].filter((t) => !STOP_WORDS.has(t));
}

export interface LexicalHit {
  /** Row of the record in the corpus. */
  row: number;
  /** MiniSearch's raw BM25+ score (unbounded; depends on the query and the corpus). */
  bm25: number;
  /** bm25 / self-match score of the query, clamped to [0, 1]. */
  score: number;
}

export interface LexicalBuildOptions {
  signal?: AbortSignal;
  /** Called after each chunk of records with the count indexed so far. */
  onProgress?: (done: number, total: number) => void;
}

/** The persisted form (lexical.json). */
export interface LexicalIndexFile {
  format: typeof LEXICAL_FORMAT;
  version: typeof LEXICAL_VERSION;
  field: typeof QUESTION;
  count: number;
  minisearch: AsPlainObject;
}

/** Corpus statistics of the question field, as MiniSearch keeps them. */
interface Stats {
  docs: number;
  avgLength: number;
  /** Records whose question holds the term. */
  df: Map<string, number>;
}

function options(): ConstructorParameters<typeof MiniSearch>[0] {
  return {
    fields: [QUESTION],
    idField: 'id',
    tokenize,
    processTerm: (t: string) => t,
    searchOptions: { tokenize: queryTerms, processTerm: (t: string) => t, combineWith: 'OR' },
  };
}

export class LexicalIndex {
  /**
   * Misspellings (edit distance up to 20% of the word, words of 5+ letters) and partial words
   * (prefixes of 4+ letters) match too, weighted down by MiniSearch (0.45 and 0.375 at best), but
   * only for words the corpus lacks: expanding known words costs much and ranks no better.
   */
  private readonly searchOptions: SearchOptions;

  private constructor(
    private readonly ms: MiniSearch,
    private readonly stats: Stats,
    /** Records indexed (rows 0..size-1). */
    readonly size: number,
  ) {
    const unknown = (term: string): boolean => !stats.df.has(term);
    this.searchOptions = {
      fuzzy: (term) => (term.length >= 5 && unknown(term) ? 0.2 : false),
      prefix: (term) => term.length >= 4 && unknown(term),
    };
  }

  /**
   * Indexes every record's question; yields to the event loop between chunks.
   * @example
   *   const lexical = await LexicalIndex.build(records);
   *   lexical.search('fever neck stiffnes rash', 3); // [{ row: 17, bm25: 21.4, score: 0.62 }, ...]
   */
  static async build(records: readonly CorpusRecord[], o: LexicalBuildOptions = {}): Promise<LexicalIndex> {
    const ms = new MiniSearch(options());
    const df = new Map<string, number>();
    let avgLength = 0;
    for (let start = 0; start < records.length; start += ADD_CHUNK) {
      if (start > 0) await new Promise((r) => setTimeout(r, 0));
      throwIfAborted(o.signal);
      const end = Math.min(records.length, start + ADD_CHUNK);
      for (let row = start; row < end; row++) {
        const text = records[row][QUESTION];
        ms.add({ id: row, [QUESTION]: text });
        const distinct = new Set(tokenize(text));
        for (const t of distinct) df.set(t, (df.get(t) ?? 0) + 1);
        // MiniSearch's running mean, in its order of operations (same float result).
        avgLength = (avgLength * row + distinct.size) / (row + 1);
      }
      o.onProgress?.(end, records.length);
    }
    return new LexicalIndex(ms, { docs: records.length, avgLength, df }, records.length);
  }

  /**
   * Reads lexical.json as written by toJSON; IndexFormatError when it is not one, or holds
   * another number of records than `expectedCount`.
   * @example const lexical = LexicalIndex.fromJSON(new TextDecoder().decode(bytes), records.length);
   */
  static fromJSON(text: string, expectedCount?: number): LexicalIndex {
    let file: LexicalIndexFile;
    try {
      file = JSON.parse(text) as LexicalIndexFile;
    } catch (e) {
      throw new IndexFormatError(`${LEXICAL_FILE} is not valid JSON (${(e as Error).message}).`);
    }
    if (file?.format !== LEXICAL_FORMAT || file.version !== LEXICAL_VERSION || file.field !== QUESTION || typeof file.minisearch !== 'object') {
      throw new IndexFormatError(`${LEXICAL_FILE} is not a ${LEXICAL_FORMAT} v${LEXICAL_VERSION} file; rebuild it.`);
    }
    if (expectedCount !== undefined && file.count !== expectedCount) {
      throw new IndexFormatError(`${LEXICAL_FILE} indexes ${file.count} records; the corpus has ${expectedCount}.`);
    }
    const js = file.minisearch;
    const fieldId = js.fieldIds?.[QUESTION];
    if (fieldId === undefined || js.documentCount !== file.count || !Array.isArray(js.index)) {
      throw new IndexFormatError(`${LEXICAL_FILE} is missing fields or its counts disagree; rebuild it.`);
    }
    const df = new Map<string, number>();
    for (const [term, data] of js.index) {
      const docs = data[String(fieldId)];
      if (docs) df.set(term, Object.keys(docs).length);
    }
    const ms = MiniSearch.loadJS(js, options());
    return new LexicalIndex(ms, { docs: js.documentCount, avgLength: js.averageFieldLength[fieldId] ?? 0, df }, file.count);
  }

  /**
   * The persisted form; JSON.stringify it.
   * @example await store.write(LEXICAL_FILE, new TextEncoder().encode(JSON.stringify(lexical.toJSON())));
   */
  toJSON(): LexicalIndexFile {
    return { format: LEXICAL_FORMAT, version: LEXICAL_VERSION, field: QUESTION, count: this.size, minisearch: this.ms.toJSON() };
  }

  /**
   * The score a record whose question equals `query` would get: its distinct words all match
   * with their counts in the query, field length = distinct words; a word the corpus lacks counts
   * as held by one record. 0 for a query without words (function words do not count).
   * @example lexical.selfScore(records[3].question) === lexical.search(records[3].question, 1)[0].bm25; // true
   */
  selfScore(query: string): number {
    const words = tokenize(query);
    const tf = new Map<string, number>();
    for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1);
    const { k, b, d } = BM25;
    const { docs, avgLength } = this.stats;
    const len = tf.size; // a record's field length counts its function words too
    let sum = 0;
    let matched = 0;
    for (const [term, f] of tf) {
      if (STOP_WORDS.has(term)) continue;
      matched++;
      const n = Math.max(1, this.stats.df.get(term) ?? 0);
      const idf = Math.log(1 + (docs - n + 0.5) / (n + 0.5));
      sum += idf * (d + (f * (k + 1)) / (f + k * (1 - b + (b * len) / (avgLength || 1))));
    }
    return sum * matched;
  }

  /**
   * The k best records for `query`, best first; equal raw scores go to the lower row.
   * InvalidInputError for a query without words; [] when no record shares a word with it.
   * @example lexical.search('What causes gout?', 5);
   */
  search(query: string, k: number): LexicalHit[] {
    if (!Number.isInteger(k) || k < 0) throw new InvalidInputError(`k must be a non-negative integer, got ${k}.`);
    if (query.trim() === '') throw new InvalidInputError('The question is empty.');
    const self = this.selfScore(query);
    if (self === 0) throw new InvalidInputError('The question has no words to search for.');
    const hits = this.ms.search(query, this.searchOptions) as unknown as { id: number; score: number }[];
    hits.sort((a, b) => b.score - a.score || a.id - b.id);
    return hits.slice(0, k).map((h) => ({ row: h.id, bm25: h.score, score: Math.min(1, h.score / self) }));
  }
}
