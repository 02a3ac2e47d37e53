/** The full sort's nucleus for one setting: the ids it keeps, most likely first, and their mass. */
export interface FullSortNucleus { order: number[]; kept: number; probs: Float64Array; mass: number; sum: number; all: boolean }

/**
 * The full-sort top-p sampler (what models/sampling.ts did before partial selection): the
 * reference that the partial selection must match token for token, and the benchmark's "before".
 * @example const id = sampleTopPFullSort(logits, 0.7, 0.9, seededRandom(1));
 */
export function sampleTopPFullSort(logits: Float32Array, temperature: number, topP: number, rand: () => number, opts: { sortAtOne?: boolean } = {}): number {
  return pickFromNucleus(fullSortNucleus(logits, temperature, topP, opts), rand());
}

/** The sort and the nucleus, once per setting (so a test can draw many times against one sort). */
export function fullSortNucleus(logits: Float32Array, temperature: number, topP: number, opts: { sortAtOne?: boolean } = {}): FullSortNucleus {
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
  const probs = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) { probs[i] = Math.exp((logits[i] - max) / temperature); sum += probs[i]; }
  // Top-p 1 keeps every token: drawn in id order, no sort (the documented behaviour); `sortAtOne`
  // sorts anyway, as the sampler did before (the benchmark's "before").
  if (topP >= 1 && !opts.sortAtOne) return { order: [], kept: V, probs, mass: sum, sum, all: true };
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  let kept = 0, mass = 0;
  while (kept < V && (kept === 0 || mass < topP * sum)) mass += probs[order[kept++]];
  return { order, kept, probs, mass, sum, all: false };
}

/** The token one uniform draw `u` in [0, 1) picks from the nucleus. */
export function pickFromNucleus(n: FullSortNucleus, u: number): number {
  if (n.all) {
    let r = u * n.sum;
    for (let i = 0; i < n.probs.length; i++) { r -= n.probs[i]; if (r <= 0) return i; }
    return n.probs.length - 1;
  }
  let r = u * n.mass;
  for (let i = 0; i < n.kept; i++) {
    r -= n.probs[n.order[i]];
    if (r <= 0) return n.order[i];
  }
  return n.order[n.kept - 1];
}

/** Logits shaped like a language model's: a few strong candidates over a long Gaussian tail. */
export function lmLikeLogits(V: number, rand: () => number, spread = 3): Float32Array {
  const out = new Float32Array(V);
  for (let i = 0; i < V; i++) {
    const u = Math.max(rand(), 1e-12), v = rand();
    out[i] = spread * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  for (let k = 0; k < 8; k++) out[Math.floor(rand() * V)] += 8 + 4 * rand();
  return out;
}
