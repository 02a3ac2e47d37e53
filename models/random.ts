/**
 * The one seeded PRNG of the project (mulberry32): sampling, LoRA initialisation, synthetic
 * vectors and the tests' random models all draw from it, so one seed means the same numbers
 * everywhere (and the golden files stay valid).
 */

/**
 * Uniform numbers in [0, 1) from a 32-bit seed; the same seed gives the same sequence on every
 * platform and backend.
 * @example
 *   const rand = seededRandom(42);
 *   const x = rand(); // 0 <= x < 1
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
