/**
 * The statistics of an evaluation: accuracy with a 95% Wilson score interval, and McNemar's exact
 * test for paired answers (the same items without and with TTT).
 */

/** z for a two-sided 95% interval. */
const Z95 = 1.959963984540054;

export interface Interval {
  low: number;
  high: number;
}

/**
 * Wilson score interval of k successes in n trials: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
 * n = 0 gives [0, 1] (no information).
 * @example wilson(7, 10); // { low: 0.3968, high: 0.8922 } (rounded)
 */
export function wilson(k: number, n: number, z = Z95): Interval {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 0 || n < 0 || k > n) throw new RangeError(`wilson needs integers 0 <= k <= n, got k=${k}, n=${n}.`);
  if (n === 0) return { low: 0, high: 1 };
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // Exact ends at k = 0 and k = n (rounding would leave 1e-17 off them).
  return { low: k === 0 ? 0 : Math.max(0, centre - half), high: k === n ? 1 : Math.min(1, centre + half) };
}

export interface Accuracy {
  /** Items answered (skipped ones are not counted). */
  n: number;
  correct: number;
  /** correct / n; null when n = 0. */
  accuracy: number | null;
  /** 95% Wilson interval. */
  ci95: Interval;
}

/** @example accuracyOf(7, 10); // { n: 10, correct: 7, accuracy: 0.7, ci95: { low: 0.397, high: 0.892 } } */
export function accuracyOf(correct: number, n: number): Accuracy {
  return { n, correct, accuracy: n === 0 ? null : correct / n, ci95: wilson(correct, n) };
}

export interface McNemar {
  /** Right without TTT, wrong with it. */
  b: number;
  /** Wrong without TTT, right with it. */
  c: number;
  /** Two-sided exact p: min(1, 2·P(X <= min(b, c))), X ~ Binomial(b + c, 1/2); 1 when b = c = 0. */
  p: number;
}

/**
 * McNemar's exact test on the discordant pairs.
 * @example mcnemarExact(1, 9).p; // 0.021484375 (= 2 · 11/1024)
 */
export function mcnemarExact(b: number, c: number): McNemar {
  if (!Number.isInteger(b) || !Number.isInteger(c) || b < 0 || c < 0) throw new RangeError(`mcnemarExact needs counts >= 0, got b=${b}, c=${c}.`);
  const n = b + c;
  if (n === 0) return { b, c, p: 1 };
  return { b, c, p: Math.min(1, 2 * binomialCdfHalf(Math.min(b, c), n)) };
}

/**
 * P(X <= k) for X ~ Binomial(n, 1/2). Summed directly up to n = 1000 (exact for small n: 2^-n and
 * the binomial coefficients are exact doubles), in log space above, where 2^-n underflows.
 */
export function binomialCdfHalf(k: number, n: number): number {
  if (k >= n) return 1;
  if (n <= 1000) {
    let term = 2 ** -n, sum = term;
    for (let i = 1; i <= k; i++) {
      term = (term * (n - i + 1)) / i;
      sum += term;
    }
    return Math.min(1, sum);
  }
  let logTerm = n * Math.log(0.5); // log C(n, 0) + n log 1/2
  const logs = [logTerm];
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log((n - i + 1) / i);
    logs.push(logTerm);
  }
  const max = Math.max(...logs);
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - max);
  return Math.min(1, Math.exp(max) * sum);
}

export interface PairedOutcome {
  off: boolean;
  on: boolean;
}

export interface PairedComparison extends McNemar {
  /** Items answered in both modes. */
  pairs: number;
  /** Accuracy with TTT minus without, on the pairs: (c - b) / pairs; null without pairs. */
  difference: number | null;
}

/**
 * The paired comparison of TTT on vs off over items answered both ways.
 * @example comparePaired([{ off: true, on: false }, { off: false, on: true }, { off: false, on: true }]);
 *   // { b: 1, c: 2, p: 1, pairs: 3, difference: 0.333 }
 */
export function comparePaired(pairs: readonly PairedOutcome[]): PairedComparison {
  let b = 0, c = 0;
  for (const x of pairs) {
    if (x.off && !x.on) b++;
    else if (!x.off && x.on) c++;
  }
  return { ...mcnemarExact(b, c), pairs: pairs.length, difference: pairs.length === 0 ? null : (c - b) / pairs.length };
}
