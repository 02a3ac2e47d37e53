/**
 * The retrieval worker: a RetrievalSession (models/retrieval/session.ts: the bge embedder on
 * transformers.js, WebGPU else WASM; BM25 over the active corpus; the vector index, voy-search
 * WASM or the exact scan) with its indexes and corpora in OPFS (IndexedDB where OPFS is missing).
 * Serves workers/retrieval-protocol.ts: long requests run one at a time in arrival order;
 * retrieve / status / check-embedder / cancel are answered at once; every request ends with one
 * `result` or one typed `error`; readiness changes are posted as `status` events.
 */
import voyWasmUrl from 'voy-search/voy_search_bg.wasm?url';
import { InvalidInputError, serializeError, throwIfAborted } from '../models/errors.ts';
import { deleteEmbedderCache, embedderCacheState } from '../models/retrieval/embedder-cache.ts';
import { createEmbedder } from '../models/retrieval/embedder.ts';
import type { EmbedderSource } from '../models/retrieval/embedder-source.ts';
import { DEFAULT_EMBEDDER } from '../models/retrieval/catalog.ts';
import { hubBase } from '../models/retrieval/hub.ts';
import { IdbStore } from '../models/retrieval/idb-store.ts';
import { OpfsStore } from '../models/retrieval/opfs-store.ts';
import { RetrievalSession, type SessionEnv } from '../models/retrieval/session.ts';
import type { EmbedderSpec } from '../models/retrieval/session-types.ts';
import { MemoryStore } from '../models/retrieval/store.ts';
import { configureTransformers } from '../models/retrieval/transformers-env.ts';
import { UrlStore } from '../models/retrieval/url-store.ts';
import { loadVoy } from '../models/retrieval/voy-wasm.ts';
import { ORT_WASM_PATHS } from './ort-wasm-paths.ts';
import {
  IMMEDIATE_REQUESTS,
  NO_REQUEST,
  type EmbedderCacheSpec,
  type RetrievalEvent,
  type RetrievalProgress,
  type RetrievalRequest,
  type RetrievalResultByType,
} from './retrieval-protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;
const controllers = new Map<number, AbortController>();
const memoryStores = new Map<string, MemoryStore>();
let queue: Promise<void> = Promise.resolve();

const PROGRESS_INTERVAL_MS = 50;

function post(event: RetrievalEvent, transfer: Transferable[] = []): void {
  scope.postMessage(event, transfer);
}

/** onnxruntime-web resolves wasmPaths against its own module URL: make them absolute first. */
function absolute(paths: { mjs: string; wasm: string }): { mjs: string; wasm: string } {
  return { mjs: new URL(paths.mjs, scope.location.href).href, wasm: new URL(paths.wasm, scope.location.href).href };
}

/** The hub base of a spec, absolute (a relative '/hub/' means this origin's local hub). */
function hubOf(spec: Pick<EmbedderSpec, 'hub' | 'remoteHost'>): string {
  return hubBase(spec.hub ?? spec.remoteHost, scope.location.href);
}

async function loadEmbedder(spec: EmbedderSpec, signal: AbortSignal | undefined, progress: (p: RetrievalProgress) => void) {
  const model = spec.model ?? DEFAULT_EMBEDDER;
  const hub = hubOf(spec);
  configureTransformers({ allowRemoteModels: spec.allowRemoteModels, localModelPath: spec.localModelPath, remoteHost: hub, wasmPaths: absolute(ORT_WASM_PATHS) });
  const dir = spec.localModelPath?.endsWith('/') ? spec.localModelPath : `${spec.localModelPath ?? ''}/`;
  // A local folder is where the files are looked for first; the hub is where they come from otherwise.
  const source: EmbedderSource = spec.localModelPath !== undefined ? { kind: 'local', path: `${dir}${model}` } : { kind: 'hub', hub, repo: model, revision: spec.revision ?? 'main' };
  return createEmbedder(
    {
      model, dtype: spec.dtype, device: spec.device, batchSize: spec.batchSize, revision: spec.revision, cacheFirst: spec.cacheFirst, source,
      onDownload: (p) => progress({ phase: 'embedder', done: p.loaded, total: p.total, detail: p.file }),
    },
    signal,
  );
}

async function openStore(key: string) {
  if (await OpfsStore.available()) return { store: await OpfsStore.open(key), storage: 'opfs' as const };
  if (IdbStore.available()) return { store: new IdbStore(key), storage: 'indexeddb' as const };
  if (!memoryStores.has(key)) memoryStores.set(key, new MemoryStore());
  return { store: memoryStores.get(key)!, storage: 'memory' as const };
}

const env: SessionEnv = {
  openStore,
  listKeys: async () => ((await OpfsStore.available()) ? OpfsStore.keys() : IdbStore.available() ? IdbStore.keys() : [...memoryStores.keys()]),
  removeKey: async (key) => {
    if (await OpfsStore.available()) await OpfsStore.removeKey(key);
    else if (IdbStore.available()) await new IdbStore(key).clear();
    else memoryStores.delete(key);
  },
  urlStore: (url) => new UrlStore(url),
  loadVoy: () => loadVoy(new URL(voyWasmUrl, scope.location.href)),
  loadEmbedder,
  baseUrl: scope.location.href,
};

const session = new RetrievalSession(env);
session.onStatus((status) => post({ type: 'status', id: NO_REQUEST, status }));

scope.addEventListener('message', (ev: MessageEvent<unknown>) => {
  const req = ev.data as RetrievalRequest;
  if (typeof req !== 'object' || req === null || typeof req.id !== 'number' || typeof req.type !== 'string') {
    post({ type: 'error', id: NO_REQUEST, error: serializeError(new InvalidInputError('Malformed request to the retrieval worker.')) });
    return;
  }
  if (req.type === 'cancel') {
    const target = controllers.get(req.targetId);
    target?.abort();
    post({ type: 'result', id: req.id, result: { cancelled: target !== undefined } });
    return;
  }
  const controller = new AbortController();
  controllers.set(req.id, controller);
  const run = async (): Promise<void> => {
    try {
      const result = await serve(req, controller.signal, throttled(req.id));
      const transfer = req.type === 'embed' ? [(result as RetrievalResultByType['embed']).vectors.buffer as ArrayBuffer] : [];
      post({ type: 'result', id: req.id, result }, transfer);
    } catch (e) {
      post({ type: 'error', id: req.id, error: serializeError(e) });
    } finally {
      controllers.delete(req.id);
    }
  };
  // An estimate without a measurement reads state only: it need not wait behind a build.
  if (IMMEDIATE_REQUESTS.includes(req.type) || (req.type === 'estimate' && !req.measure)) void run();
  else queue = queue.then(run);
});

scope.addEventListener('unhandledrejection', (ev: PromiseRejectionEvent) => {
  ev.preventDefault();
  post({ type: 'error', id: NO_REQUEST, error: serializeError(ev.reason) });
});

type Progress = (p: RetrievalProgress) => void;

/** At most one progress event per interval, but always the first and the last of a phase. */
function throttled(id: number): Progress {
  let last = 0;
  let phase = '';
  return (p) => {
    const now = performance.now();
    if (p.phase === phase && p.done < p.total && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    phase = p.phase;
    post({ type: 'progress', id, progress: p });
  };
}

function cacheQuery(spec: EmbedderCacheSpec) {
  return { model: spec.model ?? DEFAULT_EMBEDDER, dtype: spec.dtype, revision: spec.revision, hub: hubOf(spec), localModelPath: spec.localModelPath };
}

async function serve(
  req: Exclude<RetrievalRequest, { type: 'cancel' }>,
  signal: AbortSignal,
  progress: Progress,
): Promise<RetrievalResultByType[keyof RetrievalResultByType]> {
  throwIfAborted(signal);
  switch (req.type) {
    case 'init-embedder':
      return session.initEmbedder(req.embedder, signal, progress);
    case 'embed':
      return session.embed(req.texts, signal, progress);
    case 'open-index': {
      const { type: _t, id: _i, ...options } = req;
      return session.openIndex(options, signal, progress);
    }
    case 'retrieve':
      return session.retrieve(req.question, req.k, req.retriever ?? 'auto', signal);
    case 'status':
      return session.status();
    case 'estimate':
      return session.estimate({ texts: req.texts, measure: req.measure, model: req.model, device: req.device }, signal);
    case 'check-embedder':
      return embedderCacheState(cacheQuery(req.embedder));
    case 'delete-embedder':
      return { deleted: await deleteEmbedderCache(cacheQuery(req.embedder)) };
    case 'list-indexes':
      return session.listIndexes();
    case 'delete-index':
      return session.deleteIndex(req.key);
  }
}
