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

// Probability buckets: the high 32 bits of a positive float64 order exactly like the value, so
// (bits(1.0) - hi) >>> 18 is a monotone bucket index with 4 buckets per power of two (below
// 2^-64 everything shares the last bucket). Equal probabilities always share a bucket.
const BUCKETS = 256;
const HI_ONE = 0x3ff00000;
const HI_SHIFT = 18;
const HI_WORD = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian: the high word is second

// Scratch reused across tokens (sampleToken is synchronous, so never shared by two calls).
let scratch: { probs: Float64Array; bits: Uint32Array; ids: Uint32Array } | null = null;
function scratchFor(V: number): { probs: Float64Array; bits: Uint32Array; ids: Uint32Array } {
  if (!scratch || scratch.probs.length !== V) {
    const probs = new Float64Array(V);
    scratch = { probs, bits: new Uint32Array(probs.buffer), ids: new Uint32Array(V) };
  }
  return scratch;
}

/**
 * Picks the next token: argmax for greedy; otherwise softmax(logits / temperature), keeps the
 * smallest set of most likely tokens whose mass reaches top-p (ties in id order), and draws from
 * it with one `rand()`, walking the set from the most likely token. Only the candidates in the
 * probability buckets that hold the nucleus are sorted, not all V ids; the result is the token a
 * full sort would pick for the same draw. Top-p 1 keeps every token and walks them in id order.
 * @example
 *   const rand = seededRandom(42);
 *   const id = sampleToken(logits, { kind: 'sample', temperature: 0.7, topP: 0.9, seed: 42 }, rand);
 */
export function sampleToken(logits: Float32Array, s: Sampling, rand: () => number): number {
  if (s.kind === 'greedy') return argmax(logits);
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
  const { probs, bits, ids } = scratchFor(V);
  let sum = 0;
  for (let i = 0; i < V; i++) { probs[i] = Math.exp((logits[i] - max) / s.temperature); sum += probs[i]; }
  if (s.topP >= 1) {
    let r = rand() * sum;
    for (let i = 0; i < V; i++) { r -= probs[i]; if (r <= 0) return i; }
    return V - 1;
  }
  const count = new Int32Array(BUCKETS);
  const bucketMass = new Float64Array(BUCKETS);
  for (let i = 0; i < V; i++) {
    const b = Math.min(BUCKETS - 1, (HI_ONE - bits[2 * i + HI_WORD]) >>> HI_SHIFT);
    count[b]++;
    bucketMass[b] += probs[i];
  }
  const target = s.topP * sum;
  // The fewest top buckets whose mass reaches the target; every id outside them is strictly less
  // likely than every id inside, so the sorted candidates are the full sort's first entries.
  let last = 0, acc = bucketMass[0];
  while (last < BUCKETS - 1 && acc < target) acc += bucketMass[++last];
  for (;;) {
    let n = 0;
    for (let i = 0; i < V; i++) if (Math.min(BUCKETS - 1, (HI_ONE - bits[2 * i + HI_WORD]) >>> HI_SHIFT) <= last) ids[n++] = i;
    const order = ids.subarray(0, n).sort((a, b) => probs[b] - probs[a] || a - b);
    let kept = 0, mass = 0;
    while (kept < n && (kept === 0 || mass < target)) mass += probs[order[kept++]];
    // Rounding can leave the sorted sum just short of the bucket sum: then widen by one bucket.
    if (kept === n && mass < target && last < BUCKETS - 1) {
      do last++; while (last < BUCKETS - 1 && count[last] === 0);
      continue;
    }
    let r = rand() * mass;
    for (let i = 0; i < kept; i++) {
      r -= probs[order[i]];
      if (r <= 0) return order[i];
    }
    return order[kept - 1];
  }
}
