/**
 * The retrieval worker: the bge embedder (transformers.js on WebGPU, else WASM) and the vector
 * index (voy-search WASM, or the exact scan) over a corpus, persisted in OPFS (IndexedDB where
 * OPFS is missing). Serves workers/retrieval-protocol.ts: requests run one at a time in arrival
 * order; `cancel` aborts its target at once, queued or running; every request ends with one
 * `result` or one typed `error`.
 */
import voyWasmUrl from 'voy-search/voy_search_bg.wasm?url';
import { InvalidInputError, serializeError, throwIfAborted } from '../models/errors.ts';
import { openOrBuildIndex, buildIndex } from '../models/retrieval/build.ts';
import { createEmbedder } from '../models/retrieval/embedder.ts';
import type { Embedder } from '../models/retrieval/embedder-types.ts';
import { loadFineMedDpo } from '../models/retrieval/finemed-loader.ts';
import { fetchOk } from '../models/retrieval/http.ts';
import { IdbStore } from '../models/retrieval/idb-store.ts';
import { readJsonlCorpus } from '../models/retrieval/jsonl.ts';
import { OpfsStore } from '../models/retrieval/opfs-store.ts';
import { indexStatus, loadIndex, readManifest, saveIndex, type IndexData } from '../models/retrieval/persist.ts';
import { Retriever } from '../models/retrieval/retriever.ts';
import { MemoryStore, type IndexStore } from '../models/retrieval/store.ts';
import { configureTransformers } from '../models/retrieval/transformers-env.ts';
import { UrlStore } from '../models/retrieval/url-store.ts';
import { loadVoy } from '../models/retrieval/voy-wasm.ts';
import type { BadLine } from '../models/retrieval/errors.ts';
import type { CorpusRecord } from '../models/retrieval/record.ts';
import { ORT_WASM_PATHS } from './ort-wasm-paths.ts';
import {
  NO_REQUEST,
  type CorpusSpec,
  type EmbedderStatus,
  type IndexInfo,
  type OpenIndexRequest,
  type RetrievalEvent,
  type RetrievalProgress,
  type RetrievalRequest,
  type RetrievalResultByType,
  type StorageKind,
  type StoredIndex,
} from './retrieval-protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

let embedder: Embedder | null = null;
let retriever: Retriever | null = null;
/** Storage key of the index `retriever` serves. */
let openKey: string | null = null;
const controllers = new Map<number, AbortController>();
const memoryStores = new Map<string, MemoryStore>();
let queue: Promise<void> = Promise.resolve();

const PROGRESS_INTERVAL_MS = 50;

function post(event: RetrievalEvent, transfer: Transferable[] = []): void {
  scope.postMessage(event, transfer);
}

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
  queue = queue.then(async () => {
    try {
      const result = await serve(req, controller.signal, throttled(req.id));
      const transfer = req.type === 'embed' ? [(result as RetrievalResultByType['embed']).vectors.buffer as ArrayBuffer] : [];
      post({ type: 'result', id: req.id, result }, transfer);
    } catch (e) {
      post({ type: 'error', id: req.id, error: serializeError(e) });
    } finally {
      controllers.delete(req.id);
    }
  });
});

scope.addEventListener('unhandledrejection', (ev: PromiseRejectionEvent) => {
  ev.preventDefault();
  post({ type: 'error', id: NO_REQUEST, error: serializeError(ev.reason) });
});

type Progress = (p: RetrievalProgress) => void;

/** At most one progress event per interval, but always the one that completes a phase. */
function throttled(id: number): Progress {
  let last = 0;
  return (p) => {
    const now = performance.now();
    if (p.done < p.total && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    post({ type: 'progress', id, progress: p });
  };
}

async function serve(
  req: Exclude<RetrievalRequest, { type: 'cancel' }>,
  signal: AbortSignal,
  progress: Progress,
): Promise<RetrievalResultByType[keyof RetrievalResultByType]> {
  throwIfAborted(signal);
  switch (req.type) {
    case 'init-embedder':
      return initEmbedder(req.embedder, signal, progress);
    case 'embed': {
      const e = requireEmbedder();
      const vectors = await e.embed(req.texts, { signal, onProgress: (p) => progress({ phase: 'embed', ...p }) });
      return { vectors, dims: e.info.dims };
    }
    case 'open-index':
      return openIndex(req, signal, progress);
    case 'retrieve':
      if (!retriever) throw new InvalidInputError('No index is open: open one (open-index) before retrieving.');
      return retriever.retrieve(req.question, req.k, signal);
    case 'list-indexes':
      return listIndexes();
    case 'delete-index':
      return deleteIndex(req.key);
  }
}

function requireEmbedder(): Embedder {
  if (!embedder) throw new InvalidInputError('No embedder is loaded: send init-embedder first.');
  return embedder;
}

async function initEmbedder(spec: Extract<RetrievalRequest, { type: 'init-embedder' }>['embedder'], signal: AbortSignal, progress: Progress): Promise<EmbedderStatus> {
  retriever?.dispose();
  retriever = null;
  openKey = null;
  await embedder?.dispose();
  embedder = null;
  configureTransformers({
    allowRemoteModels: spec.allowRemoteModels,
    localModelPath: spec.localModelPath,
    remoteHost: spec.remoteHost,
    wasmPaths: absolute(ORT_WASM_PATHS),
  });
  const t0 = performance.now();
  embedder = await createEmbedder(
    {
      model: spec.model, dtype: spec.dtype, device: spec.device, batchSize: spec.batchSize,
      onDownload: (p) => progress({ phase: 'embedder', done: p.loaded, total: p.total, detail: p.file }),
    },
    signal,
  );
  return { info: embedder.info, device: embedder.device, loadMs: performance.now() - t0 };
}

/** onnxruntime-web resolves wasmPaths against its own module URL: make them absolute first. */
function absolute(paths: { mjs: string; wasm: string }): { mjs: string; wasm: string } {
  return { mjs: new URL(paths.mjs, scope.location.href).href, wasm: new URL(paths.wasm, scope.location.href).href };
}

/** One index per (corpus name, embedder model); characters OPFS or a key path would mind become '-'. */
function indexKey(corpusName: string, model: string): string {
  const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '-');
  return `${slug(corpusName)}__${slug(model)}`;
}

async function openStore(key: string): Promise<{ store: IndexStore; storage: StorageKind }> {
  if (await OpfsStore.available()) return { store: await OpfsStore.open(key), storage: 'opfs' };
  if (IdbStore.available()) return { store: new IdbStore(key), storage: 'indexeddb' };
  if (!memoryStores.has(key)) memoryStores.set(key, new MemoryStore());
  return { store: memoryStores.get(key)!, storage: 'memory' };
}

/** Corpus specs that name records to read (not an index). */
type CorpusFile = Exclude<CorpusSpec, { kind: 'stored' } | { kind: 'index-url' }>;

interface Corpus {
  name: string;
  records: CorpusRecord[];
  skipped: number;
  badLines: BadLine[];
}

async function readCorpus(spec: CorpusFile, req: OpenIndexRequest, signal: AbortSignal, progress: Progress): Promise<Corpus> {
  const jsonl = async (input: Parameters<typeof readJsonlCorpus>[0], name: string, total: number): Promise<Corpus> => {
    const r = await readJsonlCorpus(input, {
      onBadLine: req.onBadLine ?? 'skip',
      defaults: { source: name },
      signal,
      onProgress: (p) => progress({ phase: 'corpus', done: p.bytes, total: Math.max(total, p.bytes), detail: name }),
    });
    return { name, records: r.records, skipped: r.skipped, badLines: r.badLines };
  };
  switch (spec.kind) {
    case 'url': {
      const url = new URL(spec.url, scope.location.href);
      const res = await fetchOk(url.href, { signal });
      const name = spec.name ?? decodeURIComponent(url.pathname.split('/').pop() || url.href);
      return jsonl(res.body ?? new Uint8Array(await res.arrayBuffer()), name, Number(res.headers.get('content-length')) || 0);
    }
    case 'file':
      return jsonl(spec.file.stream(), spec.name ?? spec.file.name, spec.file.size);
    case 'text':
      return jsonl(spec.text, spec.name, spec.text.length);
    case 'finemed-dpo': {
      const r = await loadFineMedDpo({
        hub: spec.hub, revision: spec.revision, limit: spec.limit, signal,
        onProgress: (p) => progress({ phase: 'download', done: p.loadedBytes, total: Math.max(p.totalBytes, p.loadedBytes), detail: p.file }),
      });
      return { name: 'FineMed-DPO', records: r.records, skipped: r.skipped, badLines: r.badRows };
    }
  }
}

/** An index in memory, ready for a Retriever, and how it was obtained. */
interface Opened {
  data: IndexData;
  key: string;
  storage: StorageKind;
  previous: IndexInfo['previous'];
  staleReasons: string[];
  corpus: Pick<Corpus, 'skipped' | 'badLines'>;
  corpusMs: number;
}

const NO_BAD_LINES: Pick<Corpus, 'skipped' | 'badLines'> = { skipped: 0, badLines: [] };

/** The index stored earlier for this corpus name: offline, the corpus is not read again. */
async function openStored(name: string, e: Embedder): Promise<Opened> {
  const key = indexKey(name, e.info.model);
  const { store, storage } = await openStore(key);
  const data = await loadIndex(store, { embedder: e.info });
  return { data, key, storage, previous: 'fresh', staleReasons: [], corpus: NO_BAD_LINES, corpusMs: 0 };
}

/** An index built elsewhere (CLI), served over HTTP; a local copy makes it open offline next time. */
async function openFromUrl(url: string, name: string | undefined, e: Embedder, rebuild: boolean): Promise<Opened> {
  const remote = await loadIndex(new UrlStore(url), { embedder: e.info });
  const { manifest } = remote;
  const key = indexKey(name ?? manifest.corpus.name, e.info.model);
  const { store, storage } = await openStore(key);
  const status = await indexStatus(store, { corpusHash: manifest.corpus.hash, embedder: e.info });
  if (status.state !== 'fresh' || rebuild) {
    await saveIndex(store, {
      embedder: e.info, corpusName: manifest.corpus.name, corpusHash: manifest.corpus.hash,
      records: remote.records, vectors: remote.vectors, dtype: manifest.vectors.dtype,
    });
  }
  const staleReasons = status.state === 'stale' ? status.reasons : [];
  return { data: remote, key, storage, previous: status.state, staleReasons, corpus: NO_BAD_LINES, corpusMs: 0 };
}

/** Reads the corpus, then loads its stored index when fresh for this embedder, else (re)builds it. */
async function openFromCorpus(spec: CorpusFile, req: OpenIndexRequest, e: Embedder, signal: AbortSignal, progress: Progress): Promise<Opened> {
  const t0 = performance.now();
  const c = await readCorpus(spec, req, signal, progress);
  const corpusMs = performance.now() - t0;
  const key = indexKey(c.name, e.info.model);
  const { store, storage } = await openStore(key);
  const options = { corpusName: c.name, dtype: req.vectors, signal, onProgress: progress };
  if (req.rebuild) {
    const had = await readManifest(store).catch(() => null);
    const data = await buildIndex(store, c.records, e, options);
    return { data, key, storage, previous: had ? 'stale' : 'missing', staleReasons: had ? ['a rebuild was asked for'] : [], corpus: c, corpusMs };
  }
  const { data, previous } = await openOrBuildIndex(store, c.records, e, options);
  const staleReasons = previous.state === 'stale' ? previous.reasons : [];
  return { data, key, storage, previous: previous.state, staleReasons, corpus: c, corpusMs };
}

async function openIndex(req: OpenIndexRequest, signal: AbortSignal, progress: Progress): Promise<IndexInfo> {
  const e = requireEmbedder();
  const t0 = performance.now();
  const spec = req.corpus;
  const kind = req.index ?? 'voy';
  const o =
    spec.kind === 'stored' ? await openStored(spec.name, e)
    : spec.kind === 'index-url' ? await openFromUrl(spec.url, spec.name, e, req.rebuild ?? false)
    : await openFromCorpus(spec, req, e, signal, progress);
  throwIfAborted(signal);
  const t1 = performance.now();
  retriever?.dispose();
  retriever = null;
  openKey = null;
  retriever = await Retriever.create(o.data, e, {
    index: kind,
    voy: kind === 'voy' ? await loadVoy(new URL(voyWasmUrl, scope.location.href)) : undefined,
    signal,
    onProgress: (done, total) => progress({ phase: 'index', done, total }),
  });
  openKey = o.key;
  const t2 = performance.now();
  return {
    key: o.key, manifest: o.data.manifest, storage: o.storage, kind, previous: o.previous, staleReasons: o.staleReasons,
    skipped: o.corpus.skipped, badLines: o.corpus.badLines,
    timings: { corpusMs: o.corpusMs, buildMs: t1 - t0 - o.corpusMs, indexMs: t2 - t1, totalMs: t2 - t0 },
  };
}

async function listIndexes(): Promise<StoredIndex[]> {
  const out: StoredIndex[] = [];
  const opfs = await OpfsStore.available();
  const keys = opfs ? await OpfsStore.keys() : IdbStore.available() ? await IdbStore.keys() : [...memoryStores.keys()];
  for (const key of keys) {
    const { store, storage } = await openStore(key);
    const manifest = await readManifest(store).catch(() => null);
    const bytes = manifest ? manifest.vectors.bytes + manifest.records.bytes : 0;
    out.push({ key, storage, manifest, bytes });
  }
  return out;
}

async function deleteIndex(key: string): Promise<{ deleted: boolean }> {
  const existed = (await listIndexes()).some((i) => i.key === key);
  if (await OpfsStore.available()) await OpfsStore.remove(key);
  else if (IdbStore.available()) await new IdbStore(key).clear();
  else memoryStores.delete(key);
  if (openKey === key) {
    retriever?.dispose();
    retriever = null;
    openKey = null;
  }
  return { deleted: existed };
}

