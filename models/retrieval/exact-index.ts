/**
 * Exact nearest-neighbour search: a scan over every row of a Float32Array. The reference the voy
 * index is checked against, and a fine index on its own at the sizes of this app.
 */
import { InvalidInputError } from '../errors.ts';
import type { SearchHit, VectorIndex } from './search-types.ts';
import { TopK } from './top-k.ts';
import { cosineFromSquaredDistance, squaredDistance } from './vectors.ts';

/**
 * @example
 *   const index = new ExactIndex(vectors, 384);
 *   index.search(query, 5); // [{ row: 17, distance: 0.41, score: 0.916 }, ...]
 */
export class ExactIndex implements VectorIndex {
  readonly kind = 'exact';
  readonly size: number;

  constructor(readonly vectors: Float32Array, readonly dims: number) {
    if (!Number.isInteger(dims) || dims <= 0 || vectors.length % dims !== 0) {
      throw new InvalidInputError(`ExactIndex: ${vectors.length} values are not whole rows of ${dims} dims.`);
    }
    this.size = vectors.length / dims;
  }

  search(query: Float32Array, k: number): SearchHit[] {
    checkQuery(query, this.dims, k);
    const top = new TopK(Math.min(k, this.size));
    for (let row = 0; row < this.size; row++) top.push(row, squaredDistance(query, this.vectors, row, this.dims));
    return hitsOf(top);
  }

  dispose(): void {}
}

/** Throws InvalidInputError for a query of the wrong length or a bad k. */
export function checkQuery(query: Float32Array, dims: number, k: number): void {
  if (query.length !== dims) throw new InvalidInputError(`The query has ${query.length} dims; the index has ${dims}.`);
  if (!Number.isInteger(k) || k < 0) throw new InvalidInputError(`k must be a non-negative integer, got ${k}.`);
}

/** TopK contents as hits, nearest first. */
export function hitsOf(top: TopK): SearchHit[] {
  const out: SearchHit[] = [];
  for (let i = 0; i < top.length; i++) {
    const d2 = top.d2[i];
    out.push({ row: top.rows[i], distance: Math.sqrt(d2), score: cosineFromSquaredDistance(d2) });
  }
  return out;
}
