import { PROJECTIONS, type Projection } from '../config.ts';
import { InvalidInputError } from '../errors.ts';

/** Everything one test-time-training run needs: the adapter's shape and the optimizer's settings. */
export interface TttConfig {
  rank: number;
  alpha: number;
  targets: Projection[];
  steps: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; null = none. */
  maxGradNorm: number | null;
  /** Longest training sequence (tokens); longer traces are cut in the reasoning. */
  maxTokens: number;
  /** Seed of A's initialisation (B starts at 0). */
  seed: number;
}

/** Defaults: rank 8, alpha 16 on all seven projections, 3 Adam steps at lr 1e-4. */
export const TTT_DEFAULTS: Readonly<TttConfig> = {
  rank: 8, alpha: 16, targets: [...PROJECTIONS], steps: 3, lr: 1e-4,
  beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1, maxTokens: 1024, seed: 0,
};

/**
 * 'paper' follows FineMedLM-o1's TTT script: one Adam step at lr 1e-5 (they updated all weights;
 * we update LoRA, so the step moves far fewer parameters: see DESIGN.md).
 */
export const TTT_PRESETS = {
  default: {},
  paper: { steps: 1, lr: 1e-5 },
} as const satisfies Record<string, Partial<TttConfig>>;
export type TttPreset = keyof typeof TTT_PRESETS;

/**
 * Defaults, then the preset, then explicit settings; validated.
 * @example resolveTttConfig({ preset: 'paper' }).steps // 1
 */
export function resolveTttConfig(opts: Partial<TttConfig> & { preset?: TttPreset } = {}): TttConfig {
  const { preset = 'default', ...rest } = opts;
  if (!(preset in TTT_PRESETS)) throw new InvalidInputError(`Unknown TTT preset "${preset}"; use ${Object.keys(TTT_PRESETS).join(' or ')}.`);
  const c: TttConfig = { ...TTT_DEFAULTS, ...TTT_PRESETS[preset], ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) };
  const positiveInt = (v: number, name: string, min = 1) => {
    if (!Number.isInteger(v) || v < min) throw new InvalidInputError(`TTT ${name} must be an integer >= ${min}, got ${v}.`);
  };
  positiveInt(c.rank, 'rank');
  positiveInt(c.steps, 'steps', 0);
  positiveInt(c.maxTokens, 'maxTokens', 2);
  if (!(c.alpha > 0)) throw new InvalidInputError(`TTT alpha must be > 0, got ${c.alpha}.`);
  if (!(c.lr > 0)) throw new InvalidInputError(`TTT lr must be > 0, got ${c.lr}.`);
  if (c.targets.length === 0 || c.targets.some((t) => !PROJECTIONS.includes(t))) {
    throw new InvalidInputError(`TTT targets must be a non-empty subset of ${PROJECTIONS.join(', ')}; got ${c.targets.join(', ')}.`);
  }
  return c;
}
