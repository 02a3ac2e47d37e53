/**
 * Main-thread side of the retrieval worker: promises over workers/retrieval-protocol.ts. Each call
 * posts one request with a fresh id and settles when the worker answers that id; rejections are
 * typed EngineErrors. A worker that dies rejects everything pending, and the next call starts a
 * fresh one (the embedder and open index must then be set up again).
 *
 * @example
 *   const retrieval = new RetrievalClient();
 *   await retrieval.initEmbedder({ model: 'Xenova/bge-small-en-v1.5', allowRemoteModels: true });
 *   await retrieval.openIndex({ corpus: { kind: 'url', url: 'demo/demo-corpus.jsonl' } }, (p) => show(p));
 *   const { results, timings } = await retrieval.retrieve('Crushing chest pain while shovelling snow?', 5);
 */
import { AbortError, EngineError, deserializeError } from '../models/errors.ts';
import type { RetrieveResult } from '../models/retrieval/retriever.ts';
import { createRetrievalWorker } from './create-retrieval-worker.ts';
import {
  NO_REQUEST,
  type EmbedderSpec,
  type EmbedderStatus,
  type IndexInfo,
  type OpenIndexOptions,
  type RetrievalEvent,
  type RetrievalProgress,
  type RetrievalRequest,
  type RetrievalResultByType,
  type StoredIndex,
} from './retrieval-protocol.ts';

/** Relative URLs mean the page's (e.g. 'demo/demo-corpus.jsonl'); the worker would read them against its own script URL. */
function pageUrl(url: string): string {
  return typeof document === 'undefined' ? url : new URL(url, document.baseURI).href;
}

/**
 * A same-origin model folder as an absolute path: transformers.js joins localModelPath like a file
 * path, so a full http:// URL comes out mangled and the model loads without its tokenizer.
 */
function samePagePath(path: string | undefined): string | undefined {
  if (path === undefined || typeof document === 'undefined') return path;
  const url = new URL(path, document.baseURI);
  return url.origin === location.origin ? url.pathname : path;
}

export type RetrievalProgressCallback = (p: RetrievalProgress) => void;

type Type = RetrievalRequest['type'];
type Body<T extends Type> = Omit<Extract<RetrievalRequest, { type: T }>, 'id'>;

interface Pending {
  type: Type;
  resolve: (result: unknown) => void;
  reject: (error: EngineError) => void;
  onProgress?: RetrievalProgressCallback;
}

/** A call in flight; `cancel()` aborts it in the worker (it then rejects with an `aborted` error). */
export type Cancellable<T> = Promise<T> & { cancel(): void };

export class RetrievalClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** @param createWorker makes the worker; tests may inject their own. */
  constructor(private readonly createWorker: () => Worker = createRetrievalWorker) {}

  /** Loads the embedder (replacing any loaded one and closing the open index). */
  initEmbedder(embedder: EmbedderSpec, onProgress?: RetrievalProgressCallback): Cancellable<EmbedderStatus> {
    return this.request('init-embedder', { embedder: { ...embedder, localModelPath: samePagePath(embedder.localModelPath) } }, onProgress);
  }

  /** Unit vectors of `texts`, row-major [texts.length, dims]. */
  embed(texts: string[], onProgress?: RetrievalProgressCallback): Cancellable<RetrievalResultByType['embed']> {
    return this.request('embed', { texts }, onProgress);
  }

  /** Opens the stored index of a corpus when fresh, else builds (embeds) and stores it. */
  openIndex(options: OpenIndexOptions, onProgress?: RetrievalProgressCallback): Cancellable<IndexInfo> {
    const c = options.corpus;
    const corpus = c.kind === 'url' || c.kind === 'index-url' ? { ...c, url: pageUrl(c.url) } : c;
    return this.request('open-index', { ...options, corpus }, onProgress);
  }

  /** The k records most similar to `question` (cosine scores, nearest first), with timings. */
  retrieve(question: string, k = 5): Cancellable<RetrieveResult> {
    return this.request('retrieve', { question, k });
  }

  listIndexes(): Promise<StoredIndex[]> {
    return this.request('list-indexes', {});
  }

  deleteIndex(key: string): Promise<{ deleted: boolean }> {
    return this.request('delete-index', { key });
  }

  /** Stops the worker; pending calls reject with an `aborted` error. */
  terminate(): void {
    this.fail(new AbortError('The retrieval worker was stopped.'));
  }

  private request<T extends Exclude<Type, 'cancel'>>(
    type: T,
    fields: Omit<Body<T>, 'type'>,
    onProgress?: RetrievalProgressCallback,
  ): Cancellable<RetrievalResultByType[T]> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    const promise = new Promise<RetrievalResultByType[T]>((resolve, reject) => {
      this.pending.set(id, { type, resolve: resolve as (r: unknown) => void, reject, onProgress });
      try {
        worker.postMessage({ ...fields, type, id } as RetrievalRequest);
      } catch (e) {
        this.pending.delete(id);
        reject(new EngineError('invalid-input', `Could not send the ${type} request to the retrieval worker: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
    return Object.assign(promise, {
      cancel: () => {
        if (this.pending.has(id)) this.worker?.postMessage({ type: 'cancel', id: this.nextId++, targetId: id } satisfies RetrievalRequest);
      },
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = this.createWorker();
    worker.addEventListener('message', (ev: MessageEvent<RetrievalEvent>) => this.onEvent(ev.data));
    worker.addEventListener('error', (ev: Event) => {
      const message = (ev as { message?: unknown }).message;
      this.fail(new EngineError('internal', `The retrieval worker stopped working: ${typeof message === 'string' && message ? message : 'it failed to start or crashed'}.`));
    });
    worker.addEventListener('messageerror', () => this.fail(new EngineError('internal', 'A message from the retrieval worker could not be read.')));
    this.worker = worker;
    return worker;
  }

  private onEvent(event: RetrievalEvent): void {
    if (event.type === 'error' && event.id === NO_REQUEST) {
      this.fail(deserializeError(event.error));
      return;
    }
    const p = this.pending.get(event.id);
    if (!p) return; // cancel acknowledgements and late events
    if (event.type === 'progress') {
      p.onProgress?.(event.progress);
      return;
    }
    this.pending.delete(event.id);
    if (event.type === 'result') p.resolve(event.result);
    else p.reject(deserializeError(event.error));
  }

  private fail(error: EngineError): void {
    this.worker?.terminate();
    this.worker = null;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
  }
}
