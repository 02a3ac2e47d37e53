/**
 * "Load models": the language model into the LLM worker (from the weight cache when it has it,
 * else downloaded and quantized once), the embedder into the retrieval worker, then the active
 * corpus' index. And "Import traces (JSONL)": a user's corpus indexed and made the active one.
 */
import type { LoadProgress } from '../../workers/protocol.ts';
import type { RetrievalProgress } from '../../workers/retrieval-protocol.ts';
import { RateMeter } from '../progress-rate.ts';
import { patch, toUiError, useApp, type ProgressView } from '../store.ts';
import { CORPORA } from '../catalog.ts';
import { useSettings, type ActiveCorpus } from '../settings-store.ts';
import { llmClient, retrievalClient } from './clients.ts';
import { repoUrl, resolveHub } from './hub.ts';

/** Retrieval calls in flight, so Cancel can stop them without killing the worker. */
const inflight = new Set<{ cancel(): void }>();

async function tracked<T>(call: Promise<T> & { cancel(): void }): Promise<T> {
  inflight.add(call);
  try {
    return await call;
  } finally {
    inflight.delete(call);
  }
}

const LLM_PHASES: Record<LoadProgress['phase'], string> = {
  config: 'Reading config.json',
  tokenizer: 'Loading the tokenizer',
  weights: 'Loading weights',
  ready: 'Loaded',
};

/** Turns a stream of progress events into ProgressViews with a rate. */
function progressViews(unit: ProgressView['unit']): (label: string, done: number, total: number, detail?: string) => ProgressView {
  const meter = new RateMeter();
  let lastLabel = '';
  return (label, done, total, detail) => {
    if (label !== lastLabel) meter.reset();
    lastLabel = label;
    return { label, done, total, rate: meter.add(done), unit, detail };
  };
}

/** Files of the model folder the user picked ("Model folder"): used instead of the hub while set. */
let pickedFolder: File[] = [];

/** A picked model folder (input with webkitdirectory), or [] to go back to the hub. */
export function pickModelFolder(files: File[]): void {
  pickedFolder = files;
  const first = files[0]?.webkitRelativePath ?? '';
  patch('llm', {
    folder: files.length ? { name: first.includes('/') ? first.slice(0, first.indexOf('/')) : 'selected files', files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) } : null,
  });
}

async function loadLlm(hub: string): Promise<void> {
  const s = useSettings.getState();
  const view = progressViews('bytes');
  patch('llm', { status: 'loading', progress: null, phase: null, error: null });
  const source = pickedFolder.length ? { kind: 'files' as const, files: pickedFolder } : { kind: 'url' as const, url: repoUrl(hub, s.llmRepo) };
  try {
    const info = await llmClient().load(source, { backend: s.backend, weights: s.weights }, (p) => {
      const from = p.from === 'cache' ? ' from this device' : '';
      const where = [p.file, p.tensor].filter(Boolean).join(' · ');
      const retry = p.retry ? ` · connection problem (${p.retry.reason}); retrying, attempt ${p.retry.attempt + 1} of ${p.retry.tries}, in ${(p.retry.delayMs / 1000).toFixed(1)} s` : '';
      patch('llm', { phase: p.phase, progress: view(`${LLM_PHASES[p.phase]}${p.phase === 'weights' ? from : ''}${retry}`, p.loadedBytes, p.totalBytes, where || undefined) });
    });
    patch('llm', { status: 'loaded', info, progress: null });
  } catch (e) {
    const error = toUiError(e);
    // A failed load before the old model was released (e.g. a corrupt cache, found before the old
    // model is disposed) leaves that model in the worker: keep using it, and say what failed.
    const still = await llmClient().info().catch(() => null);
    patch('llm', {
      status: still ? 'loaded' : error.code === 'aborted' ? 'idle' : 'error',
      info: still,
      error: error.code === 'aborted' ? null : error,
      progress: null,
    });
  }
}

async function loadEmbedder(hub: string): Promise<boolean> {
  const s = useSettings.getState();
  const view = progressViews('bytes');
  patch('embedder', { status: 'loading', progress: null, error: null, info: null });
  try {
    const info = await tracked(retrievalClient().initEmbedder(
      { model: s.embedderRepo, allowRemoteModels: true, hub: `${hub}/` },
      (p: RetrievalProgress) => patch('embedder', { progress: view('Downloading the embedder', p.done, p.total, p.detail) }),
    ));
    patch('embedder', { status: 'loaded', info, progress: null });
    return true;
  } catch (e) {
    const error = toUiError(e);
    patch('embedder', { status: error.code === 'aborted' ? 'idle' : 'error', error: error.code === 'aborted' ? null : error, progress: null });
    return false;
  }
}

/**
 * Loads both models (in parallel: they live in different workers), then the active corpus. The
 * corpus opens even when the embedder could not be loaded: keyword search (BM25) serves then.
 */
export async function loadModels(): Promise<void> {
  const st = useApp.getState();
  if (st.llm.status === 'loading' || st.embedder.status === 'loading') return;
  watchRetrievers();
  // Gigabytes are about to be cached: ask the browser not to evict them under storage pressure
  // (Chrome decides silently; the storage panel shows the answer and can ask again).
  void navigator.storage?.persist?.().catch(() => false);
  const hub = await resolveHub(useSettings.getState().hub);
  await Promise.all([loadLlm(hub), loadEmbedder(hub)]);
  await openActiveCorpus();
}

let watching = false;

/** Mirrors the retrieval worker's readiness (keyword search at once, embeddings when built) into the store. */
function watchRetrievers(): void {
  if (watching) return;
  watching = true;
  retrievalClient().onStatus((status) => patch('corpus', { retrievers: status.retrievers }));
}

const CORPUS_PHASES: Record<string, string> = {
  corpus: 'Reading the corpus',
  download: 'Downloading the corpus',
  embed: 'Embedding the questions',
  index: 'Building the search index',
};

function corpusProgress(): (p: RetrievalProgress) => void {
  const view = progressViews('items');
  const bytes = progressViews('bytes');
  return (p) => {
    const label = CORPUS_PHASES[p.phase] ?? 'Indexing';
    patch('corpus', { progress: (p.phase === 'corpus' || p.phase === 'download' ? bytes : view)(label, p.done, p.total, p.detail) });
  };
}

/** What to open for the active corpus: FineMed-DPO downloads from the hub the first time, then is stored. */
function corpusSpec(active: ActiveCorpus, hub: string) {
  switch (active.kind) {
    case 'demo': return { spec: { kind: 'url' as const, url: DEMO_CORPUS_PATH, name: 'demo-corpus.jsonl' }, name: 'demo-corpus.jsonl' };
    case 'finemed-dpo': return { spec: { kind: 'finemed-dpo' as const, hub }, name: 'FineMed-DPO' };
    case 'stored': return { spec: { kind: 'stored' as const, name: active.name }, name: active.name };
  }
}

const DEMO_CORPUS_PATH = 'demo/demo-corpus.jsonl';

/**
 * Opens the active corpus (the demo corpus by default), building its index if it is missing or
 * stale; keyword search serves as soon as the records are read. An embedding build that is cut
 * short (Cancel, a closed tab) resumes from its last saved batch on the next open.
 */
export async function openActiveCorpus(): Promise<void> {
  watchRetrievers();
  const active = useSettings.getState().corpus;
  const { spec, name } = corpusSpec(active, `${await resolveHub(useSettings.getState().hub, { probe: false })}/`);
  patch('corpus', { status: 'opening', name, progress: null, error: null, retrievers: null });
  try {
    const info = await tracked(retrievalClient().openIndex({ corpus: spec }, corpusProgress()));
    // Downloaded once: from now on it opens from this device.
    if (active.kind === 'finemed-dpo') useSettings.setState({ corpus: { kind: 'stored', name: info.corpus.name } });
    patch('corpus', { status: 'ready', info, progress: null, name: info.corpus.name, retrievers: info.retrievers });
  } catch (e) {
    const error = toUiError(e);
    // A stored corpus that is gone: fall back to the demo corpus rather than leave TTT off.
    if (active.kind === 'stored' && error.code === 'not-found') {
      useSettings.setState({ corpus: { kind: 'demo' } });
      return openActiveCorpus();
    }
    patch('corpus', { status: error.code === 'aborted' ? 'none' : 'error', error: error.code === 'aborted' ? null : error, progress: null });
  }
}

/** Switches the active corpus and opens it. */
export async function chooseCorpus(corpus: ActiveCorpus): Promise<void> {
  useSettings.setState({ corpus });
  patch('corpus', { estimate: null });
  if (corpus.kind === 'finemed-dpo') await estimateCorpus(FINEMED_DPO_RECORDS);
  else await openActiveCorpus();
}

const FINEMED_DPO_RECORDS = CORPORA.find((c) => c.id === 'finemed-dpo')!.records;

/** How long embedding `texts` questions takes here: measured on this device when the embedder is loaded. */
export async function estimateCorpus(texts: number): Promise<void> {
  try {
    const loaded = useApp.getState().embedder.status === 'loaded';
    const estimate = await retrievalClient().estimate({ texts, measure: loaded, ...(loaded ? {} : { model: useSettings.getState().embedderRepo }) });
    patch('corpus', { estimate });
  } catch (e) {
    console.warn('No indexing estimate:', e);
  }
}

/**
 * "Import traces (JSONL)": indexes the file (keyword search at once, embeddings when an embedder
 * is loaded) and makes it the active corpus; bad lines are reported with their line numbers.
 */
export async function importTraces(file: File): Promise<void> {
  watchRetrievers();
  patch('corpus', { status: 'opening', name: file.name, progress: null, error: null, retrievers: null });
  try {
    const info = await tracked(retrievalClient().openIndex({ corpus: { kind: 'file', file, name: file.name } }, corpusProgress()));
    useSettings.setState({ corpus: { kind: 'stored', name: info.corpus.name } });
    patch('corpus', { status: 'ready', info, progress: null, name: info.corpus.name, retrievers: info.retrievers });
  } catch (e) {
    const error = toUiError(e);
    patch('corpus', { status: error.code === 'aborted' ? 'none' : 'error', error: error.code === 'aborted' ? null : error, progress: null });
  }
}

/** Cancels model loading and indexing in flight. */
export function cancelLoading(): void {
  llmClient().cancel();
  for (const call of inflight) call.cancel();
}
