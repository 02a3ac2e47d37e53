/**
 * Top-p sampling cost per token at the real vocabulary: the full sort of all V ids (before) and
 * the bucketed partial selection in models/sampling.ts (after), on language-model-like logits
 * (a few strong candidates over a Gaussian tail) and on a flat distribution (the worst case: most
 * of the vocabulary inside the nucleus). Prints one JSON line per setting.
 *
 * Usage: `npm run bench:top-p -- [V=128256] [tokens=30]`
 */
import { sampleToken, seededRandom } from '../../models/sampling.ts';
import { lmLikeLogits, sampleTopPFullSort } from '../../tests/helpers/top-p-reference.ts';
import { stats } from './stats.ts';

function msPerToken(pick: () => number, tokens: number): number[] {
  for (let i = 0; i < 3; i++) pick(); // warm the JIT
  const out: number[] = [];
  for (let i = 0; i < tokens; i++) {
    const t0 = performance.now();
    pick();
    out.push(performance.now() - t0);
  }
  return out;
}

const V = Number(process.argv[2] ?? 128256);
const tokens = Number(process.argv[3] ?? 30);
for (const [shape, spread] of [['lm-like', 3], ['flat', 0.05]] as const) {
  const logits = lmLikeLogits(V, seededRandom(1), spread);
  for (const [temperature, topP] of [[0.7, 0.9], [1, 0.95], [1, 1]] as const) {
    const a = seededRandom(2), b = seededRandom(2);
    const before = stats(msPerToken(() => sampleTopPFullSort(logits, temperature, topP, a, { sortAtOne: true }), tokens));
    const after = stats(msPerToken(() => sampleToken(logits, { kind: 'sample', temperature, topP, seed: 2 }, b), tokens));
    console.log(JSON.stringify({ V, shape, temperature, topP, beforeMedianMs: +before.median.toFixed(2), afterMedianMs: +after.median.toFixed(2), speedup: +(before.median / after.median).toFixed(1) }));
  }
}
