/** Medians with min and max over benchmark runs, and their table cells. */

export interface Stats {
  median: number;
  min: number;
  max: number;
}

/** @example stats([3, 1, 2]) // { median: 2, min: 1, max: 3 } */
export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! };
}

/** "12 (10–15)", or "12" when every run gave the same. */
export function cell(s: Stats, digits = 0): string {
  return s.min === s.max ? s.median.toFixed(digits) : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}
