/**
 * The retrieval worker: a RetrievalSession (models/retrieval/session.ts: the bge embedder on
 * transformers.js, WebGPU else WASM; BM25 over the active corpus; the vector index, voy-search
 * WASM or the exact scan) with its indexes and corpora in OPFS (IndexedDB where OPFS is missing).
 * Serves workers/retrieval-protocol.ts through ./worker-host.ts (the queue, cancel and error
 * plumbing shared with the model worker): long requests run one at a time in arrival order;
 * retrieve / status / check-embedder / cancel (and an estimate without a measurement) are answered
 * at once; every request ends with one `result` or one typed `error`; readiness changes are posted
 * as `status` events.
 */
import voyWasmUrl from 'voy-search/voy_search_bg.wasm?url';
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
import { serveRequests, type Emit } from './worker-host.ts';
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
const memoryStores = new Map<string, MemoryStore>();

const PROGRESS_INTERVAL_MS = 50;

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

type Served = Exclude<RetrievalRequest, { type: 'cancel' }>;

const session = new RetrievalSession(env);
const host = serveRequests<RetrievalRequest, RetrievalEvent>({
  label: 'retrieval worker',
  handle: (req, signal, emit) => serve(req, signal, throttled(emit)),
  // An estimate without a measurement reads state only: it need not wait behind a build.
  immediate: (req) => IMMEDIATE_REQUESTS.includes(req.type) || (req.type === 'estimate' && !req.measure),
  transfer: (result, req) => (req.type === 'embed' ? [(result as RetrievalResultByType['embed']).vectors.buffer as ArrayBuffer] : []),
});
session.onStatus((status) => host.post({ type: 'status', id: NO_REQUEST, status }));

type Progress = (p: RetrievalProgress) => void;

/** At most one progress event per interval, but always the first and the last of a phase. */
function throttled(emit: Emit<RetrievalEvent>): Progress {
  let last = 0;
  let phase = '';
  return (p) => {
    const now = performance.now();
    if (p.phase === phase && p.done < p.total && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    phase = p.phase;
    emit({ type: 'progress', progress: p });
  };
}

function cacheQuery(spec: EmbedderCacheSpec) {
  return { model: spec.model ?? DEFAULT_EMBEDDER, dtype: spec.dtype, revision: spec.revision, hub: hubOf(spec), localModelPath: spec.localModelPath };
}

async function serve(req: Served, signal: AbortSignal, progress: Progress): Promise<RetrievalResultByType[keyof RetrievalResultByType]> {
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
