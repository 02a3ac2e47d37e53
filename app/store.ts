/**
 * The UI state: plain, serialisable values only (no clients, no Files, no tensors). Side effects
 * live in app/actions/*.ts, which write here; components read here. Settings that outlive the
 * page are in ./settings-store.ts, the history in IndexedDB (./history/db.ts).
 */
import { create } from 'zustand';
import type { AskRecord, AskStage, RetrievalSummary, Run } from '../workers/ask-session.ts';
import type { CachedModelInfo, LoadProgress, ModelInfo } from '../workers/protocol.ts';
import type { BuildEstimate, EmbedderCacheState, EmbedderStatus, IndexInfo, RetrieverReadiness, StoredIndex } from '../workers/retrieval-protocol.ts';
import type { EvalLogLine, EvalModes, EvalProgress, EvalSummary } from '../workers/eval-session.ts';
import type { HistoryEntry } from './history/entry.ts';

/** An error as the UI shows it: the engine's stable code plus its message. */
export interface UiError {
  code: string;
  message: string;
}

/** Bytes over time, for speed and ETA. */
export interface ProgressView {
  label: string;
  done: number;
  total: number;
  /** Bytes (or items) per second over the last few seconds; null until measurable. */
  rate: number | null;
  unit: 'bytes' | 'items';
  detail?: string;
}

export type LoadStatus = 'idle' | 'loading' | 'loaded' | 'error';

/** A model folder the user picked (its Files stay in app/actions/models.ts: not serialisable). */
export interface FolderSummary {
  name: string;
  files: number;
  bytes: number;
}

export interface LlmState {
  /** Load from this picked folder instead of the hub. */
  folder: FolderSummary | null;
  status: LoadStatus;
  progress: ProgressView | null;
  phase: LoadProgress['phase'] | null;
  info: ModelInfo | null;
  error: UiError | null;
}

export interface EmbedderState {
  status: LoadStatus;
  progress: ProgressView | null;
  info: EmbedderStatus | null;
  error: UiError | null;
}

export interface CorpusState {
  status: 'none' | 'opening' | 'ready' | 'error';
  /** Corpus name (file name, 'demo-corpus.jsonl', 'FineMed-DPO'). */
  name: string | null;
  progress: ProgressView | null;
  info: IndexInfo | null;
  /** Which retrievers can answer now: keyword search is ready at once, embeddings once built. */
  retrievers: RetrieverReadiness | null;
  /** How long embedding the chosen corpus would take here (FineMed-DPO: minutes on a GPU, hours on WASM). */
  estimate: BuildEstimate | null;
  error: UiError | null;
}

export interface TrainStep {
  step: number;
  steps: number;
  loss: number;
  ms: number;
}

/** One answer column as it streams in. */
export interface RunView {
  stage: AskStage | 'waiting' | 'done' | 'stopped' | 'error';
  /** The model's text so far. */
  text: string;
  tokens: number;
  steps: TrainStep[];
  stepsPlanned: number;
  retrieval: RetrievalSummary | null;
  prompt: AskRecord['prompt'] | null;
  restored: boolean;
  /** performance.now() of the generate stage's start and of the first token (tokens/s while streaming). */
  answerStartedAt: number | null;
  firstTokenAt: number | null;
  record: AskRecord | null;
}

export interface AskState {
  status: 'idle' | 'running' | 'done' | 'stopped' | 'error';
  question: string;
  mode: 'single' | 'compare';
  runs: Partial<Record<Run, RunView>>;
  /** Compare mode: the two answers' texts differ. */
  differ: boolean | null;
  error: UiError | null;
  /** History entry shown (the last answer, or one opened from the history). */
  entryId: string | null;
}

export interface AppState {
  llm: LlmState;
  embedder: EmbedderState;
  corpus: CorpusState;
  ask: AskState;
  /** The question being typed. */
  draft: string;
  /** The TTT switch; null = follow the default (on once a corpus is ready). */
  tttChoice: boolean | null;
  compare: boolean;
  /** Saved questions, newest first (loaded from IndexedDB). */
  history: HistoryEntry[];
  storage: StorageState;
  evaluation: EvaluationState;
}

/** The Evaluate view: a multiple-choice run through the same pipeline, with and without TTT. */
export interface EvaluationState {
  status: 'idle' | 'running' | 'done' | 'stopped' | 'error';
  /** The questions file picked: its name and what it holds. */
  file: { name: string; items: number; benchmarks: Record<string, number>; skippedLines: number } | null;
  modes: EvalModes;
  /** Items to run: all (0), or the first N. */
  limit: number;
  /** 0: in file order; else N items drawn with `seed`. */
  sample: number;
  seed: number;
  progress: EvalProgress | null;
  summary: EvalSummary | null;
  /** The run's log so far (newest last). */
  lines: EvalLogLine[];
  /** Answers found in the stored log when the run started (resumed). */
  resumed: number;
  error: UiError | null;
}

/** What this origin keeps on the device (OPFS, IndexedDB, Cache API) and how much room is left. */
export interface StorageState {
  /** The listing has been read once (before that, nothing is known). */
  read: boolean;
  /** navigator.storage.estimate(); null until read (or where unsupported). */
  usage: number | null;
  quota: number | null;
  /** navigator.storage.persisted(): the browser will not evict the data under pressure. */
  persisted: boolean | null;
  models: CachedModelInfo[];
  indexes: StoredIndex[];
  /** The chosen embedder's files in the browser cache. */
  embedder: EmbedderCacheState | null;
  error: UiError | null;
}

export const initialAsk: AskState = { status: 'idle', question: '', mode: 'single', runs: {}, differ: null, error: null, entryId: null };

export const initialState: AppState = {
  llm: { folder: null, status: 'idle', progress: null, phase: null, info: null, error: null },
  embedder: { status: 'idle', progress: null, info: null, error: null },
  corpus: { status: 'none', name: null, progress: null, info: null, retrievers: null, estimate: null, error: null },
  ask: initialAsk,
  draft: '',
  tttChoice: null,
  compare: false,
  history: [],
  storage: { read: false, usage: null, quota: null, persisted: null, models: [], indexes: [], embedder: null, error: null },
  evaluation: { status: 'idle', file: null, modes: 'both', limit: 20, sample: 0, seed: 1, progress: null, summary: null, lines: [], resumed: 0, error: null },
};

export const useApp = create<AppState>()(() => structuredClone(initialState));

export function emptyRun(): RunView {
  return {
    stage: 'waiting', text: '', tokens: 0, steps: [], stepsPlanned: 0, retrieval: null, prompt: null, restored: false,
    answerStartedAt: null, firstTokenAt: null, record: null,
  };
}

/** Shallow-merges `patch` into one slice. */
export function patch<K extends 'llm' | 'embedder' | 'corpus' | 'ask' | 'storage' | 'evaluation'>(key: K, value: Partial<AppState[K]>): void {
  useApp.setState((s) => ({ [key]: { ...s[key], ...value } }) as Pick<AppState, K>);
}

export function patchRun(run: Run, value: Partial<RunView>): void {
  useApp.setState((s) => ({ ask: { ...s.ask, runs: { ...s.ask.runs, [run]: { ...(s.ask.runs[run] ?? emptyRun()), ...value } } } }));
}

/** A corpus can be retrieved from: indexed, or at least searchable by keywords while its embeddings build. */
export function corpusUsable(s: Pick<AppState, 'corpus'>): boolean {
  return s.corpus.status === 'ready' || s.corpus.retrievers?.lexical === 'ready';
}

/** The TTT switch's value: the user's choice, else on exactly when a corpus is usable. */
export function tttOn(s: Pick<AppState, 'tttChoice' | 'corpus'>): boolean {
  return corpusUsable(s) && (s.tttChoice ?? true);
}

/** Both models loaded: the app can answer. */
export function modelsReady(s: Pick<AppState, 'llm' | 'embedder'>): boolean {
  return s.llm.status === 'loaded' && s.embedder.status === 'loaded';
}

export function toUiError(e: unknown): UiError {
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'internal';
  const message = e instanceof Error ? e.message : String(e);
  return { code, message };
}
