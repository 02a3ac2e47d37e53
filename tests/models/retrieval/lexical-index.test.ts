import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { IndexFormatError } from '../../../models/retrieval/errors.ts';
import { readJsonlCorpus } from '../../../models/retrieval/jsonl.ts';
import { LexicalIndex, tokenize } from '../../../models/retrieval/lexical-index.ts';
import { LexicalRetriever } from '../../../models/retrieval/lexical-retriever.ts';
import type { CorpusRecord } from '../../../models/retrieval/record.ts';
import { HAS_SHARED, ROOT, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('BM25 over all 1,747 traces.jsonl questions');

/** The demo corpus ships in the repo: these tests run on a fresh clone. */
const demo = readFileSync(join(ROOT, 'public', 'demo', 'demo-corpus.jsonl'), 'utf8');

/** Swaps two inner letters of every `every`-th word of 6+ letters: a typo an exact match misses. */
function misspell(text: string, every = 3): string {
  let n = 0;
  return text.split(' ').map((w) => (w.length >= 6 && n++ % every === 0 ? w.slice(0, 2) + w[3] + w[2] + w.slice(4) : w)).join(' ');
}

describe('lexical index (BM25 over the questions) on the demo corpus', () => {
  let records: CorpusRecord[];
  let lexical: LexicalIndex;
  beforeAll(async () => {
    records = (await readJsonlCorpus(demo)).records;
    lexical = await LexicalIndex.build(records);
  });

  it('ranks each record first for its own question, normalised score > 0.99 (1 = the self-match)', () => {
    expect(records).toHaveLength(40);
    for (let row = 0; row < records.length; row++) {
      const hits = lexical.search(records[row].question, 5);
      expect(hits).toHaveLength(5);
      expect(hits[0].row).toBe(row);
      expect(hits[0].score).toBeGreaterThan(0.99);
      expect(hits[0].score).toBeLessThanOrEqual(1);
      // The self-match score is exactly what the record's question scores.
      expect(hits[0].bm25).toBeCloseTo(lexical.selfScore(records[row].question), 9);
      for (let i = 1; i < hits.length; i++) {
        expect(hits[i].bm25).toBeLessThanOrEqual(hits[i - 1].bm25);
        expect(hits[i].score).toBeGreaterThanOrEqual(0);
        expect(hits[i].score).toBeLessThan(hits[0].score);
      }
    }
  });

  it('finds the record from a misspelt question, and from part of it', () => {
    for (const row of [0, 7, 19, 33]) {
      const typo = misspell(records[row].question);
      expect(typo).not.toBe(records[row].question);
      const t = lexical.search(typo, 3);
      expect(t[0].row).toBe(row);
      expect(t[0].score).toBeLessThan(1); // the typos cost something
      const words = records[row].question.split(' ');
      const part = lexical.search(words.slice(0, Math.ceil(words.length / 3)).join(' '), 3);
      expect(part[0].row).toBe(row);
    }
  });

  it('matches a partial word by prefix and a typo by edit distance', () => {
    const row = records.findIndex((r) => /retrosternal/i.test(r.question));
    expect(row).toBeGreaterThanOrEqual(0);
    expect(lexical.search('retrostern chest pressure', 3)[0].row).toBe(row);
    expect(lexical.search('retrosternel chest presure', 3)[0].row).toBe(row);
  });

  it('is deterministic, and breaks ties by corpus order', async () => {
    const again = await LexicalIndex.build(records);
    const q = 'fever with neck stiffness and a rash';
    expect(again.search(q, 10)).toEqual(lexical.search(q, 10));
    // Three records with the same question: equal scores, lower row first.
    const twins = [records[5], { ...records[5], id: 'twin-a' }, records[6], { ...records[5], id: 'twin-b' }];
    const t = (await LexicalIndex.build(twins)).search(records[5].question, 4);
    expect(t.map((h) => h.row)).toEqual([0, 1, 3, 2]);
    expect(t[0].bm25).toBe(t[1].bm25);
    expect(t[1].bm25).toBe(t[2].bm25);
  });

  it('refuses an empty question or one without words (typed errors); no shared word gives []', () => {
    for (const q of ['', '   ', '?!', 'the of and']) {
      expect(() => lexical.search(q, 5)).toThrow(expect.objectContaining({ code: 'invalid-input' }));
    }
    expect(() => lexical.search('gout', -1)).toThrow(expect.objectContaining({ code: 'invalid-input' }));
    expect(lexical.search('zzyzx qqqqq', 5)).toEqual([]);
  });

  it('round-trips through toJSON / fromJSON with identical results, and refuses a damaged file', () => {
    const json = JSON.stringify(lexical.toJSON());
    const loaded = LexicalIndex.fromJSON(json, records.length);
    for (const q of [records[3].question, 'chest pain radiating to the back', misspell(records[12].question)]) {
      expect(loaded.search(q, 5)).toEqual(lexical.search(q, 5));
      expect(loaded.selfScore(q)).toBe(lexical.selfScore(q));
    }
    expect(() => LexicalIndex.fromJSON(json.slice(0, 100))).toThrow(IndexFormatError);
    expect(() => LexicalIndex.fromJSON(json, records.length + 1)).toThrow(/indexes 40 records; the corpus has 41/);
    expect(() => LexicalIndex.fromJSON('{"format": "other"}')).toThrow(/not a finemed-lexical-index/);
  });

  it('tokenises like MiniSearch: lower case, split on spaces and punctuation', () => {
    expect(tokenize('Fever, neck-stiffness? 148/92 mm Hg')).toEqual(['fever', 'neck', 'stiffness', '148', '92', 'mm', 'hg']);
  });

  it('answers through the Retriever API, marked lexical, with the raw BM25 score', async () => {
    const r = await (await LexicalRetriever.create(records)).retrieve(records[9].question, 3);
    expect(r.retriever).toBe('lexical');
    expect(r.results.map((x) => x.rank)).toEqual([0, 1, 2]);
    expect(r.results[0]).toMatchObject({ record: { id: records[9].id }, score: expect.closeTo(1, 9), bm25: expect.any(Number) });
    expect(r.timings.embedMs).toBe(0);
  });
});

describe.skipIf(!HAS_SHARED)('lexical index on traces.jsonl (1,747 records)', () => {
  it('ranks 200 sampled questions first (exact, misspelt, first half) and answers in milliseconds', async () => {
    const { records } = await readJsonlCorpus(readFileSync(sharedPath('data', 'traces.jsonl'), 'utf8'));
    expect(records).toHaveLength(1747);
    const lexical = await LexicalIndex.build(records);
    let exact = 0;
    let typo = 0;
    let half = 0;
    const rows = Array.from({ length: 200 }, (_, i) => (i * 977) % records.length);
    for (const row of rows) {
      const q = records[row].question;
      const e = lexical.search(q, 1)[0];
      if (e.row === row && e.score > 0.99) exact++;
      if (lexical.search(misspell(q), 1)[0]?.row === row) typo++;
      const w = q.split(' ');
      if (lexical.search(w.slice(0, Math.ceil(w.length / 2)).join(' '), 1)[0]?.row === row) half++;
    }
    expect(exact).toBe(200);
    expect(typo).toBeGreaterThanOrEqual(195);
    expect(half).toBeGreaterThanOrEqual(190);
  });
});
