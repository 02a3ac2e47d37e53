/**
 * The lexical half of `npm run bench:retrieval`: BM25 (MiniSearch) build time, query latency
 * (median, p95) for whole questions, their first halves and misspelt copies, top-1 hit rate, and
 * the persisted size and load time of the index, at each corpus size (larger sizes repeat the
 * records with new ids).
 */
import { LexicalIndex } from '../../models/retrieval/lexical-index.ts';
import type { CorpusRecord } from '../../models/retrieval/record.ts';

export interface LexicalBenchRow {
  records: number;
  buildMs: number;
  queryMedianMs: number;
  queryP95Ms: number;
  /** Share of queries whose own record ranked first (exact, first half, misspelt). */
  top1: { exact: number; half: number; typo: number };
  jsonBytes: number;
  serializeMs: number;
  loadJsonMs: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

/** Swaps two inner letters of every third word of 6+ letters. */
function misspell(text: string): string {
  let n = 0;
  return text.split(' ').map((w) => (w.length >= 6 && n++ % 3 === 0 ? w.slice(0, 2) + w[3] + w[2] + w.slice(4) : w)).join(' ');
}

/** `count` records: `base` repeated with new ids (row i is a copy of base[i % base.length]). */
export function repeatRecords(base: readonly CorpusRecord[], count: number): CorpusRecord[] {
  return Array.from({ length: count }, (_, i) => ({ ...base[i % base.length], id: `${base[i % base.length].id}~${Math.floor(i / base.length)}` }));
}

/**
 * @example const rows = await runLexicalBench(records, { counts: [1747, 32919], queries: 100 });
 */
export async function runLexicalBench(base: readonly CorpusRecord[], o: { counts: number[]; queries: number; log?: (l: string) => void }): Promise<LexicalBenchRow[]> {
  const out: LexicalBenchRow[] = [];
  for (const count of o.counts) {
    const records = repeatRecords(base, count);
    let t0 = performance.now();
    const index = await LexicalIndex.build(records);
    const buildMs = performance.now() - t0;
    t0 = performance.now();
    const json = JSON.stringify(index.toJSON());
    const serializeMs = performance.now() - t0;
    t0 = performance.now();
    LexicalIndex.fromJSON(json, count);
    const loadJsonMs = performance.now() - t0;
    const times: number[] = [];
    const hits = { exact: 0, half: 0, typo: 0 };
    for (let i = 0; i < o.queries; i++) {
      const row = (i * 7919) % Math.min(count, base.length);
      const q = base[row].question;
      const words = q.split(' ');
      const forms = { exact: q, half: words.slice(0, Math.ceil(words.length / 2)).join(' '), typo: misspell(q) };
      for (const [kind, text] of Object.entries(forms) as [keyof typeof hits, string][]) {
        const t = performance.now();
        const top = index.search(text, 5)[0];
        times.push(performance.now() - t);
        // Copies of the record score the same; the first copy (lowest row) wins ties.
        if (top && top.row % base.length === row) hits[kind]++;
      }
    }
    times.sort((a, b) => a - b);
    const n = o.queries;
    out.push({
      records: count, buildMs, queryMedianMs: percentile(times, 0.5), queryP95Ms: percentile(times, 0.95),
      top1: { exact: hits.exact / n, half: hits.half / n, typo: hits.typo / n }, jsonBytes: json.length, serializeMs, loadJsonMs,
    });
    o.log?.(`${count} records: build ${buildMs.toFixed(0)} ms, query median ${percentile(times, 0.5).toFixed(2)} ms`);
  }
  return out;
}
