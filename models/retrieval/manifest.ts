/**
 * The manifest of a persisted index: what was embedded, by which embedder, from which corpus, and
 * where the files are. Read first and alone, so a stale index is found without reading vectors.
 */
import { IndexFormatError } from './errors.ts';
import type { EmbedderInfo } from './embedder-types.ts';
import { parseSource, type EmbedderSource } from './embedder-source.ts';

export const INDEX_FORMAT = 'finemed-retrieval-index';
export const INDEX_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const VECTORS_FILE = 'embeddings.safetensors';
export const RECORDS_FILE = 'records.json';
/** The records' field that is embedded: the question alone (no system prompt, no answer). */
export const EMBEDDED_FIELD = 'question';

export type VectorDtype = 'F32' | 'F16';

export interface IndexManifest {
  format: typeof INDEX_FORMAT;
  version: typeof INDEX_VERSION;
  embedder: EmbedderInfo;
  embeddedField: typeof EMBEDDED_FIELD;
  corpus: { hash: string; count: number; name: string };
  vectors: { file: string; dtype: VectorDtype; count: number; dims: number; bytes: number };
  records: { file: string; bytes: number };
  createdAt: string;
  /** Where the embedder was loaded from (absent in indexes written before it was recorded). */
  embedderSource?: EmbedderSource;
  /** How the vectors were computed: device and measured texts/s (absent when copied or old). */
  build?: BuildRecord;
}

export interface BuildRecord {
  device: string;
  /** Texts embedded per second over the whole build (resumed parts included). */
  textsPerSecond: number;
  /** Rows embedded before the last resume (0 when built in one go). */
  resumedFrom: number;
}

/** What the caller expects the index to have been built from; omitted parts are not checked. */
export interface Expected {
  corpusHash?: string;
  embedder?: EmbedderInfo;
}

/**
 * Why `manifest` does not match `expected` (empty when it is fresh).
 * @example
 *   staleReasons(manifest, { corpusHash, embedder: embedder.info });
 *   // ['the corpus changed (hash 3f1c.. -> 9ab2..)']
 */
export function staleReasons(manifest: IndexManifest, expected: Expected): string[] {
  const reasons: string[] = [];
  if (expected.corpusHash !== undefined && expected.corpusHash !== manifest.corpus.hash) {
    reasons.push(`the corpus changed (hash ${manifest.corpus.hash.slice(0, 12)}.. -> ${expected.corpusHash.slice(0, 12)}..)`);
  }
  const want = expected.embedder;
  if (want) {
    const have = manifest.embedder;
    for (const key of ['model', 'dims', 'dtype', 'pooling', 'normalize'] as const) {
      if (want[key] !== have[key]) reasons.push(`the embedder's ${key} changed (${String(have[key])} -> ${String(want[key])})`);
    }
  }
  return reasons;
}

/**
 * Parses and checks manifest JSON; throws IndexFormatError naming the problem.
 * @example const manifest = parseManifest(await store.read('manifest.json'));
 */
export function parseManifest(text: string): IndexManifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new IndexFormatError(`${MANIFEST_FILE} is not valid JSON (${(e as Error).message}).`);
  }
  const o = m as Partial<IndexManifest> | null;
  if (typeof o !== 'object' || o === null || o.format !== INDEX_FORMAT) {
    throw new IndexFormatError(`${MANIFEST_FILE} is not a ${INDEX_FORMAT} manifest.`);
  }
  if (o.version !== INDEX_VERSION) {
    throw new IndexFormatError(`${MANIFEST_FILE} has format version ${String(o.version)}; this app reads version ${INDEX_VERSION}. Rebuild the index.`);
  }
  const e = o.embedder;
  const v = o.vectors;
  const ok =
    typeof e === 'object' && e !== null && typeof e.model === 'string' && Number.isInteger(e.dims) && typeof e.dtype === 'string' &&
    typeof o.corpus === 'object' && o.corpus !== null && typeof o.corpus.hash === 'string' && Number.isInteger(o.corpus.count) &&
    typeof v === 'object' && v !== null && (v.dtype === 'F32' || v.dtype === 'F16') && Number.isInteger(v.count) &&
    v.dims === e.dims && v.count === o.corpus.count && typeof o.records === 'object' && o.records !== null;
  if (!ok) throw new IndexFormatError(`${MANIFEST_FILE} is missing fields or its counts and dims disagree.`);
  const manifest = o as IndexManifest;
  if (manifest.embedderSource !== undefined && !parseSource(manifest.embedderSource)) delete manifest.embedderSource;
  return manifest;
}
