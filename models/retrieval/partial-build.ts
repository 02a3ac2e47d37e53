/**
 * A build in progress, persisted batch by batch so that a reload, a closed tab or a cancel resumes
 * where it stopped: the vectors of rows [0, done) in chunk files `partial-<start>.f32` (raw
 * little-endian float32, one per checkpoint) and the marker `partial.json` naming them, written
 * after each chunk. A chunk not yet in the marker is ignored (and overwritten on resume).
 */
import { IndexFormatError } from './errors.ts';
import type { EmbedderSource } from './embedder-source.ts';
import type { EmbedderInfo } from './embedder-types.ts';
import type { VectorDtype } from './manifest.ts';
import { staleReasons } from './manifest.ts';
import type { IndexStore } from './store.ts';

/** Every partial file's name starts with it (stores use it to clean up). */
export const PARTIAL_PREFIX = 'partial';
export const PARTIAL_FILE = 'partial.json';
const FORMAT = 'finemed-partial-build';

export interface PartialChunk {
  file: string;
  start: number;
  end: number;
  /** FNV-1a of the chunk's bytes. */
  checksum: string;
}

export interface PartialMarker {
  format: typeof FORMAT;
  version: 1;
  corpusHash: string;
  corpusName: string;
  count: number;
  embedder: EmbedderInfo;
  dtype: VectorDtype;
  /** Rows [0, done) are embedded and stored. */
  done: number;
  chunks: PartialChunk[];
  /** Embedding time so far over all sessions, and the device of the last one. */
  embedMs: number;
  device: string;
  updatedAt: string;
  /** The embedder's source, so a stored partial build can reopen it. */
  embedderSource?: EmbedderSource;
}

export type PartialStatus =
  | { state: 'none' }
  | { state: 'usable'; marker: PartialMarker }
  | { state: 'stale'; marker: PartialMarker; reasons: string[] };

/** FNV-1a 32-bit, hex: cheap enough for megabytes, catches a truncated or overwritten chunk. */
function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * The marker, or null; null also for one that cannot be read (a partial build is only a cache).
 * @example const m = await readPartialMarker(store); if (m) console.log(`${m.done}/${m.count} embedded`);
 */
export async function readPartialMarker(store: IndexStore): Promise<PartialMarker | null> {
  const bytes = await store.read(PARTIAL_FILE).catch(() => null);
  if (!bytes) return null;
  try {
    const m = JSON.parse(new TextDecoder().decode(bytes)) as PartialMarker;
    const ok = m.format === FORMAT && m.version === 1 && Number.isInteger(m.done) && Number.isInteger(m.count) && Array.isArray(m.chunks) &&
      typeof m.embedder === 'object' && m.embedder !== null;
    return ok ? m : null;
  } catch {
    return null;
  }
}

/**
 * Whether a stored partial build can continue this build.
 * @example const s = await partialStatus(store, { corpusHash, embedder: e.info, dtype: 'F32' });
 */
export async function partialStatus(store: IndexStore, expected: { corpusHash: string; embedder: EmbedderInfo; dtype: VectorDtype }): Promise<PartialStatus> {
  const marker = await readPartialMarker(store);
  if (!marker) return { state: 'none' };
  const reasons = staleReasons(
    { corpus: { hash: marker.corpusHash }, embedder: marker.embedder } as Parameters<typeof staleReasons>[0],
    { corpusHash: expected.corpusHash, embedder: expected.embedder },
  );
  if (marker.dtype !== expected.dtype) reasons.push(`the vector storage changed (${marker.dtype} -> ${expected.dtype})`);
  return reasons.length ? { state: 'stale', marker, reasons } : { state: 'usable', marker };
}

/**
 * Reads the stored chunks into `vectors` (rows [0, marker.done)); IndexFormatError naming the
 * chunk when one is missing, truncated or changed.
 */
export async function readChunks(store: IndexStore, marker: PartialMarker, vectors: Float32Array): Promise<void> {
  const dims = marker.embedder.dims;
  for (const c of marker.chunks) {
    const bytes = await store.read(c.file);
    const want = (c.end - c.start) * dims * 4;
    if (!bytes || bytes.byteLength !== want || fnv1a(bytes) !== c.checksum || c.end * dims > vectors.length) {
      throw new IndexFormatError(`The partial build's ${c.file} is ${bytes ? 'damaged' : 'missing'}; the build starts again.`);
    }
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    vectors.set(new Float32Array(aligned.buffer, aligned.byteOffset, want / 4), c.start * dims);
  }
}

/** Writes one chunk of rows [start, end), then the marker that names it. Returns the new marker. */
export async function appendChunk(store: IndexStore, marker: PartialMarker, start: number, rows: Float32Array, embedMs: number, device: string): Promise<PartialMarker> {
  const dims = marker.embedder.dims;
  const end = start + rows.length / dims;
  const file = `${PARTIAL_PREFIX}-${start}.f32`;
  const bytes = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength).slice();
  await store.write(file, bytes);
  const next: PartialMarker = {
    ...marker,
    done: end,
    chunks: [...marker.chunks.filter((c) => c.start < start), { file, start, end, checksum: fnv1a(bytes) }],
    embedMs: marker.embedMs + embedMs,
    device,
    updatedAt: new Date().toISOString(),
  };
  await store.write(PARTIAL_FILE, new TextEncoder().encode(JSON.stringify(next)));
  return next;
}

/** A new, empty marker. */
export function newMarker(o: Pick<PartialMarker, 'corpusHash' | 'corpusName' | 'count' | 'embedder' | 'dtype' | 'device' | 'embedderSource'>): PartialMarker {
  return { format: FORMAT, version: 1, ...o, done: 0, chunks: [], embedMs: 0, updatedAt: new Date().toISOString() };
}

/**
 * Deletes the partial build's files (the marker first, so a crash halfway leaves no marker
 * naming deleted chunks).
 * @example await clearPartial(store);
 */
export async function clearPartial(store: IndexStore): Promise<void> {
  const marker = await readPartialMarker(store);
  await store.remove(PARTIAL_FILE);
  for (const c of marker?.chunks ?? []) await store.remove(c.file);
}
