/**
 * Settings that survive a reload (localStorage through zustand's persist): the question settings
 * (steps, lr, rank, ... see AskSettings), which models to use and from which hub, and the active
 * corpus. The query string (?model=&embedder=&weights=&backend=&hub=) preselects models on top.
 */
import { create } from 'zustand';
import { createJSONStorage, persist } from 'zustand/middleware';
import { ASK_DEFAULTS, ASK_PRESETS, type AskPreset, type AskSettings } from '../workers/ask-session.ts';
import type { Backend, WeightFormat } from '../workers/protocol.ts';
import { DEFAULT_EMBEDDER, DEFAULT_LLM } from './catalog.ts';

export type QuestionSettings = Omit<AskSettings, 'ttt'>;

/** 'auto': the origin's local hub (/hub/) when it runs one, else huggingface.co. */
export type HubChoice = 'auto' | string;

/** The corpus TTT retrieves from: the shipped demo corpus, FineMed-DPO (downloaded and indexed here), or a stored import. */
export type ActiveCorpus = { kind: 'demo' } | { kind: 'finemed-dpo' } | { kind: 'stored'; name: string };

export interface SettingsState {
  question: QuestionSettings;
  llmRepo: string;
  embedderRepo: string;
  weights: WeightFormat;
  backend: Backend;
  hub: HubChoice;
  corpus: ActiveCorpus;
}

const { ttt: _ttt, ...QUESTION_DEFAULTS } = ASK_DEFAULTS;

export const DEFAULT_SETTINGS: SettingsState = {
  question: { ...QUESTION_DEFAULTS, targets: [...QUESTION_DEFAULTS.targets] },
  llmRepo: DEFAULT_LLM,
  embedderRepo: DEFAULT_EMBEDDER,
  weights: 'q4',
  backend: typeof navigator !== 'undefined' && 'gpu' in navigator ? 'webgpu' : 'cpu',
  hub: 'auto',
  corpus: { kind: 'demo' },
};

export const useSettings = create<SettingsState>()(
  persist(() => structuredClone(DEFAULT_SETTINGS), {
    name: 'finemed-ttt-settings',
    version: 1,
    storage: createJSONStorage(() => localStorage),
    // A field added in a later version gets its default instead of undefined.
    merge: (stored, current) => {
      const s = (stored ?? {}) as Partial<SettingsState>;
      return { ...current, ...s, question: { ...current.question, ...(s.question ?? {}) } };
    },
  }),
);

export function setQuestionSetting<K extends keyof QuestionSettings>(key: K, value: QuestionSettings[K]): void {
  useSettings.setState((s) => ({ question: { ...s.question, [key]: value } }));
}

/** Defaults, or the paper's preset (one Adam step at lr 1e-5, greedy, o1 prompt). */
export function applyPreset(preset: AskPreset): void {
  useSettings.setState({ question: { ...DEFAULT_SETTINGS.question, targets: [...DEFAULT_SETTINGS.question.targets], ...ASK_PRESETS[preset] } });
}

/** Applies ?model=&embedder=&weights=&backend=&hub= (unknown values are ignored, with a console warning). */
export function applyQueryParams(search: string): void {
  const q = new URLSearchParams(search);
  const next: Partial<SettingsState> = {};
  const repo = /^[\w.-]+\/[\w.-]+$/;
  const model = q.get('model'), embedder = q.get('embedder'), weights = q.get('weights'), backend = q.get('backend'), hub = q.get('hub');
  if (model !== null) repo.test(model) ? (next.llmRepo = model) : console.warn(`Ignoring ?model=${model}: expected <org>/<name>.`);
  if (embedder !== null) repo.test(embedder) ? (next.embedderRepo = embedder) : console.warn(`Ignoring ?embedder=${embedder}: expected <org>/<name>.`);
  if (weights !== null) weights === 'q4' || weights === 'f32' ? (next.weights = weights) : console.warn(`Ignoring ?weights=${weights}: expected q4 or f32.`);
  if (backend !== null) backend === 'webgpu' || backend === 'cpu' ? (next.backend = backend) : console.warn(`Ignoring ?backend=${backend}: expected webgpu or cpu.`);
  if (hub !== null) next.hub = hub;
  if (Object.keys(next).length) useSettings.setState(next);
}
