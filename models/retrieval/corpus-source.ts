/**
 * Reads the records of a corpus the user names (a JSONL URL, a picked file, text, FineMed-DPO
 * from a hub), with progress; bad JSONL lines are kept with their 1-based line numbers.
 */
import type { BadLine } from './errors.ts';
import { loadFineMedDpo } from './finemed-loader.ts';
import { fetchOk } from './http.ts';
import { hubBase } from './hub.ts';
import { readJsonlCorpus, type BadLinePolicy } from './jsonl.ts';
import type { CorpusRecord } from './record.ts';
import type { CorpusSpec, RetrievalProgress } from './session-types.ts';

/** Specs that name records to read (not a stored index). */
export type CorpusFile = Exclude<CorpusSpec, { kind: 'stored' } | { kind: 'index-url' }>;

export interface Corpus {
  name: string;
  records: CorpusRecord[];
  skipped: number;
  badLines: BadLine[];
}

export interface ReadCorpusOptions {
  onBadLine?: BadLinePolicy;
  /** Relative URLs (a corpus URL, a hub base) resolve against it: the page or worker URL. */
  baseUrl?: string;
  signal?: AbortSignal;
  onProgress?: (p: RetrievalProgress) => void;
}

export const FINEMED_NAME = 'FineMed-DPO';

/**
 * @example
 *   const c = await readCorpus({ kind: 'url', url: 'demo/demo-corpus.jsonl' }, { baseUrl: location.href });
 *   // { name: 'demo-corpus.jsonl', records: [...40], skipped: 0, badLines: [] }
 */
export async function readCorpus(spec: CorpusFile, o: ReadCorpusOptions = {}): Promise<Corpus> {
  const { signal } = o;
  const progress = o.onProgress ?? (() => {});
  const jsonl = async (input: Parameters<typeof readJsonlCorpus>[0], name: string, total: number): Promise<Corpus> => {
    const r = await readJsonlCorpus(input, {
      onBadLine: o.onBadLine ?? 'skip',
      defaults: { source: name },
      signal,
      onProgress: (p) => progress({ phase: 'corpus', done: p.bytes, total: Math.max(total, p.bytes), detail: name }),
    });
    return { name, records: r.records, skipped: r.skipped, badLines: r.badLines };
  };
  switch (spec.kind) {
    case 'url': {
      const url = o.baseUrl ? new URL(spec.url, o.baseUrl) : new URL(spec.url);
      const res = await fetchOk(url.href, { signal });
      const name = spec.name ?? decodeURIComponent(url.pathname.split('/').pop() || url.href);
      return jsonl(res.body ?? new Uint8Array(await res.arrayBuffer()), name, Number(res.headers.get('content-length')) || 0);
    }
    case 'file':
      return jsonl(spec.file.stream() as ReadableStream<Uint8Array>, spec.name ?? spec.file.name, spec.file.size);
    case 'text':
      return jsonl(spec.text, spec.name, spec.text.length);
    case 'finemed-dpo': {
      const r = await loadFineMedDpo({
        hub: hubBase(spec.hub, o.baseUrl), revision: spec.revision, limit: spec.limit, signal,
        onProgress: (p) => progress({ phase: 'download', done: p.loadedBytes, total: Math.max(p.totalBytes, p.loadedBytes), detail: p.file }),
      });
      return { name: FINEMED_NAME, records: r.records, skipped: r.skipped, badLines: r.badRows };
    }
  }
}
