import { describe, expect, it } from 'vitest';
import { sampleToken, seededRandom } from '../../models/sampling.ts';
import { fullSortNucleus, lmLikeLogits, pickFromNucleus } from '../helpers/top-p-reference.ts';

// The same draws go to both samplers: each gets its own PRNG with the same seed, one draw a token
// (the reference sorts once per setting and picks with each draw).
function agree(logits: Float32Array, temperature: number, topP: number, draws: number, seed: number): { same: number; distinct: number } {
  const a = seededRandom(seed), b = seededRandom(seed);
  const nucleus = fullSortNucleus(logits, temperature, topP);
  let same = 0;
  const seen = new Set<number>();
  for (let d = 0; d < draws; d++) {
    const got = sampleToken(logits, { kind: 'sample', temperature, topP, seed }, a);
    const want = pickFromNucleus(nucleus, b());
    if (got === want) same++;
    seen.add(want);
  }
  return { same, distinct: seen.size };
}

describe('top-p by partial selection equals the full sort', () => {
  it('at the real vocabulary (128,256), several top-p and temperatures, same token for the same draw', () => {
    const V = 128256;
    const logits = lmLikeLogits(V, seededRandom(7));
    expect(logits.length).toBe(V);
    let sampledDistinct = 0;
    for (const temperature of [0.3, 0.7, 1, 1.5]) {
      for (const topP of [0.1, 0.5, 0.9, 0.95, 1]) {
        const r = agree(logits, temperature, topP, 40, 100 + Math.round(temperature * 10) + Math.round(topP * 100));
        expect(r.same, `T=${temperature} p=${topP}`).toBe(40);
        sampledDistinct = Math.max(sampledDistinct, r.distinct);
      }
    }
    // Not vacuous: some settings spread the draws over several tokens.
    expect(sampledDistinct).toBeGreaterThan(3);
  });

  it('a flat distribution (most of the vocabulary in the nucleus) and a tiny vocabulary', () => {
    const flat = lmLikeLogits(128256, seededRandom(8), 0.05);
    expect(agree(flat, 1, 0.9, 20, 3).same).toBe(20);
    for (const V of [1, 2, 5, 37, 300]) {
      for (const topP of [0.2, 0.6, 0.99]) {
        const logits = lmLikeLogits(V, seededRandom(V));
        expect(agree(logits, 0.8, topP, 40, V * 7).same, `V=${V} p=${topP}`).toBe(40);
      }
    }
  });

  it('ties (equal logits) are broken by id, as in the full sort; -Infinity logits are never drawn', () => {
    const logits = new Float32Array(1000).fill(-3);
    for (let i = 0; i < 1000; i += 3) logits[i] = 2; // 334 equal best tokens
    for (let i = 1; i < 1000; i += 7) logits[i] = -Infinity;
    for (const topP of [0.01, 0.3, 0.8, 0.999]) expect(agree(logits, 1, topP, 50, 11).same, `p=${topP}`).toBe(50);
    const r = seededRandom(2);
    for (let d = 0; d < 200; d++) expect(logits[sampleToken(logits, { kind: 'sample', temperature: 1, topP: 1, seed: 0 }, r)]).not.toBe(-Infinity);
  });

  it('a very peaked distribution whose nucleus sits in the first bucket (one or two tokens)', () => {
    const logits = lmLikeLogits(50000, seededRandom(4));
    logits[123] = 60;
    expect(agree(logits, 1, 0.9, 20, 5).same).toBe(20);
    expect(sampleToken(logits, { kind: 'sample', temperature: 1, topP: 0.9, seed: 0 }, seededRandom(1))).toBe(123);
  });
});
