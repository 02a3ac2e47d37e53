import { describe, expect, it } from 'vitest';
import { argmax, sampleToken, seededRandom, validateSampling } from '../../models/sampling.ts';

describe('sampling', () => {
  const logits = Float32Array.from([0.1, 2.0, 1.9, -1, 0.5]);

  it('greedy is argmax', () => {
    expect(argmax(logits)).toBe(1);
    expect(sampleToken(logits, { kind: 'greedy' }, seededRandom(1))).toBe(1);
  });

  it('the same seed gives the same tokens; another seed differs somewhere', () => {
    const s = { kind: 'sample', temperature: 1.5, topP: 1, seed: 9 } as const;
    const run = (seed: number) => { const r = seededRandom(seed); return Array.from({ length: 50 }, () => sampleToken(logits, s, r)); };
    expect(run(9)).toEqual(run(9));
    expect(run(9)).not.toEqual(run(10));
  });

  it('top-p keeps only the nucleus', () => {
    const r = seededRandom(3);
    // p(1) and p(2) are about 0.43 and 0.39: top-p 0.5 keeps only tokens {1, 2}.
    const seen = new Set(Array.from({ length: 300 }, () => sampleToken(logits, { kind: 'sample', temperature: 1, topP: 0.5, seed: 0 }, r)));
    expect([...seen].sort()).toEqual([1, 2]);
  });

  it('low temperature approaches greedy; frequencies follow the softmax', () => {
    const r = seededRandom(5);
    const cold = Array.from({ length: 100 }, () => sampleToken(logits, { kind: 'sample', temperature: 0.01, topP: 1, seed: 0 }, r));
    expect(cold.every((t) => t === 1)).toBe(true);
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 20000; i++) counts[sampleToken(logits, { kind: 'sample', temperature: 1, topP: 1, seed: 0 }, r)]++;
    const z = Array.from(logits, Math.exp).reduce((a, b) => a + b, 0);
    for (let i = 0; i < 5; i++) expect(Math.abs(counts[i] / 20000 - Math.exp(logits[i]) / z)).toBeLessThan(0.015);
  });

  it('rejects invalid settings with a typed error', () => {
    expect(() => validateSampling({ kind: 'sample', temperature: 0, topP: 1, seed: 1 })).toThrow(/temperature/);
    expect(() => validateSampling({ kind: 'sample', temperature: 1, topP: 1.5, seed: 1 })).toThrow(/top-p/);
    expect(() => validateSampling({ kind: 'sample', temperature: 1, topP: 0.9, seed: 1.5 })).toThrow(/seed/);
  });
});
