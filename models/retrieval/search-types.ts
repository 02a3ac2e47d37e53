/** What every vector index answers; rows are referred to by their position in the corpus. */

export interface SearchHit {
  /** Row of the vector (and of its record) in the corpus. */
  row: number;
  /** Euclidean distance to the query. */
  distance: number;
  /** Cosine similarity, 1 - distance^2 / 2 (exact for unit vectors). */
  score: number;
}

export type IndexKind = 'exact' | 'voy';

export interface VectorIndex {
  readonly kind: IndexKind;
  readonly dims: number;
  readonly size: number;
  /** The `k` nearest rows, nearest first; ties go to the lower row. */
  search(query: Float32Array, k: number): SearchHit[];
  /** Frees WASM memory where there is any. */
  dispose(): void;
}
