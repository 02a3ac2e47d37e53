/**
 * One retrieval session: the embedder, the active corpus with its lexical (BM25) retriever, and
 * the embedding index over it. The worker serves it over postMessage; tests drive it in Node.
 *
 * Opening a corpus makes the lexical retriever ready first, at once; then, when an embedder is
 * loaded, the embedding index is loaded or built (resumably) while lexical retrieval already
 * answers. `retrieve` with 'auto' uses the embedding index when it is ready, else BM25, and says
 * which answered. The embedder is used by one caller at a time (builds give it up between
 * checkpoints), so a retrieval during a build waits at most one embedder batch.
 */
import { InvalidInputError, NotFoundError, throwIfAborted } from '../errors.ts';
import { buildIndex, openOrBuildIndex, type BuildProgress, type EmbedderLock } from './build.ts';
import { hashCorpus } from './corpus-hash.ts';
import { readCorpus, type Corpus, type CorpusFile } from './corpus-source.ts';
import { loadCorpus, readCorpusManifest, saveCorpus } from './corpus-store.ts';
import type { EmbedderSource } from './embedder-source.ts';
import { describeSource } from './embedder-source.ts';
import type { Embedder } from './embedder-types.ts';
import { estimateBuild } from './estimate.ts';
import { chooseIndexKind } from './index-kind.ts';
import { LexicalRetriever } from './lexical-retriever.ts';
import type { IndexManifest } from './manifest.ts';
import { readPartialMarker } from './partial-build.ts';
import { indexStatus, loadIndex, readManifest, saveIndex, type IndexData } from './persist.ts';
import type { CorpusRecord } from './record.ts';
import { Retriever, type RetrieveResult, type RetrieverKind } from './retriever.ts';
import type { IndexKind } from './search-types.ts';
import type {
  BuildEstimate, EmbedderSpec, EmbedderStatus, IndexInfo, OpenIndexOptions, RetrievalProgress, RetrievalStatus,
  RetrieverReadiness, StorageKind, StoredIndex,
} from './session-types.ts';
import type { IndexStore } from './store.ts';
import type { VoyApi } from './voy-wasm.ts';

/** What the session needs from where it runs (browser worker or Node). */
export interface SessionEnv {
  /** Opens (creating when needed) the store of `key`. */
  openStore(key: string): Promise<{ store: IndexStore; storage: StorageKind }>;
  /** Keys of every stored index and corpus. */
  listKeys(): Promise<string[]>;
  removeKey(key: string): Promise<void>;
  /** A read-only store over HTTP (index-url). */
  urlStore(url: string): IndexStore;
  loadVoy(): Promise<VoyApi>;
  /** Loads an embedder; `source` says where its files come from. */
  loadEmbedder(spec: EmbedderSpec, signal: AbortSignal | undefined, onProgress: (p: RetrievalProgress) => void): Promise<Embedder>;
  /** Relative URLs resolve against it (the worker's location). */
  baseUrl?: string;
}

export type RetrieverChoice = 'auto' | RetrieverKind;

type Progress = (p: RetrievalProgress) => void;

const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '-');

/**
 * Storage key of the embedding index of a corpus and an embedder model.
 * @example indexKey('demo-corpus.jsonl', 'Xenova/bge-base-en-v1.5'); // 'demo-corpus.jsonl__Xenova-bge-base-en-v1.5'
 */
export function indexKey(corpusName: string, model: string): string {
  return `${slug(corpusName)}__${slug(model)}`;
}

/**
 * Storage key of a corpus's records ('~' never occurs in indexKey's slugs, so the two never collide).
 * @example corpusKey('traces.jsonl'); // 'corpus~traces.jsonl'
 */
export function corpusKey(corpusName: string): string {
  return `corpus~${slug(corpusName)}`;
}

/**
 * The spec that loads an embedder again from where an index says it came from, cache only.
 * @example specFromSource({ kind: 'hub', hub: 'https://huggingface.co/', repo: 'Xenova/bge-base-en-v1.5', revision: 'main' }, 'fp32');
 */
export function specFromSource(source: EmbedderSource, dtype: string): EmbedderSpec {
  const d = (dtype === 'fp16' || dtype === 'q8' ? dtype : 'fp32') as EmbedderSpec['dtype'];
  if (source.kind === 'hub') return { model: source.repo, hub: source.hub, revision: source.revision, dtype: d, allowRemoteModels: false };
  const cut = source.path.replace(/\/+$/, '').lastIndexOf('/');
  return { model: source.path.slice(cut + 1), localModelPath: source.path.slice(0, cut + 1) || '/', dtype: d, allowRemoteModels: false };
}

/** Serialises embedder use: a build, a retrieval and an embed request never overlap. */
function createLock(): EmbedderLock & { idle(): Promise<void> } {
  let tail: Promise<unknown> = Promise.resolve();
  const lock = (<T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  }) as EmbedderLock & { idle(): Promise<void> };
  lock.idle = () => tail.then(() => {});
  return lock;
}

interface Active {
  name: string;
  key: string;
  hash: string;
  records: CorpusRecord[];
  lexical: LexicalRetriever;
  storage: StorageKind;
}

interface Vector {
  key: string;
  retriever: Retriever;
  kind: IndexKind;
  note?: string;
}

export class RetrievalSession {
  private embedder: Embedder | null = null;
  private embedderStatus: EmbedderStatus | null = null;
  private active: Active | null = null;
  private vector: Vector | null = null;
  private build: RetrievalStatus['build'] | undefined;
  private building = false;
  /** Last measured texts/s per embedder model+device (a build or a sample). */
  private readonly measured = new Map<string, number>();
  private readonly lock = createLock();
  private readonly listeners = new Set<(s: RetrievalStatus) => void>();

  constructor(private readonly env: SessionEnv) {}

  /** Called with the new status whenever readiness changes. Returns the unsubscribe function. */
  onStatus(listener: (s: RetrievalStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): RetrievalStatus {
    const retrievers = this.readiness();
    return {
      embedder: this.embedderStatus,
      corpus: this.active ? { name: this.active.name, count: this.active.records.length, key: this.active.key } : null,
      retrievers,
      auto: this.active ? (this.vector ? 'embedding' : 'lexical') : null,
      ...(this.build ? { build: { ...this.build } } : {}),
      ...(this.vector ? { index: { key: this.vector.key, kind: this.vector.kind, ...(this.vector.note ? { note: this.vector.note } : {}) } } : {}),
    };
  }

  private readiness(): RetrieverReadiness {
    return {
      lexical: this.active ? 'ready' : 'none',
      embedding: this.vector ? 'ready' : this.building ? 'building' : this.build && this.build.done > 0 ? 'partial' : 'none',
    };
  }

  private emit(): void {
    const s = this.status();
    for (const l of this.listeners) l(s);
  }

  /** Loads the embedder, replacing the loaded one. The active corpus stays open, lexical-only until the next open-index. */
  async initEmbedder(spec: EmbedderSpec, signal?: AbortSignal, progress: Progress = () => {}): Promise<EmbedderStatus> {
    await this.lock.idle();
    this.dropVector();
    const old = this.embedder;
    this.embedder = null;
    this.embedderStatus = null;
    this.emit();
    await old?.dispose();
    const t0 = performance.now();
    const e = await this.env.loadEmbedder(spec, signal, progress);
    this.embedder = e;
    this.embedderStatus = {
      info: e.info, device: e.device, loadMs: performance.now() - t0,
      ...(e.source ? { source: e.source } : {}), ...(e.fromCache !== undefined ? { fromCache: e.fromCache } : {}),
    };
    this.emit();
    return this.embedderStatus;
  }

  /** Unit vectors of `texts`, row-major [texts.length, dims]. */
  async embed(texts: string[], signal?: AbortSignal, progress: Progress = () => {}): Promise<{ vectors: Float32Array; dims: number }> {
    const e = this.requireEmbedder();
    const vectors = await this.lock(() => e.embed(texts, { signal, onProgress: (p) => progress({ phase: 'embed', ...p }) }));
    return { vectors, dims: e.info.dims };
  }

  private requireEmbedder(): Embedder {
    if (!this.embedder) throw new InvalidInputError('No embedder is loaded: send init-embedder first.');
    return this.embedder;
  }

  /**
   * The k best records for `question` from the active corpus. 'auto': the embedding index when
   * ready, else BM25; 'embedding' fails with InvalidInputError when it is not ready.
   */
  async retrieve(question: string, k = 5, choice: RetrieverChoice = 'auto', signal?: AbortSignal): Promise<RetrieveResult> {
    if (!this.active) throw new InvalidInputError('No index is open: open one (open-index) before retrieving.');
    if (choice !== 'auto' && choice !== 'lexical' && choice !== 'embedding') {
      throw new InvalidInputError(`Unknown retriever "${String(choice)}" (auto, lexical or embedding).`);
    }
    const vector = this.vector;
    if (choice === 'embedding' && !vector) {
      const why = this.building ? `it is being built (${this.build?.done ?? 0}/${this.build?.total ?? 0} embedded)`
        : this.embedder ? 'open the corpus again to build it' : 'no embedder is loaded';
      throw new InvalidInputError(`The embedding index of ${this.active.name} is not ready: ${why}. The lexical retriever is.`);
    }
    const corpus = this.active.name;
    const r = choice === 'lexical' || !vector ? await this.active.lexical.retrieve(question, k) : await vector.retriever.retrieve(question, k, signal, this.lock);
    return { ...r, corpus };
  }

  /** How long embedding `texts` (default: what the active corpus still needs) is expected to take on this embedder. */
  async estimate(o: { texts?: number; measure?: boolean; model?: string; device?: string } = {}, signal?: AbortSignal): Promise<BuildEstimate> {
    const e = this.embedder;
    const model = o.model ?? e?.info.model;
    if (!model) throw new InvalidInputError('No embedder is loaded: name the model to estimate for.');
    const device = o.device ?? e?.device ?? 'wasm';
    const remaining = this.active ? this.active.records.length - (this.build?.done ?? 0) : 0;
    const texts = o.texts ?? remaining;
    const mkey = `${model}|${device}`;
    if (o.measure && e && e.info.model === model && !this.measured.has(mkey)) {
      // A sample like the corpus: its own questions when there is one, else typical vignettes.
      const sample = (this.active?.records.slice(0, 32).map((r) => r.question) ?? []).filter((q) => q.trim() !== '');
      const texts32 = sample.length >= 8 ? sample : SAMPLE_QUESTIONS;
      await this.lock(() => e.embed(texts32.slice(0, 4), { signal })); // warm-up (kernels, shaders)
      const t0 = performance.now();
      await this.lock(() => e.embed(texts32, { signal }));
      this.measured.set(mkey, texts32.length / ((performance.now() - t0) / 1000));
    }
    return estimateBuild({ model, device, texts, measuredTextsPerSecond: this.measured.get(mkey) });
  }

  /** Opens a corpus: lexical retrieval first, then the embedding index (loaded, or built and stored). */
  async openIndex(req: OpenIndexOptions, signal?: AbortSignal, progress: Progress = () => {}): Promise<IndexInfo> {
    const t0 = performance.now();
    const spec = req.corpus;
    let corpus: Pick<Corpus, 'skipped' | 'badLines'> = { skipped: 0, badLines: [] };
    let name: string;
    let records: CorpusRecord[];
    let hash: string;
    let remote: IndexData | null = null;
    let storedVector: { store: IndexStore; manifest: IndexManifest } | null = null;

    if (spec.kind === 'stored') {
      ({ name, records, hash, storedVector } = await this.readStored(spec.name));
    } else if (spec.kind === 'index-url') {
      remote = await loadIndex(this.env.urlStore(this.resolve(spec.url)));
      name = spec.name ?? remote.manifest.corpus.name;
      records = remote.records;
      hash = remote.manifest.corpus.hash;
    } else {
      const c = await readCorpus(spec as CorpusFile, { onBadLine: req.onBadLine, baseUrl: this.env.baseUrl, signal, onProgress: progress });
      ({ name, records } = c);
      corpus = c;
      hash = await hashCorpus(records);
    }
    throwIfAborted(signal);
    const corpusMs = performance.now() - t0;

    // 1. Lexical: ready before any embedding work, and the corpus is stored for offline reopening.
    const t1 = performance.now();
    const ckey = corpusKey(name);
    const { store: cstore, storage } = await this.env.openStore(ckey);
    const lexical = await LexicalRetriever.create(records, { signal, onProgress: (done, total) => progress({ phase: 'lexical', done, total }) });
    throwIfAborted(signal);
    this.dropVector();
    this.active = { name, key: ckey, hash, records, lexical, storage };
    this.build = undefined;
    const partial = await this.partialFor(name, hash);
    if (partial) this.build = { done: partial.done, total: partial.total, resumedFrom: partial.resumedFrom };
    this.emit();
    const lexicalMs = performance.now() - t1;
    // Stored after lexical retrieval is ready: writing 100+ MB of records takes a while.
    if (spec.kind !== 'stored' || !(await readCorpusManifest(cstore).catch(() => null))) await saveCorpus(cstore, name, records, hash);

    const info: IndexInfo = {
      corpus: { name, count: records.length, hash, key: ckey }, key: null, manifest: null, storage, kind: null,
      retrievers: this.readiness(), previous: 'missing', staleReasons: [], resumedFrom: 0,
      skipped: corpus.skipped, badLines: corpus.badLines,
      timings: { corpusMs, lexicalMs, buildMs: 0, indexMs: 0, totalMs: 0 },
    };
    const finish = (): IndexInfo => {
      info.retrievers = this.readiness();
      info.timings.totalMs = performance.now() - t0;
      return info;
    };
    if (req.embeddings === 'none') return finish();

    // 2. The embedder: the loaded one, or (stored / index-url) the one the index was built with, from the cache.
    if (!this.embedder && (spec.kind === 'stored' || spec.kind === 'index-url') && (req.reopenEmbedder ?? true)) {
      const named = remote?.manifest ?? storedVector?.manifest ?? null;
      const source = named?.embedderSource ?? partial?.source;
      if (source) {
        try {
          await this.initEmbedder(specFromSource(source, named?.embedder.dtype ?? partial?.dtype ?? 'fp32'), signal, progress);
        } catch (e) {
          throwIfAborted(signal);
          info.embedderNote = `The embedder ${describeSource(source)} could not be loaded from the cache (${(e as Error).message}); lexical retrieval only.`;
          return finish();
        }
      }
    }
    const e = this.embedder;
    if (!e) {
      info.embedderNote = 'No embedder is loaded: lexical retrieval only. Load one and open the corpus again to build the embedding index.';
      return finish();
    }

    // 3. The embedding index: loaded when fresh, else built (resuming a partial build).
    const t2 = performance.now();
    const key = indexKey(name, e.info.model);
    const { store } = await this.env.openStore(key);
    let data: IndexData;
    const onBuild = (p: BuildProgress): void => {
      if (p.phase === 'embed') {
        this.build = { done: p.done, total: p.total, resumedFrom: p.resumedFrom ?? 0, textsPerSecond: p.textsPerSecond, etaMs: p.etaMs };
        if (p.textsPerSecond) this.measured.set(`${e.info.model}|${e.device}`, p.textsPerSecond);
        if (!this.building) {
          this.building = true;
          this.emit();
        }
      }
      progress(p);
    };
    const options = {
      corpusName: name, corpusHash: hash, dtype: req.vectors, signal, onProgress: onBuild, lock: this.lock,
      resume: (req.resume ?? true) && !req.rebuild, checkpointRows: req.checkpointRows,
    };
    try {
      if (remote && !req.rebuild && indexStatusMatches(remote.manifest, e)) {
        const status = await indexStatus(store, { corpusHash: hash, embedder: e.info });
        if (status.state !== 'fresh') {
          await saveIndex(store, {
            embedder: e.info, corpusName: remote.manifest.corpus.name, corpusHash: hash, records, vectors: remote.vectors,
            dtype: remote.manifest.vectors.dtype, embedderSource: remote.manifest.embedderSource ?? e.source,
          });
        }
        data = remote;
        info.previous = status.state;
        info.staleReasons = status.state === 'stale' ? status.reasons : [];
      } else if (req.rebuild) {
        const had = await readManifest(store).catch(() => null);
        data = await buildIndex(store, records, e, options);
        info.previous = had ? 'stale' : 'missing';
        info.staleReasons = had ? ['a rebuild was asked for'] : [];
      } else {
        const r = await openOrBuildIndex(store, records, e, options);
        data = r.data;
        info.previous = r.previous.state;
        info.staleReasons = r.previous.state === 'stale' ? r.previous.reasons : [];
      }
    } catch (err) {
      this.building = false;
      const left = await this.partialFor(name, hash).catch(() => null);
      this.build = left ? { done: left.done, total: left.total, resumedFrom: left.resumedFrom } : undefined;
      this.emit();
      throw err;
    }
    this.building = false;
    info.resumedFrom = data.manifest.build?.resumedFrom ?? 0;
    if (info.previous === 'fresh') info.resumedFrom = 0;
    throwIfAborted(signal);
    const t3 = performance.now();

    // 4. The vector index in memory: voy up to 768 dims, exact above (voy refuses them).
    const chosen = chooseIndexKind(req.index ?? 'auto', data.manifest.vectors.dims);
    const retriever = await Retriever.create(data, e, {
      index: chosen.kind,
      voy: chosen.kind === 'voy' ? await this.env.loadVoy() : undefined,
      signal,
      onProgress: (done, total) => progress({ phase: 'index', done, total }),
    });
    if (this.active?.key !== ckey || this.embedder !== e) {
      retriever.dispose(); // another corpus or embedder took over meanwhile
    } else {
      this.vector = { key, retriever, kind: chosen.kind, ...(chosen.note ? { note: chosen.note } : {}) };
      this.build = undefined;
    }
    this.emit();
    Object.assign(info, { key, manifest: data.manifest, kind: chosen.kind, ...(chosen.note ? { kindNote: chosen.note } : {}) });
    info.timings.buildMs = t3 - t2;
    info.timings.indexMs = performance.now() - t3;
    return finish();
  }

  /** A stored corpus by name: its records (corpus store, else an embedding index of it), and its freshest embedding index. */
  private async readStored(name: string): Promise<{ name: string; records: CorpusRecord[]; hash: string; storedVector: { store: IndexStore; manifest: IndexManifest } | null }> {
    const { store } = await this.env.openStore(corpusKey(name));
    const stored = await loadCorpus(store);
    const prefix = `${slug(name)}__`;
    const want = this.embedder ? indexKey(name, this.embedder.info.model) : null;
    let best: { store: IndexStore; manifest: IndexManifest } | null = null;
    for (const key of (await this.env.listKeys()).filter((k) => k.startsWith(prefix))) {
      const s = (await this.env.openStore(key)).store;
      const m = await readManifest(s).catch(() => null);
      if (!m || (stored && m.corpus.hash !== stored.manifest.hash)) continue;
      if (key === want) {
        best = { store: s, manifest: m };
        break;
      }
      if (!want && (!best || m.createdAt > best.manifest.createdAt)) best = { store: s, manifest: m };
    }
    if (stored) return { name, records: stored.records, hash: stored.manifest.hash, storedVector: best };
    if (best) {
      // An index stored before corpora were stored on their own: its records serve.
      const data = await loadIndex(best.store);
      return { name, records: data.records, hash: data.manifest.corpus.hash, storedVector: best };
    }
    throw new NotFoundError(`No stored corpus named "${name}": import or download it first.`);
  }

  /** The partial build stored for this corpus (with the loaded embedder, or any), for status. */
  private async partialFor(name: string, hash: string): Promise<(NonNullable<RetrievalStatus['build']> & { source?: EmbedderSource; dtype: string }) | null> {
    const keys = this.embedder ? [indexKey(name, this.embedder.info.model)] : (await this.env.listKeys()).filter((k) => k.startsWith(`${slug(name)}__`));
    for (const key of keys) {
      const m = await readPartialMarker((await this.env.openStore(key)).store);
      if (m && m.corpusHash === hash && m.done > 0) {
        return { done: m.done, total: m.count, resumedFrom: m.done, dtype: m.embedder.dtype, ...(m.embedderSource ? { source: m.embedderSource } : {}) };
      }
    }
    return null;
  }

  async listIndexes(): Promise<StoredIndex[]> {
    const out: StoredIndex[] = [];
    for (const key of await this.env.listKeys()) {
      const { store, storage } = await this.env.openStore(key);
      if (key.startsWith('corpus~')) {
        const corpus = await readCorpusManifest(store).catch(() => null);
        out.push({ key, type: 'corpus', storage, manifest: null, corpus, bytes: corpus?.bytes ?? 0 });
        continue;
      }
      const manifest = await readManifest(store).catch(() => null);
      const m = manifest ? null : await readPartialMarker(store);
      const partial = m ? { done: m.done, total: m.count, model: m.embedder.model, corpusName: m.corpusName } : undefined;
      const bytes = manifest ? manifest.vectors.bytes + manifest.records.bytes : m ? m.done * m.embedder.dims * 4 : 0;
      out.push({ key, type: 'embedding', storage, manifest, ...(partial ? { partial } : {}), bytes });
    }
    return out;
  }

  async deleteIndex(key: string): Promise<{ deleted: boolean }> {
    const existed = (await this.env.listKeys()).includes(key);
    await this.env.removeKey(key);
    if (this.vector?.key === key) this.dropVector();
    if (this.active?.key === key) {
      this.dropVector();
      this.active = null;
      this.build = undefined;
    }
    this.emit();
    return { deleted: existed };
  }

  private dropVector(): void {
    this.vector?.retriever.dispose();
    this.vector = null;
  }

  private resolve(url: string): string {
    return this.env.baseUrl ? new URL(url, this.env.baseUrl).href : url;
  }
}

/** The remote index was embedded by this embedder (same model, dims, dtype, pooling). */
function indexStatusMatches(manifest: IndexManifest, e: Embedder): boolean {
  const a = manifest.embedder;
  const b = e.info;
  return a.model === b.model && a.dims === b.dims && a.dtype === b.dtype && a.pooling === b.pooling && a.normalize === b.normalize;
}

/** Typical clinical questions, for measuring throughput when no corpus is open. */
const SAMPLE_QUESTIONS = [
  'A 58-year-old man has crushing chest pain radiating to the left arm, diaphoresis and ST elevation in V1-V4. What is the next step?',
  'A 24-year-old woman has fever, neck stiffness, photophobia and a petechial rash. What is the most likely diagnosis?',
  'Why does prolonged vomiting cause hypokalaemia and metabolic alkalosis?',
  'A 70-year-old smoker has painless jaundice, weight loss and a palpable gallbladder. What should be suspected?',
  'A child has a barking cough, inspiratory stridor and low-grade fever. What is the first-line treatment?',
  'A 35-year-old woman has heat intolerance, weight loss, tremor and a diffusely enlarged non-tender thyroid. What is the diagnosis?',
  'A patient on lithium develops polyuria and polydipsia with dilute urine. Which mechanism explains it?',
  'A 65-year-old man has sudden painless loss of vision in one eye with a cherry-red spot at the macula. What happened?',
];
