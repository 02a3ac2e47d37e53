/**
 * The persisted form of an index, the same in Node and the browser:
 *   manifest.json           what built it (embedder, corpus hash) and where the rest is; written last
 *   embeddings.safetensors  one tensor "embeddings" [count, dims], F32 or F16
 *   records.json            the corpus records, in row order
 * voy's own JSON serialisation is not stored (82 MB for 10k x 384); voy is rebuilt from the vectors.
 */
import { NotFoundError } from '../errors.ts';
import type { ByteSource } from '../io/source.ts';
import { readSafetensorsHeader } from '../safetensors/header.ts';
import { toFloat32 } from '../safetensors/dtype.ts';
import { encodeSafetensors } from '../safetensors/writer.ts';
import { hashCorpus } from './corpus-hash.ts';
import type { EmbedderInfo } from './embedder-types.ts';
import type { EmbedderSource } from './embedder-source.ts';
import { IndexFormatError, StaleIndexError } from './errors.ts';
import {
  EMBEDDED_FIELD, INDEX_FORMAT, INDEX_VERSION, MANIFEST_FILE, RECORDS_FILE, VECTORS_FILE,
  parseManifest, staleReasons, type BuildRecord, type Expected, type IndexManifest, type VectorDtype,
} from './manifest.ts';
import { clearPartial } from './partial-build.ts';
import type { CorpusRecord } from './record.ts';
import type { IndexStore } from './store.ts';

const TENSOR = 'embeddings';

/** An index in memory: vectors row-aligned with records. */
export interface IndexData {
  manifest: IndexManifest;
  vectors: Float32Array;
  records: CorpusRecord[];
}

export interface SaveInput {
  embedder: EmbedderInfo;
  corpusName: string;
  corpusHash: string;
  records: CorpusRecord[];
  vectors: Float32Array;
  /** Storage precision; F16 halves the file (vectors should already be rounded, see roundToF16). */
  dtype?: VectorDtype;
  /** Recorded in the manifest, so the index can reopen its embedder (see embedder-source.ts). */
  embedderSource?: EmbedderSource;
  build?: BuildRecord;
}

export type IndexStatus =
  | { state: 'missing' }
  | { state: 'stale'; manifest: IndexManifest; reasons: string[] }
  | { state: 'fresh'; manifest: IndexManifest };

/**
 * Writes the three files; the old manifest goes first and the new one last, so an interrupted save
 * reads as missing. A partial build's files (partial-build.ts) are removed only after the manifest
 * is written: a save that fails keeps the embedded batches for a resume.
 * @example
 *   const manifest = await saveIndex(new NodeDirStore('out/idx'), { embedder: e.info, corpusName, corpusHash, records, vectors });
 */
export async function saveIndex(store: IndexStore, input: SaveInput): Promise<IndexManifest> {
  const { embedder, records, vectors } = input;
  const dims = embedder.dims;
  if (vectors.length !== records.length * dims) {
    throw new IndexFormatError(`saveIndex: ${vectors.length} values for ${records.length} records of ${dims} dims.`);
  }
  const dtype = input.dtype ?? 'F32';
  const vectorBytes = encodeSafetensors([{ name: TENSOR, dtype, shape: [records.length, dims], data: vectors }], {
    format: INDEX_FORMAT,
    embedder: embedder.model,
    corpus_hash: input.corpusHash,
  });
  const recordBytes = new TextEncoder().encode(JSON.stringify(records));
  await store.remove(MANIFEST_FILE);
  await store.write(VECTORS_FILE, vectorBytes);
  await store.write(RECORDS_FILE, recordBytes);
  const manifest: IndexManifest = {
    format: INDEX_FORMAT,
    version: INDEX_VERSION,
    embedder: { ...embedder },
    embeddedField: EMBEDDED_FIELD,
    corpus: { hash: input.corpusHash, count: records.length, name: input.corpusName },
    vectors: { file: VECTORS_FILE, dtype, count: records.length, dims, bytes: vectorBytes.byteLength },
    records: { file: RECORDS_FILE, bytes: recordBytes.byteLength },
    createdAt: new Date().toISOString(),
    ...(input.embedderSource ? { embedderSource: input.embedderSource } : {}),
    ...(input.build ? { build: input.build } : {}),
  };
  await store.write(MANIFEST_FILE, new TextEncoder().encode(JSON.stringify(manifest, null, 2)));
  await clearPartial(store);
  return manifest;
}

/**
 * The stored manifest, or null when there is none. Throws IndexFormatError for a corrupt one.
 * @example const m = await readManifest(store); if (m) console.log(m.corpus.count);
 */
export async function readManifest(store: IndexStore): Promise<IndexManifest | null> {
  const bytes = await store.read(MANIFEST_FILE);
  return bytes ? parseManifest(new TextDecoder().decode(bytes)) : null;
}

/**
 * Missing, stale (with reasons) or fresh, from the manifest alone.
 * @example
 *   const s = await indexStatus(store, { corpusHash, embedder: embedder.info });
 *   if (s.state !== 'fresh') rebuild();
 */
export async function indexStatus(store: IndexStore, expected: Expected): Promise<IndexStatus> {
  const manifest = await readManifest(store);
  if (!manifest) return { state: 'missing' };
  const reasons = staleReasons(manifest, expected);
  return reasons.length ? { state: 'stale', manifest, reasons } : { state: 'fresh', manifest };
}

/**
 * Loads an index, checking it against `expected` (StaleIndexError) and its own manifest
 * (IndexFormatError: truncated vectors, record count or corpus hash that disagree).
 * @example
 *   const { vectors, records, manifest } = await loadIndex(store, { embedder: embedder.info });
 */
export async function loadIndex(store: IndexStore, expected: Expected = {}, options: { verifyHash?: boolean } = {}): Promise<IndexData> {
  const status = await indexStatus(store, expected);
  if (status.state === 'missing') throw new NotFoundError(`No index at ${store.description} (no ${MANIFEST_FILE}).`);
  if (status.state === 'stale') throw new StaleIndexError(status.reasons);
  const { manifest } = status;
  const [vectorBytes, recordBytes] = await Promise.all([store.read(manifest.vectors.file), store.read(manifest.records.file)]);
  if (!vectorBytes || !recordBytes) {
    throw new IndexFormatError(`The index at ${store.description} lacks ${!vectorBytes ? manifest.vectors.file : manifest.records.file}; rebuild it.`);
  }
  const vectors = await decodeVectors(vectorBytes, manifest);
  let records: CorpusRecord[];
  try {
    records = JSON.parse(new TextDecoder().decode(recordBytes)) as CorpusRecord[];
  } catch (e) {
    throw new IndexFormatError(`${manifest.records.file} is not valid JSON (${(e as Error).message}); rebuild the index.`);
  }
  if (!Array.isArray(records) || records.length !== manifest.corpus.count) {
    throw new IndexFormatError(`${manifest.records.file} holds ${Array.isArray(records) ? records.length : 'no'} records; the manifest says ${manifest.corpus.count}.`);
  }
  if ((options.verifyHash ?? true) && (await hashCorpus(records)) !== manifest.corpus.hash) {
    throw new IndexFormatError(`${manifest.records.file} does not match the corpus hash in the manifest; the index is corrupt. Rebuild it.`);
  }
  return { manifest, vectors, records };
}

async function decodeVectors(bytes: Uint8Array, manifest: IndexManifest): Promise<Float32Array> {
  const name = manifest.vectors.file;
  try {
    const file: ByteSource = { name, size: bytes.byteLength, read: async (offset, length) => bytes.subarray(offset, offset + length) };
    const t = (await readSafetensorsHeader(file)).tensors.get(TENSOR);
    const { count, dims, dtype } = manifest.vectors;
    if (!t || t.dtype !== dtype || t.shape.length !== 2 || t.shape[0] !== count || t.shape[1] !== dims) {
      throw new Error(`expected tensor "${TENSOR}" ${dtype} [${count}, ${dims}], found ${t ? `${t.dtype} [${t.shape.join(', ')}]` : 'none'}.`);
    }
    return toFloat32(bytes.subarray(t.begin, t.end), t.dtype, TENSOR);
  } catch (e) {
    const msg = (e as Error).message; // the header reader's messages already name the file
    throw new IndexFormatError(`${msg.startsWith(name) ? msg : `${name}: ${msg}`} Rebuild the index.`);
  }
}
