/**
 * Which in-memory vector index serves an embedding index: voy-search (k-d tree) up to its fixed
 * 768 dims, the exact scan above (voy would silently truncate longer vectors: wrong neighbours).
 */
import { InvalidInputError } from '../errors.ts';
import type { IndexKind } from './search-types.ts';
import { VOY_MAX_DIMS } from './voy-index.ts';

/** 'auto' (default): voy when it can hold the dims, else exact. */
export type IndexChoice = IndexKind | 'auto';

export interface ChosenIndex {
  kind: IndexKind;
  /** Why the kind differs from what was asked (voy refused the dims); absent otherwise. */
  note?: string;
}

/**
 * @example
 *   chooseIndexKind('auto', 768);  // { kind: 'voy' }
 *   chooseIndexKind('voy', 1024);  // { kind: 'exact', note: 'voy-search refuses 1024 dims (...): exact search is used.' }
 */
export function chooseIndexKind(requested: IndexChoice, dims: number): ChosenIndex {
  if (!Number.isInteger(dims) || dims <= 0) throw new InvalidInputError(`Embedding dims must be a positive integer, got ${dims}.`);
  if (requested === 'exact') return { kind: 'exact' };
  if (requested !== 'auto' && requested !== 'voy') throw new InvalidInputError(`Unknown index kind "${String(requested)}" (auto, voy or exact).`);
  if (dims <= VOY_MAX_DIMS) return { kind: 'voy' };
  return {
    kind: 'exact',
    note: `voy-search refuses ${dims} dims (it holds at most ${VOY_MAX_DIMS} and would silently truncate longer vectors): exact search is used.`,
  };
}
