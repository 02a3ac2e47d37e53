/**
 * A corpus stored on its own, without vectors: what the lexical retriever needs to reopen an
 * imported file or FineMed-DPO offline and before any embedder exists.
 *   corpus.json   name, hash, count (written last)
 *   records.json  the records, in row order
 * The lexical index is rebuilt from the records on open (0.15 s for 1,747 records, about 2.5 s
 * for 33k on a slow 2-core machine), so it is not stored.
 */
import { IndexFormatError } from './errors.ts';
import { hashCorpus } from './corpus-hash.ts';
import { RECORDS_FILE } from './manifest.ts';
import type { CorpusRecord } from './record.ts';
import type { IndexStore } from './store.ts';

export const CORPUS_FILE = 'corpus.json';
const FORMAT = 'finemed-corpus';

export interface CorpusManifest {
  format: typeof FORMAT;
  version: 1;
  name: string;
  hash: string;
  count: number;
  bytes: number;
  createdAt: string;
}

export interface StoredCorpus {
  manifest: CorpusManifest;
  records: CorpusRecord[];
}

/**
 * Writes the corpus unless the same one (hash) is stored already.
 * @example await saveCorpus(store, 'traces.jsonl', records, await hashCorpus(records));
 */
export async function saveCorpus(store: IndexStore, name: string, records: CorpusRecord[], hash: string): Promise<CorpusManifest> {
  const old = await readCorpusManifest(store).catch(() => null);
  if (old && old.hash === hash && old.count === records.length && old.name === name) return old;
  const bytes = new TextEncoder().encode(JSON.stringify(records));
  await store.remove(CORPUS_FILE);
  await store.write(RECORDS_FILE, bytes);
  const manifest: CorpusManifest = { format: FORMAT, version: 1, name, hash, count: records.length, bytes: bytes.byteLength, createdAt: new Date().toISOString() };
  await store.write(CORPUS_FILE, new TextEncoder().encode(JSON.stringify(manifest, null, 2)));
  return manifest;
}

/** The stored corpus manifest, or null; IndexFormatError for one that is not ours. */
export async function readCorpusManifest(store: IndexStore): Promise<CorpusManifest | null> {
  const bytes = await store.read(CORPUS_FILE);
  if (!bytes) return null;
  let m: CorpusManifest;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes)) as CorpusManifest;
  } catch (e) {
    throw new IndexFormatError(`${CORPUS_FILE} is not valid JSON (${(e as Error).message}).`);
  }
  if (m?.format !== FORMAT || m.version !== 1 || typeof m.hash !== 'string' || !Number.isInteger(m.count)) {
    throw new IndexFormatError(`${CORPUS_FILE} at ${store.description} is not a ${FORMAT} manifest.`);
  }
  return m;
}

/**
 * The stored corpus, checked against its hash; null when none is stored.
 * @example const c = await loadCorpus(store); if (c) lexical = await LexicalIndex.build(c.records);
 */
export async function loadCorpus(store: IndexStore): Promise<StoredCorpus | null> {
  const manifest = await readCorpusManifest(store);
  if (!manifest) return null;
  const bytes = await store.read(RECORDS_FILE);
  if (!bytes) throw new IndexFormatError(`The corpus at ${store.description} lacks ${RECORDS_FILE}; import it again.`);
  let records: CorpusRecord[];
  try {
    records = JSON.parse(new TextDecoder().decode(bytes)) as CorpusRecord[];
  } catch (e) {
    throw new IndexFormatError(`${RECORDS_FILE} at ${store.description} is not valid JSON (${(e as Error).message}); import the corpus again.`);
  }
  if (!Array.isArray(records) || records.length !== manifest.count || (await hashCorpus(records)) !== manifest.hash) {
    throw new IndexFormatError(`${RECORDS_FILE} at ${store.description} does not match its manifest; import the corpus again.`);
  }
  return { manifest, records };
}
