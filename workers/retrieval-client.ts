/**
 * Main-thread side of the retrieval worker: promises over workers/retrieval-protocol.ts. Each call
 * posts one request with a fresh id and settles when the worker answers that id; rejections are
 * typed EngineErrors of their own class (StaleIndexError, CorpusFormatError, ...). A worker that
 * dies rejects everything pending, and the next call starts a fresh one (the embedder and open
 * index must then be set up again). The lifecycle is ./worker-client.ts, shared with LlmClient.
 *
 * @example
 *   const retrieval = new RetrievalClient();
 *   retrieval.onStatus((s) => show(s.retrievers));       // { lexical: 'ready', embedding: 'building' }, ...
 *   // No embedder yet: the corpus opens lexical-only (BM25), at once.
 *   await retrieval.openIndex({ corpus: { kind: 'url', url: 'demo/demo-corpus.jsonl' } });
 *   await retrieval.initEmbedder({ model: 'Xenova/bge-base-en-v1.5', allowRemoteModels: true, hub: '/hub/' });
 *   const opening = retrieval.openIndex({ corpus: { kind: 'stored', name: 'demo-corpus.jsonl' } }, (p) => show(p));
 *   const r = await retrieval.retrieve('Crushing chest pain while shovelling snow?', 5); // r.retriever: 'lexical' while building
 *   await opening;                                                                      // then 'embedding'
 */
import { createRetrievalWorker } from './create-retrieval-worker.ts';
import { WorkerClient, type RequestBody } from './worker-client.ts';
import {
  type BuildEstimate,
  type EmbedderCacheSpec,
  type EmbedderCacheState,
  type EmbedderSpec,
  type EmbedderStatus,
  type EstimateOptions,
  type IndexInfo,
  type OpenIndexOptions,
  type RetrievalEvent,
  type RetrievalProgress,
  type RetrievalRequest,
  type RetrievalResultByType,
  type RetrievalStatus,
  type RetrieveResult,
  type RetrieverChoice,
  type StoredIndex,
} from './retrieval-protocol.ts';

/** The page's base URL on the main thread, undefined in a worker (workers/ is typed without the DOM). */
function pageBase(): string | undefined {
  return (globalThis as { document?: { baseURI: string } }).document?.baseURI;
}

/** Relative URLs mean the page's (e.g. 'demo/demo-corpus.jsonl'); the worker would read them against its own script URL. */
function pageUrl(url: string): string {
  const base = pageBase();
  return base === undefined ? url : new URL(url, base).href;
}

/**
 * A same-origin model folder as an absolute path: transformers.js joins localModelPath like a file
 * path, so a full http:// URL comes out mangled and the model loads without its tokenizer.
 */
function samePagePath(path: string | undefined): string | undefined {
  const base = pageBase();
  if (path === undefined || base === undefined) return path;
  const url = new URL(path, base);
  return url.origin === location.origin ? url.pathname : path;
}

/** A hub base relative to the page ('/hub/', 'hub/') as an absolute URL; the worker would read it against its own URL. */
function pageHub<T extends { hub?: string; remoteHost?: string }>(spec: T): T {
  const out = { ...spec };
  if (out.hub !== undefined) out.hub = pageUrl(out.hub);
  if (out.remoteHost !== undefined) out.remoteHost = pageUrl(out.remoteHost);
  return out;
}

export type RetrievalProgressCallback = (p: RetrievalProgress) => void;
export type RetrievalStatusListener = (s: RetrievalStatus) => void;

type Type = Exclude<RetrievalRequest['type'], 'cancel'>;
type Fields<T extends Type> = Omit<Extract<RetrievalRequest, { type: T }>, 'id' | 'type'>;

/** A call in flight; `cancel()` aborts it in the worker (it then rejects with an `aborted` error). */
export type Cancellable<T> = Promise<T> & { cancel(): void };

export class RetrievalClient extends WorkerClient<RetrievalRequest, RetrievalEvent> {
  private readonly statusListeners = new Set<RetrievalStatusListener>();

  /** @param createWorker makes the worker; tests may inject their own. */
  constructor(createWorker: () => Worker = createRetrievalWorker) {
    super(createWorker, 'retrieval worker');
  }

  /**
   * Loads the embedder (replacing the loaded one; its embedding index closes, the active corpus
   * stays open for lexical retrieval). A model whose files are all in the browser cache loads with
   * no request; otherwise from `localModelPath`, then the hub (`hub`, default huggingface.co).
   */
  initEmbedder(embedder: EmbedderSpec, onProgress?: RetrievalProgressCallback): Cancellable<EmbedderStatus> {
    return this.request('init-embedder', { embedder: pageHub({ ...embedder, localModelPath: samePagePath(embedder.localModelPath) }) }, onProgress);
  }

  /** Unit vectors of `texts`, row-major [texts.length, dims]. */
  embed(texts: string[], onProgress?: RetrievalProgressCallback): Cancellable<RetrievalResultByType['embed']> {
    return this.request('embed', { texts }, onProgress);
  }

  /**
   * Opens a corpus and makes it the active one. Lexical (BM25) retrieval is ready first (a
   * 'lexical' progress phase and a status event); then, with an embedder loaded, the embedding
   * index is loaded when fresh or built (resumably: a cancelled or interrupted build continues
   * from its last checkpoint) and stored. Without an embedder the corpus opens lexical-only;
   * 'stored' and 'index-url' reload the embedder the index was built with, from the cache only.
   * Resolves when everything asked for is ready.
   */
  openIndex(options: OpenIndexOptions, onProgress?: RetrievalProgressCallback): Cancellable<IndexInfo> {
    const c = options.corpus;
    const corpus = c.kind === 'url' || c.kind === 'index-url' ? { ...c, url: pageUrl(c.url) }
      : c.kind === 'finemed-dpo' && c.hub !== undefined ? { ...c, hub: pageUrl(c.hub) } : c;
    return this.request('open-index', { ...options, corpus }, onProgress);
  }

  /**
   * The k records most similar to `question`, best first, with timings and which retriever
   * answered. `retriever`: 'auto' (default) = the embedding index when ready, else lexical.
   * Answered at once, also while an index builds.
   */
  retrieve(question: string, k = 5, options: { retriever?: RetrieverChoice } = {}): Cancellable<RetrieveResult> {
    return this.request('retrieve', { question, k, ...(options.retriever ? { retriever: options.retriever } : {}) });
  }

  /** Which retrievers are ready, the embedder, the build in progress (answered at once). */
  status(): Promise<RetrievalStatus> {
    return this.request('status', {});
  }

  /** Calls `listener` with every status event from the worker; returns the unsubscribe function. */
  onStatus(listener: RetrievalStatusListener): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Expected embedding time: texts x measured (this device) or assumed texts/s. */
  estimate(options: EstimateOptions = {}): Cancellable<BuildEstimate> {
    return this.request('estimate', { ...options });
  }

  /** Which of the embedder's files are in the browser cache, and their bytes (no request is made). */
  checkEmbedder(embedder: EmbedderCacheSpec): Promise<EmbedderCacheState> {
    return this.request('check-embedder', { embedder: pageHub({ ...embedder, localModelPath: samePagePath(embedder.localModelPath) }) });
  }

  /** Deletes the embedder's cached files; resolves with the number of entries deleted. */
  deleteEmbedder(embedder: EmbedderCacheSpec): Promise<{ deleted: number }> {
    return this.request('delete-embedder', { embedder: pageHub({ ...embedder, localModelPath: samePagePath(embedder.localModelPath) }) });
  }

  /** Stored embedding indexes (complete or partial) and stored corpora. */
  listIndexes(): Promise<StoredIndex[]> {
    return this.request('list-indexes', {});
  }

  deleteIndex(key: string): Promise<{ deleted: boolean }> {
    return this.request('delete-index', { key });
  }

  /** Status events (unasked; readiness changed) go to the onStatus listeners. */
  protected override onUnrequested(event: RetrievalEvent): void {
    if (event.type === 'status') for (const l of this.statusListeners) l(event.status);
  }

  private request<T extends Type>(type: T, fields: Fields<T>, onProgress?: RetrievalProgressCallback): Cancellable<RetrievalResultByType[T]> {
    const onEvent = onProgress && ((event: RetrievalEvent) => {
      if (event.type === 'progress') onProgress(event.progress);
    });
    const { id, promise } = this.send<RetrievalResultByType[T]>({ ...fields, type } as RequestBody<RetrievalRequest>, onEvent);
    return Object.assign(promise, { cancel: () => this.cancelRequest(id) });
  }
}
