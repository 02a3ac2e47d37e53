/**
 * The on-disk format of the weight cache (version 1).
 *
 * One entry per (source, weight format q4|f32, engine quant-format version); its folder is named
 * by the entry key (./key.ts) inside the store's root:
 *
 *   <key>/manifest.json              this file's `Manifest`, rewritten after every finished tensor
 *   <key>/files/<name>               the small source files the engine reads, as read (config.json,
 *                                    tokenizer.json, tokenizer_config.json, chat_template.jinja,
 *                                    generation_config.json when present)
 *   <key>/tensors/<tensor name>.bin  one file per engine tensor, in the engine's GPU layout:
 *                                    q4 matrix (N, K): packed nibbles u32[N*G*4] then f16 scales
 *                                    two per u32 (N*G halves, padded to a whole u32), exactly the
 *                                    `qw` and `sc` buffers of models/quant/q4.ts; q8 matrix (the
 *                                    lm_head): int8 words u32[N*G*8] then the scales likewise
 *                                    (models/quant/q8.ts); f32 matrices and
 *                                    vectors: f32 little-endian, row-major
 *
 * A file counts only once the manifest lists it with its size and checksum (./checksum.ts), so a
 * tensor file cut short by a crash is simply redone. `complete: true` is written last, after
 * every tensor and file is flushed. An entry whose manifest is unreadable, of another format or
 * version, or whose files do not match their sizes or checksums, is never used.
 */
import type { LmHeadFormat, WeightFormat } from '../api.ts';
import { CacheCorruptError } from '../errors.ts';

export const CACHE_FORMAT = 'finemed-weight-cache';
/** The container layout above. A change makes old entries unusable (detected, deleted, re-downloaded). */
export const CACHE_FORMAT_VERSION = 1;
/**
 * Version of the engine's 4-bit format (models/quant/q4.ts: group 32, f16 scale = absmax / -8,
 * nibble packing), its 8-bit one (models/quant/q8.ts) and of the f32 layout. Part of the entry
 * key: a new quant format is a new entry. 2: the lm_head has its own format (default q8).
 */
export const QUANT_FORMAT_VERSION = 2;

export const MANIFEST_FILE = 'manifest.json';
export const filePath = (name: string) => `files/${name}`;
export const tensorPath = (name: string) => `tensors/${name}.bin`;

export type SourceKind = 'hub' | 'url' | 'folder' | 'node-dir';

/** Where the weights came from and which version of it. */
export interface SourceInfo {
  kind: SourceKind;
  /** URL base, folder path or picked folder's name. */
  location: string;
  /** `org/name` when the URL is in Hugging Face `.../<org>/<name>/resolve/<rev>/` layout. */
  repo?: string;
  /** The `<rev>` of that URL (branch, tag or commit). */
  revision?: string;
  /** The hub's commit (`X-Repo-Commit`), when the server sent it. */
  commit?: string;
  /** ETags by file, when the server sent them (or a size-mtime stamp for local folders). */
  etags: Record<string, string>;
  /** Size in bytes of each source file read. */
  files: Record<string, number>;
}

/** A tensor's engine layout: the weight formats of models/weights-plan.ts MatrixFormat. */
export type TensorKind = 'q4' | 'q8' | 'f32';

export interface TensorEntry {
  name: string;
  /** Shape as in the checkpoint: [N, K] for matrices, [n] for vectors. */
  shape: number[];
  kind: TensorKind;
  bytes: number;
  checksum: string;
}

export interface FileEntry {
  name: string;
  bytes: number;
  checksum: string;
}

export interface Manifest {
  format: typeof CACHE_FORMAT;
  version: number;
  quantVersion: number;
  key: string;
  source: SourceInfo;
  weights: WeightFormat;
  /** The lm_head's format (and a tied embedding's): models/weights-plan.ts resolveLmHead. */
  lmHead: LmHeadFormat;
  /** The backend whose quantizer produced the q4 bytes ('webgpu' and 'cpu' can differ in a few rounding ties). */
  producer: 'webgpu' | 'cpu';
  /** config.json as parsed JSON. */
  config: unknown;
  files: FileEntry[];
  /** The tensors finished so far. */
  tensors: TensorEntry[];
  /** How many tensors the model has; complete entries have all of them. */
  tensorsTotal: number;
  complete: boolean;
  /** Bytes of all tensors and files of the complete entry (planned up front). */
  totalBytes: number;
  createdAt: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{16}$/.test(v);

function corrupt(key: string, what: string): CacheCorruptError {
  return new CacheCorruptError(`The cached model ${key} cannot be used: ${what}. It was deleted and will be downloaded again.`);
}

function checkEntries<T>(key: string, list: unknown, what: string, extra: (e: Record<string, unknown>) => boolean): T[] {
  if (!Array.isArray(list)) throw corrupt(key, `its manifest has no ${what} list`);
  for (const [i, e] of list.entries()) {
    if (!isObj(e) || typeof e.name !== 'string' || !e.name || !isNat(e.bytes) || !isHash(e.checksum) || !extra(e)) {
      throw corrupt(key, `its manifest's ${what}[${i}] is malformed`);
    }
  }
  return list as T[];
}

/**
 * Parses and checks a manifest. Throws CacheCorruptError (saying what is wrong) for bytes that are
 * not JSON, another format or version, a different key, or malformed fields.
 * @example
 *   const m = parseManifest(await store.readFile(key, MANIFEST_FILE), key);
 *   if (m.complete) ...
 */
export function parseManifest(bytes: Uint8Array, key: string): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw corrupt(key, `its manifest is unreadable (${(e as Error).message})`);
  }
  if (!isObj(m) || m.format !== CACHE_FORMAT) throw corrupt(key, `its manifest is not a ${CACHE_FORMAT} manifest`);
  if (m.version !== CACHE_FORMAT_VERSION) throw corrupt(key, `it is in cache format version ${String(m.version)}, this app reads version ${CACHE_FORMAT_VERSION}`);
  if (m.quantVersion !== QUANT_FORMAT_VERSION) throw corrupt(key, `its weights are in quant format version ${String(m.quantVersion)}, this engine uses version ${QUANT_FORMAT_VERSION}`);
  if (m.key !== key) throw corrupt(key, `its manifest belongs to another entry (${String(m.key)})`);
  if (m.weights !== 'q4' && m.weights !== 'f32') throw corrupt(key, `its manifest has an unknown weight format ${String(m.weights)}`);
  if (m.lmHead !== 'q4' && m.lmHead !== 'q8' && m.lmHead !== 'f32') throw corrupt(key, `its manifest has an unknown lm_head format ${String(m.lmHead)}`);
  const s = m.source;
  if (!isObj(s) || typeof s.kind !== 'string' || typeof s.location !== 'string' || !isObj(s.etags) || !isObj(s.files)) {
    throw corrupt(key, 'its manifest has no valid source description');
  }
  if (!isObj(m.config)) throw corrupt(key, 'its manifest has no config');
  checkEntries<FileEntry>(key, m.files, 'files', () => true);
  checkEntries<TensorEntry>(key, m.tensors, 'tensors', (e) =>
    (e.kind === 'q4' || e.kind === 'q8' || e.kind === 'f32') && Array.isArray(e.shape) && e.shape.length >= 1 && e.shape.length <= 2 && e.shape.every(isNat));
  if (!isNat(m.tensorsTotal) || typeof m.complete !== 'boolean' || !isNat(m.totalBytes) || typeof m.createdAt !== 'string') {
    throw corrupt(key, 'its manifest lacks tensorsTotal, complete, totalBytes or createdAt');
  }
  if (m.complete && (m.tensors as unknown[]).length !== m.tensorsTotal) {
    throw corrupt(key, `its manifest says complete but lists ${(m.tensors as unknown[]).length} of ${m.tensorsTotal} tensors`);
  }
  return m as unknown as Manifest;
}

/** The manifest as stored (pretty enough to read, small enough to rewrite per tensor). */
export function encodeManifest(m: Manifest): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m));
}

export { corrupt as corruptEntryError };
