/**
 * The typed message protocol between the main thread (workers/retrieval-client.ts) and the
 * retrieval worker (workers/retrieval.worker.ts). Same conventions as the LLM worker's
 * protocol.ts: structured-clone-safe messages, numeric request ids, any number of `progress`
 * events, then exactly one `result` or `error` per request.
 */
import type { SerializedError } from '../models/errors.ts';
import type { BuildPhase } from '../models/retrieval/build.ts';
import type { EmbedderInfo } from '../models/retrieval/embedder-types.ts';
import type { BadLine } from '../models/retrieval/errors.ts';
import type { BadLinePolicy } from '../models/retrieval/jsonl.ts';
import type { IndexManifest, VectorDtype } from '../models/retrieval/manifest.ts';
import type { RetrieveResult } from '../models/retrieval/retriever.ts';
import type { IndexKind } from '../models/retrieval/search-types.ts';

/** Which embedder, and where its files may come from. */
export interface EmbedderSpec {
  /** Hub repo ('Xenova/bge-small-en-v1.5', the default) or a folder name under localModelPath. */
  model?: string;
  dtype?: 'fp32' | 'fp16' | 'q8';
  /** 'auto' (default): WebGPU when an adapter exists, else WASM. */
  device?: 'auto' | 'webgpu' | 'wasm';
  /** The user's permission to download from the hub; otherwise local files and the browser cache only. */
  allowRemoteModels: boolean;
  /** Path on this origin holding model folders (e.g. '/shared/models/'); omit to never look for local files. */
  localModelPath?: string;
  remoteHost?: string;
  batchSize?: number;
}

/** Where the corpus comes from. */
export type CorpusSpec =
  /** A JSONL file at a URL (the shipped demo corpus: 'demo/demo-corpus.jsonl'). */
  | { kind: 'url'; url: string; name?: string }
  /** A JSONL file the user picked. */
  | { kind: 'file'; file: File; name?: string }
  /** JSONL text (tests, pasted traces). */
  | { kind: 'text'; text: string; name: string }
  /** FineMed-DPO from the hub (or a mirror). */
  | { kind: 'finemed-dpo'; hub?: string; revision?: string; limit?: number }
  /** The index stored earlier under this corpus name (offline; the corpus is not read again). */
  | { kind: 'stored'; name: string }
  /** An index built elsewhere (the CLI), served as its three files under `url`. */
  | { kind: 'index-url'; url: string; name?: string };

export interface OpenIndexOptions {
  corpus: CorpusSpec;
  /** JSONL: skip bad lines (default, counted and listed) or stop at the first. */
  onBadLine?: BadLinePolicy;
  /** In-memory search structure; default 'voy'. */
  index?: IndexKind;
  /** Storage precision of the vectors; default 'F32'. */
  vectors?: VectorDtype;
  /** Rebuild even when the stored index is fresh. */
  rebuild?: boolean;
}

export type RetrievalPhase = 'embedder' | 'corpus' | 'download' | BuildPhase | 'index';

export interface RetrievalProgress {
  phase: RetrievalPhase;
  done: number;
  total: number;
  /** File being downloaded, corpus name, ... */
  detail?: string;
}

export interface EmbedderStatus {
  info: EmbedderInfo;
  device: string;
  loadMs: number;
}

export type StorageKind = 'opfs' | 'indexeddb' | 'memory' | 'url';

export interface IndexInfo {
  /** Storage key: one index per (corpus name, embedder model). */
  key: string;
  manifest: IndexManifest;
  storage: StorageKind;
  kind: IndexKind;
  /** What was stored before this call: 'fresh' = loaded as is; 'missing'/'stale' = (re)built. */
  previous: 'missing' | 'stale' | 'fresh';
  staleReasons: string[];
  /** Bad corpus lines skipped (JSONL), or rows (FineMed-DPO). */
  skipped: number;
  badLines: BadLine[];
  timings: { corpusMs: number; buildMs: number; indexMs: number; totalMs: number };
}

export interface StoredIndex {
  key: string;
  storage: StorageKind;
  manifest: IndexManifest | null;
  bytes: number;
}

export type InitEmbedderRequest = { type: 'init-embedder'; id: number; embedder: EmbedderSpec };
export type EmbedRequest = { type: 'embed'; id: number; texts: string[] };
export type OpenIndexRequest = { type: 'open-index'; id: number } & OpenIndexOptions;
export type RetrieveRequest = { type: 'retrieve'; id: number; question: string; k: number };
export type ListIndexesRequest = { type: 'list-indexes'; id: number };
export type DeleteIndexRequest = { type: 'delete-index'; id: number; key: string };
/** Aborts request `targetId` (queued or running); it then ends with an `aborted` error. */
export type CancelRequest = { type: 'cancel'; id: number; targetId: number };

export type RetrievalRequest =
  | InitEmbedderRequest | EmbedRequest | OpenIndexRequest | RetrieveRequest
  | ListIndexesRequest | DeleteIndexRequest | CancelRequest;

/** The `result` payload of each request type. */
export interface RetrievalResultByType {
  'init-embedder': EmbedderStatus;
  /** Row-major [texts.length, dims] unit vectors (transferred, not copied). */
  embed: { vectors: Float32Array; dims: number };
  'open-index': IndexInfo;
  retrieve: RetrieveResult;
  'list-indexes': StoredIndex[];
  'delete-index': { deleted: boolean };
  cancel: { cancelled: boolean };
}

export type RetrievalEvent =
  | { type: 'progress'; id: number; progress: RetrievalProgress }
  | { type: 'result'; id: number; result: RetrievalResultByType[keyof RetrievalResultByType] }
  /** `id` is NO_REQUEST when the failure belongs to no request. */
  | { type: 'error'; id: number; error: SerializedError };

export const NO_REQUEST = -1;
