/**
 * The typed message protocol between the main thread (workers/retrieval-client.ts) and the
 * retrieval worker (workers/retrieval.worker.ts). Same conventions as the LLM worker's
 * protocol.ts: structured-clone-safe messages, numeric request ids, any number of `progress`
 * events, then exactly one `result` or `error` per request.
 *
 * Order: long requests (init-embedder, embed, open-index, estimate, list/delete) run one at a
 * time in arrival order. `retrieve`, `status`, `check-embedder`, `cancel` and `estimate` without
 * `measure` are answered at once
 * against the current state, also while an index builds: a retrieve during a build gets the lexical
 * retriever (or the previous corpus while a new one is still being read; the result names its
 * corpus). Unasked, the worker posts a `status` event whenever readiness changes (lexical ready,
 * embedding build started / finished / cancelled, embedder loaded).
 */
import type { SerializedError } from '../models/errors.ts';
import type { EmbedderCacheState } from '../models/retrieval/embedder-cache.ts';
import type { RetrieveResult } from '../models/retrieval/retriever.ts';
import type { RetrieverChoice } from '../models/retrieval/session.ts';
import type {
  BuildEstimate, EmbedderSpec, EmbedderStatus, IndexInfo, OpenIndexOptions, RetrievalStatus, StoredIndex,
} from '../models/retrieval/session-types.ts';

export type {
  BuildEstimate, CorpusSpec, EmbedderSpec, EmbedderStatus, IndexInfo, OpenIndexOptions, RetrievalPhase, RetrievalProgress,
  RetrievalStatus, RetrieverReadiness, StorageKind, StoredIndex,
} from '../models/retrieval/session-types.ts';
export type { EmbedderCacheState } from '../models/retrieval/embedder-cache.ts';
export type { RetrieveResult, Retrieved, RetrieverKind } from '../models/retrieval/retriever.ts';
export type { RetrieverChoice } from '../models/retrieval/session.ts';

/** Which embedder's cached files (check-embedder, delete-embedder). */
export type EmbedderCacheSpec = Pick<EmbedderSpec, 'model' | 'dtype' | 'revision' | 'hub' | 'remoteHost' | 'localModelPath'>;

export interface EstimateOptions {
  /** Texts to embed; default what the active corpus still needs (a partial build's rows excluded). */
  texts?: number;
  /** Embed a short sample now to measure this device (needs a loaded embedder); otherwise a measured build rate, else assumed. */
  measure?: boolean;
  /** Estimate for another model or device than the loaded embedder (assumed rates). */
  model?: string;
  device?: string;
}

export type InitEmbedderRequest = { type: 'init-embedder'; id: number; embedder: EmbedderSpec };
export type EmbedRequest = { type: 'embed'; id: number; texts: string[] };
export type OpenIndexRequest = { type: 'open-index'; id: number } & OpenIndexOptions;
/** `retriever`: 'auto' (default) = embedding when its index is ready, else lexical. */
export type RetrieveRequest = { type: 'retrieve'; id: number; question: string; k: number; retriever?: RetrieverChoice };
export type StatusRequest = { type: 'status'; id: number };
export type EstimateRequest = { type: 'estimate'; id: number } & EstimateOptions;
export type CheckEmbedderRequest = { type: 'check-embedder'; id: number; embedder: EmbedderCacheSpec };
export type DeleteEmbedderRequest = { type: 'delete-embedder'; id: number; embedder: EmbedderCacheSpec };
export type ListIndexesRequest = { type: 'list-indexes'; id: number };
export type DeleteIndexRequest = { type: 'delete-index'; id: number; key: string };
/** Aborts request `targetId` (queued or running); it then ends with an `aborted` error. */
export type CancelRequest = { type: 'cancel'; id: number; targetId: number };

export type RetrievalRequest =
  | InitEmbedderRequest | EmbedRequest | OpenIndexRequest | RetrieveRequest | StatusRequest | EstimateRequest
  | CheckEmbedderRequest | DeleteEmbedderRequest | ListIndexesRequest | DeleteIndexRequest | CancelRequest;

/** Requests answered at once, not queued behind long ones. */
export const IMMEDIATE_REQUESTS: readonly RetrievalRequest['type'][] = ['retrieve', 'status', 'check-embedder', 'cancel'];

/** The `result` payload of each request type. */
export interface RetrievalResultByType {
  'init-embedder': EmbedderStatus;
  /** Row-major [texts.length, dims] unit vectors (transferred, not copied). */
  embed: { vectors: Float32Array; dims: number };
  'open-index': IndexInfo;
  retrieve: RetrieveResult;
  status: RetrievalStatus;
  estimate: BuildEstimate;
  'check-embedder': EmbedderCacheState;
  'delete-embedder': { deleted: number };
  'list-indexes': StoredIndex[];
  'delete-index': { deleted: boolean };
  cancel: { cancelled: boolean };
}

export type RetrievalEvent =
  | { type: 'progress'; id: number; progress: import('../models/retrieval/session-types.ts').RetrievalProgress }
  | { type: 'result'; id: number; result: RetrievalResultByType[keyof RetrievalResultByType] }
  /** `id` is NO_REQUEST when the failure belongs to no request. */
  | { type: 'error'; id: number; error: SerializedError }
  /** Unasked: readiness changed. `id` is NO_REQUEST. */
  | { type: 'status'; id: number; status: RetrievalStatus };

// One constant for both protocols (./wire.ts).
export { NO_REQUEST } from './wire.ts';
