/**
 * Keeps the k smallest (distance, row) pairs seen so far. k is small (top-5 for TTT), so a sorted
 * insert beats a heap and allocates nothing per candidate.
 */
export class TopK {
  readonly rows: Int32Array;
  readonly d2: Float64Array;
  length = 0;

  constructor(readonly k: number) {
    this.rows = new Int32Array(k);
    this.d2 = new Float64Array(k);
  }

  /** The distance a candidate must beat to enter (Infinity until k are held). */
  get worst(): number {
    return this.length < this.k ? Infinity : this.d2[this.k - 1];
  }

  /** Adds a candidate; equal distances keep the lower row first. */
  push(row: number, d2: number): void {
    if (this.k === 0) return;
    if (this.length === this.k && !(d2 < this.d2[this.k - 1] || (d2 === this.d2[this.k - 1] && row < this.rows[this.k - 1]))) return;
    let i = Math.min(this.length, this.k - 1);
    while (i > 0 && (this.d2[i - 1] > d2 || (this.d2[i - 1] === d2 && this.rows[i - 1] > row))) {
      this.d2[i] = this.d2[i - 1];
      this.rows[i] = this.rows[i - 1];
      i--;
    }
    this.d2[i] = d2;
    this.rows[i] = row;
    if (this.length < this.k) this.length++;
  }
}
