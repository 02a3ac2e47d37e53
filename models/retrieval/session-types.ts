/**
 * The types of a retrieval session (session.ts), which the worker protocol
 * (workers/retrieval-protocol.ts) re-exports: what the UI sends and gets back. Plain data only
 * (structured-clone safe), so they cross postMessage unchanged.
 */
import type { BuildPhase } from './build.ts';
import type { EmbedderDtype } from './catalog.ts';
import type { CorpusManifest } from './corpus-store.ts';
import type { EmbedderSource } from './embedder-source.ts';
import type { EmbedderInfo } from './embedder-types.ts';
import type { BadLine } from './errors.ts';
import type { IndexChoice } from './index-kind.ts';
import type { BadLinePolicy } from './jsonl.ts';
import type { IndexManifest, VectorDtype } from './manifest.ts';
import type { RetrieverKind } from './retriever.ts';
import type { IndexKind } from './search-types.ts';

/** Which embedder, and where its files may come from. */
export interface EmbedderSpec {
  /** Hub repo ('Xenova/bge-base-en-v1.5', the default) or a folder name under localModelPath. */
  model?: string;
  dtype?: EmbedderDtype;
  /** Hub revision; default 'main'. */
  revision?: string;
  /** 'auto' (default): WebGPU when a hardware adapter exists, else WASM. */
  device?: 'auto' | 'webgpu' | 'wasm';
  /** The user's permission to download from the hub; otherwise local files and the browser cache only. */
  allowRemoteModels: boolean;
  /** Path on this origin holding model folders (e.g. '/shared/models/'); omit to never look for local files. */
  localModelPath?: string;
  /**
   * Hub base URL in Hugging Face layout (`<hub><org>/<name>/resolve/<rev>/<file>`), absolute or
   * relative to the page (e.g. '/hub/' for the app's local hub); default https://huggingface.co/.
   */
  hub?: string;
  /** Older name of `hub` (used when `hub` is absent). */
  remoteHost?: string;
  batchSize?: number;
  /** Default true: a model whose files are all in the browser cache loads with no request at all. */
  cacheFirst?: boolean;
}

/** Where the corpus comes from. */
export type CorpusSpec =
  /** A JSONL file at a URL (the shipped demo corpus: 'demo/demo-corpus.jsonl'). */
  | { kind: 'url'; url: string; name?: string }
  /** A JSONL file the user picked ("Import traces (JSONL)"); it becomes the active corpus and is stored. */
  | { kind: 'file'; file: File; name?: string }
  /** JSONL text (tests, pasted traces). */
  | { kind: 'text'; text: string; name: string }
  /** FineMed-DPO from a hub (default huggingface.co; '/hub/' for the local one). */
  | { kind: 'finemed-dpo'; hub?: string; revision?: string; limit?: number }
  /** The corpus (and its embedding index, if any) stored earlier under this name: offline, nothing is read again. */
  | { kind: 'stored'; name: string }
  /** An index built elsewhere (the CLI), served as its three files under `url`. */
  | { kind: 'index-url'; url: string; name?: string };

export interface OpenIndexOptions {
  corpus: CorpusSpec;
  /** JSONL: skip bad lines (default, counted and listed with line numbers) or stop at the first. */
  onBadLine?: BadLinePolicy;
  /** In-memory vector index: 'auto' (default) = voy up to 768 dims, exact above; 'voy' above 768 dims also gets exact, with a note. */
  index?: IndexChoice;
  /** Storage precision of the vectors; default 'F32'. */
  vectors?: VectorDtype;
  /** Re-embed even when the stored index is fresh (a partial build is discarded too). */
  rebuild?: boolean;
  /** 'auto' (default): build or load the embedding index when an embedder is loaded; 'none': lexical only. */
  embeddings?: 'auto' | 'none';
  /** Continue a stored partial build (default true). */
  resume?: boolean;
  /** Rows embedded between checkpoints; default adaptive (about 5 s of work). */
  checkpointRows?: number;
  /**
   * 'stored' and 'index-url' with no embedder loaded: load the embedder the index was built with,
   * from the cache only (no download), default true. If that fails, the corpus opens lexical-only
   * and `embedderNote` says why.
   */
  reopenEmbedder?: boolean;
}

export type RetrievalPhase = 'embedder' | 'corpus' | 'download' | 'lexical' | BuildPhase | 'index';

export interface RetrievalProgress {
  phase: RetrievalPhase;
  done: number;
  total: number;
  /** File being downloaded, corpus name, ... */
  detail?: string;
  /** embed: texts/s measured in this session, and the time left at that rate. */
  textsPerSecond?: number;
  etaMs?: number;
  /** embed: rows taken from a stored partial build (not embedded again). */
  resumedFrom?: number;
}

export interface EmbedderStatus {
  info: EmbedderInfo;
  device: string;
  loadMs: number;
  /** Where it was loaded from (recorded in the indexes it builds). */
  source?: EmbedderSource;
  /** Every file came from the browser cache, with no request. */
  fromCache?: boolean;
}

export type StorageKind = 'opfs' | 'indexeddb' | 'memory' | 'url';

/** Readiness of each retriever for the active corpus. */
export interface RetrieverReadiness {
  lexical: 'ready' | 'none';
  /** 'partial': a cancelled or interrupted build is stored and resumes on the next open. */
  embedding: 'ready' | 'building' | 'partial' | 'none';
}

export interface IndexInfo {
  /** The active corpus: records searched by both retrievers. */
  corpus: { name: string; count: number; hash: string; key: string };
  /** Storage key of the embedding index (one per corpus name and embedder model); null when lexical only. */
  key: string | null;
  /** The embedding index's manifest; null when lexical only. */
  manifest: IndexManifest | null;
  storage: StorageKind;
  /** The vector index in memory; null when lexical only. */
  kind: IndexKind | null;
  /** Why `kind` is not what was asked (voy refuses > 768 dims). */
  kindNote?: string;
  retrievers: RetrieverReadiness;
  /** Why there is no embedding index (no embedder loaded, or it could not be reopened from the cache). */
  embedderNote?: string;
  /** The embedding index before this call: 'fresh' = loaded as is; 'missing'/'stale' = (re)built; 'missing' also when lexical only. */
  previous: 'missing' | 'stale' | 'fresh';
  staleReasons: string[];
  /** Rows taken from a partial build (0 when none). */
  resumedFrom: number;
  /** Bad corpus lines skipped (JSONL, 1-based line numbers), or rows (FineMed-DPO). */
  skipped: number;
  badLines: BadLine[];
  timings: { corpusMs: number; lexicalMs: number; buildMs: number; indexMs: number; totalMs: number };
}

export interface RetrievalStatus {
  embedder: EmbedderStatus | null;
  corpus: { name: string; count: number; key: string } | null;
  retrievers: RetrieverReadiness;
  /** What `retrieve` with 'auto' uses now; null without a corpus. */
  auto: RetrieverKind | null;
  /** The embedding build in progress, or the stored partial one. */
  build?: { done: number; total: number; textsPerSecond?: number; etaMs?: number; resumedFrom: number };
  /** The vector index serving 'embedding'. */
  index?: { key: string; kind: IndexKind; note?: string };
}

export interface StoredIndex {
  key: string;
  /** 'embedding': vectors (+ records) for one corpus and embedder; 'corpus': a corpus's records (lexical). */
  type: 'embedding' | 'corpus';
  storage: StorageKind;
  /** embedding: its manifest (null while only a partial build exists). */
  manifest: IndexManifest | null;
  /** corpus: its manifest. */
  corpus?: CorpusManifest | null;
  /** embedding: a stored partial build. */
  partial?: { done: number; total: number; model: string; corpusName: string };
  bytes: number;
}

/** How long embedding a corpus is expected to take. */
export interface BuildEstimate {
  model: string;
  device: string;
  /** Texts still to embed (a partial build's rows are not counted). */
  texts: number;
  textsPerSecond: number;
  /** 'measured': this device, this embedder (a build or a sample); 'assumed': the catalogue's rough figure. */
  basis: 'measured' | 'assumed';
  seconds: number;
}
