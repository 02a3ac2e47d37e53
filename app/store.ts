/**
 * The UI state: plain, serialisable values only (no File objects, no clients, no tensors), so it
 * can be inspected, persisted or reset freely. Side effects live in ./actions.ts.
 */
import { create } from 'zustand';
import type { Backend, GenerateTimings, LoadProgress, ModelInfo, WeightFormat, WorkerGenerateResult } from '../workers/protocol.ts';

export type SourceKind = 'url' | 'folder';
export type SamplingMode = 'greedy' | 'sample';
export type LoadStatus = 'idle' | 'loading' | 'ready' | 'error';
export type GenerateStatus = 'idle' | 'running' | 'done' | 'stopped' | 'error';

/** An error as the UI shows it: the engine's stable code plus its message. */
export interface UiError {
  code: string;
  message: string;
}

/** What the user picked with the folder input, summarised; the Files stay in actions.ts. */
export interface FolderSummary {
  name: string;
  files: number;
  bytes: number;
}

export interface AppState {
  sourceKind: SourceKind;
  url: string;
  folder: FolderSummary | null;
  backend: Backend;
  weights: WeightFormat;
  loadStatus: LoadStatus;
  progress: LoadProgress | null;
  model: ModelInfo | null;
  loadError: UiError | null;

  prompt: string;
  chat: boolean;
  system: string;
  maxNewTokens: number;
  samplingMode: SamplingMode;
  temperature: number;
  topP: number;
  seed: number;

  genStatus: GenerateStatus;
  output: string;
  tokensGenerated: number;
  timings: GenerateTimings | null;
  stopReason: WorkerGenerateResult['stopReason'] | null;
  genError: UiError | null;
}

/** The golden tiny model is the obvious thing to try in development; production starts empty. */
const DEFAULT_URL = import.meta.env.DEV ? '/shared/golden/stories260K-hf/f32/' : '';

export const initialState: AppState = {
  sourceKind: 'url',
  url: DEFAULT_URL,
  folder: null,
  backend: typeof navigator !== 'undefined' && 'gpu' in navigator ? 'webgpu' : 'cpu',
  weights: 'q4',
  loadStatus: 'idle',
  progress: null,
  model: null,
  loadError: null,

  prompt: '',
  chat: false,
  system: '',
  maxNewTokens: 256,
  samplingMode: 'greedy',
  temperature: 0.7,
  topP: 0.9,
  seed: 42,

  genStatus: 'idle',
  output: '',
  tokensGenerated: 0,
  timings: null,
  stopReason: null,
  genError: null,
};

export const useApp = create<AppState>()(() => ({ ...initialState }));

/** Shorthand for form fields: `setField('url', value)`. */
export function setField<K extends keyof AppState>(key: K, value: AppState[K]): void {
  useApp.setState({ [key]: value } as Pick<AppState, K>);
}
