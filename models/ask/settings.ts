/**
 * The settings of one question: retrieval, the adapter and its optimizer, decoding and the prompt.
 * One plain object, serialisable (the app persists it, the record stores it, the CLI builds it
 * from flags), with defaults and the paper's preset.
 */
import type { Sampling } from '../api.ts';
import { PROJECTIONS, type Projection } from '../config.ts';
import { InvalidInputError } from '../errors.ts';
import { TTT_DEFAULTS, TTT_PRESETS, type TttConfig } from '../ttt/config.ts';
import type { SystemPromptChoice } from './prompt-plan.ts';

export interface AskSettings {
  /** Test-time training on the retrieved trace before answering. */
  ttt: boolean;
  /** Traces retrieved and shown; the top one is trained on. */
  k: number;
  steps: number;
  lr: number;
  rank: number;
  alpha: number;
  targets: Projection[];
  /** Longest training sequence; longer traces lose the end of their reasoning. */
  maxTrainTokens: number;
  maxNewTokens: number;
  /** 0 = greedy; otherwise softmax sampling at this temperature with topP and seed. */
  temperature: number;
  topP: number;
  seed: number;
  system: SystemPromptChoice;
  /** The system prompt for system 'custom'. */
  customSystem: string;
}

export const ASK_DEFAULTS: Readonly<AskSettings> = {
  ttt: true,
  k: 5,
  steps: TTT_DEFAULTS.steps,
  lr: TTT_DEFAULTS.lr,
  rank: TTT_DEFAULTS.rank,
  alpha: TTT_DEFAULTS.alpha,
  targets: [...PROJECTIONS],
  maxTrainTokens: TTT_DEFAULTS.maxTokens,
  maxNewTokens: 1024,
  temperature: 0,
  topP: 0.9,
  seed: 42,
  system: 'o1',
  customSystem: '',
};

/** 'paper': FineMedLM-o1's TTT script (one Adam step at lr 1e-5), greedy, their system prompt. */
export const ASK_PRESETS = {
  default: {},
  paper: { ...TTT_PRESETS.paper, temperature: 0, system: 'o1' },
} as const satisfies Record<string, Partial<AskSettings>>;
export type AskPreset = keyof typeof ASK_PRESETS;

/**
 * Defaults, then the preset, then `overrides`; every field validated (a typed error names it).
 * @example resolveAskSettings({ steps: 5 }, 'paper').lr // 1e-5
 */
export function resolveAskSettings(overrides: Partial<AskSettings> = {}, preset: AskPreset = 'default'): AskSettings {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<AskSettings>;
  const s: AskSettings = { ...ASK_DEFAULTS, targets: [...ASK_DEFAULTS.targets], ...ASK_PRESETS[preset], ...defined };
  const int = (v: number, name: string, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new InvalidInputError(`${name} must be an integer >= ${min}, got ${v}.`);
  };
  int(s.k, 'k', 1);
  int(s.steps, 'steps', 0);
  int(s.rank, 'rank', 1);
  int(s.maxTrainTokens, 'max trained tokens', 2);
  int(s.maxNewTokens, 'max new tokens', 1);
  int(s.seed, 'seed', 0);
  if (!(s.lr > 0) || !Number.isFinite(s.lr)) throw new InvalidInputError(`lr must be a positive number, got ${s.lr}.`);
  if (!(s.alpha > 0) || !Number.isFinite(s.alpha)) throw new InvalidInputError(`alpha must be a positive number, got ${s.alpha}.`);
  if (!(s.temperature >= 0) || !Number.isFinite(s.temperature)) throw new InvalidInputError(`temperature must be >= 0, got ${s.temperature}.`);
  if (!(s.topP > 0 && s.topP <= 1)) throw new InvalidInputError(`top-p must be in (0, 1], got ${s.topP}.`);
  if (s.targets.length === 0 || s.targets.some((t) => !PROJECTIONS.includes(t))) {
    throw new InvalidInputError(`targets must be a non-empty subset of ${PROJECTIONS.join(', ')}.`);
  }
  if (!['o1', 'card', 'custom', 'none'].includes(s.system)) throw new InvalidInputError(`Unknown system prompt choice ${JSON.stringify(s.system)}.`);
  return { ...s, targets: PROJECTIONS.filter((p) => s.targets.includes(p)) };
}

/** Decoding of these settings: temperature 0 is greedy. */
export function samplingOf(s: AskSettings): Sampling {
  return s.temperature === 0 ? { kind: 'greedy' } : { kind: 'sample', temperature: s.temperature, topP: s.topP, seed: s.seed };
}

/** The adapter shape and optimizer of these settings, as the engine's TTT config. */
export function tttConfigOf(s: AskSettings): Partial<TttConfig> {
  return { rank: s.rank, alpha: s.alpha, targets: [...s.targets], steps: s.steps, lr: s.lr, maxTokens: s.maxTrainTokens };
}
