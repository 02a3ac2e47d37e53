/**
 * Statistics against known values: Wilson intervals from Newcombe (1998, Stat Med 17:857, Table I,
 * method 3) and hand-computed ones; McNemar exact p from the binomial sums (computed exactly with
 * integer arithmetic: 2 * sum_{i<=min(b,c)} C(b+c, i) / 2^(b+c)).
 */
import { describe, expect, it } from 'vitest';
import { accuracyOf, binomialCdfHalf, comparePaired, mcnemarExact, wilson } from '../../../models/eval/stats.ts';

describe('wilson', () => {
  it('matches Newcombe (1998) Table I', () => {
    const published: [number, number, number, number][] = [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 10, 0, 0.2775],
      [1, 29, 0.0061, 0.1718],
    ];
    for (const [k, n, low, high] of published) {
      const ci = wilson(k, n);
      expect(ci.low).toBeCloseTo(low, 4);
      expect(ci.high).toBeCloseTo(high, 4);
    }
  });

  it('7/10, 0/20, 20/20 (hand-computed)', () => {
    expect(wilson(7, 10).low).toBeCloseTo(0.396778, 6);
    expect(wilson(7, 10).high).toBeCloseTo(0.892209, 6);
    expect(wilson(0, 20)).toEqual({ low: 0, high: expect.closeTo(0.161125, 6) });
    expect(wilson(20, 20)).toEqual({ low: expect.closeTo(0.838875, 6), high: 1 });
  });

  it('is symmetric, contains the estimate, and gives [0, 1] without trials', () => {
    const a = wilson(3, 17), b = wilson(14, 17);
    expect(a.low).toBeCloseTo(1 - b.high, 12);
    expect(a.high).toBeCloseTo(1 - b.low, 12);
    expect(a.low).toBeLessThan(3 / 17);
    expect(a.high).toBeGreaterThan(3 / 17);
    expect(wilson(0, 0)).toEqual({ low: 0, high: 1 });
    expect(() => wilson(5, 4)).toThrow(RangeError);
  });

  it('accuracyOf', () => {
    expect(accuracyOf(7, 10)).toMatchObject({ n: 10, correct: 7, accuracy: 0.7 });
    expect(accuracyOf(0, 0)).toEqual({ n: 0, correct: 0, accuracy: null, ci95: { low: 0, high: 1 } });
  });
});

/** 2 * sum_{i<=800} C(1680, i) / 2^1680, from exact integer arithmetic (Python fractions). */
const EXACT_800_880 = 0.05389713777104714;

describe('mcnemarExact', () => {
  it('b=1, c=9: 2 * 11/1024', () => {
    expect(mcnemarExact(1, 9)).toEqual({ b: 1, c: 9, p: 0.021484375 });
    expect(mcnemarExact(9, 1).p).toBe(0.021484375);
  });

  it('b=5, c=5 and b=c=0 give p = 1', () => {
    expect(mcnemarExact(5, 5).p).toBe(1);
    expect(mcnemarExact(0, 0).p).toBe(1);
    expect(mcnemarExact(0, 1).p).toBe(1);
  });

  it('more known values, also where the sum needs log space', () => {
    expect(mcnemarExact(0, 6).p).toBeCloseTo(0.03125, 12);
    expect(mcnemarExact(3, 12).p).toBeCloseTo(0.03515625, 12);
    expect(mcnemarExact(25, 40).p).toBeCloseTo(0.08168153394154005, 12);
    expect(mcnemarExact(400, 460).p).toBeCloseTo(0.04416954819458901, 10);
    expect(mcnemarExact(800, 880).p).toBeCloseTo(EXACT_800_880, 8); // n > 1000: summed in log space
  });

  it('binomialCdfHalf', () => {
    expect(binomialCdfHalf(0, 3)).toBeCloseTo(1 / 8, 15);
    expect(binomialCdfHalf(1, 3)).toBeCloseTo(4 / 8, 15);
    expect(binomialCdfHalf(3, 3)).toBe(1);
  });
});

describe('comparePaired', () => {
  it('counts the discordant pairs and the on-minus-off difference', () => {
    const pairs = [
      ...Array(4).fill({ off: true, on: true }),
      ...Array(1).fill({ off: true, on: false }),
      ...Array(9).fill({ off: false, on: true }),
      ...Array(6).fill({ off: false, on: false }),
    ];
    expect(comparePaired(pairs)).toEqual({ b: 1, c: 9, p: 0.021484375, pairs: 20, difference: 0.4 });
    expect(comparePaired([])).toEqual({ b: 0, c: 0, p: 1, pairs: 0, difference: null });
  });
});
