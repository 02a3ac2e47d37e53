import type { Sampling } from './api.ts';
import { InvalidInputError } from './errors.ts';

// The PRNG lives in ./random.ts (shared with LoRA init and the retrieval vectors); re-exported for callers.
export { seededRandom } from './random.ts';

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export function validateSampling(s: Sampling): void {
  if (s.kind === 'greedy') return;
  if (!(s.temperature > 0) || !Number.isFinite(s.temperature)) throw new InvalidInputError(`temperature must be > 0, got ${s.temperature}.`);
  if (!(s.topP > 0 && s.topP <= 1)) throw new InvalidInputError(`top-p must be in (0, 1], got ${s.topP}.`);
  if (!Number.isInteger(s.seed)) throw new InvalidInputError(`seed must be an integer, got ${s.seed}.`);
}

/**
 * Picks the next token: argmax for greedy; otherwise softmax(logits / temperature), keeps the
 * smallest set of most likely tokens whose mass reaches top-p, and draws from it with `rand`.
 * @example
 *   const rand = seededRandom(42);
 *   const id = sampleToken(logits, { kind: 'sample', temperature: 0.7, topP: 0.9, seed: 42 }, rand);
 */
export function sampleToken(logits: Float32Array, s: Sampling, rand: () => number): number {
  if (s.kind === 'greedy') return argmax(logits);
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
  const probs = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) { probs[i] = Math.exp((logits[i] - max) / s.temperature); sum += probs[i]; }
  // Sort candidate ids by probability, most likely first; ties broken by id for determinism.
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  let kept = 0, mass = 0;
  while (kept < V && (kept === 0 || mass < s.topP * sum)) mass += probs[order[kept++]];
  let r = rand() * mass;
  for (let i = 0; i < kept; i++) {
    r -= probs[order[i]];
    if (r <= 0) return order[i];
  }
  return order[kept - 1];
}
