/**
 * The voy-search (WASM k-d tree) index, sharded. Measured facts about voy 0.6.3 shape it:
 * - its tree has a fixed 768 dims: shorter vectors are zero-padded (harmless for Euclidean
 *   distance) but longer ones are silently truncated (wrong neighbours), so we refuse dims > 768;
 * - a build passes the whole input through JSON.stringify and serde, so big inputs exhaust the
 *   JS string limit (building 40k x 768 failed): we build shards of at most SHARD_VALUES values;
 * - it returns ids without distances: we keep the vectors and compute each candidate's exact
 *   distance, which also makes merging the shards' top-k exact.
 */
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import { DimensionsError } from './errors.ts';
import { checkQuery, hitsOf } from './exact-index.ts';
import type { SearchHit, VectorIndex } from './search-types.ts';
import { TopK } from './top-k.ts';
import { squaredDistance } from './vectors.ts';
import type { VoyApi } from './voy-wasm.ts';

/** voy's compile-time dimension. */
export const VOY_MAX_DIMS = 768;
/** Values per shard: 8M floats is about 160 MB of JSON during a build, far below the limits. */
export const SHARD_VALUES = 8_000_000;

type VoyInstance = InstanceType<VoyApi['Voy']>;

export interface VoyBuildOptions {
  /** Rows per shard; default floor(SHARD_VALUES / dims). */
  shardRows?: number;
  /** Called after each shard with rows indexed so far. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Throws DimensionsError when voy cannot index `dims` correctly.
 * @example assertVoyDims(1024); // throws: voy-search supports at most 768 dims ...
 */
export function assertVoyDims(dims: number): void {
  if (dims > VOY_MAX_DIMS) {
    throw new DimensionsError(
      `voy-search supports at most ${VOY_MAX_DIMS} dims, but these embeddings have ${dims}: voy would silently truncate ` +
        `them and return wrong neighbours. Use an embedder with at most ${VOY_MAX_DIMS} dims (bge-small-en-v1.5: 384, ` +
        `bge-base-en-v1.5: 768) or the exact index.`,
    );
  }
  if (!Number.isInteger(dims) || dims <= 0) throw new InvalidInputError(`Embedding dims must be a positive integer, got ${dims}.`);
}

export class VoyIndex implements VectorIndex {
  readonly kind = 'voy';
  readonly size: number;

  private constructor(
    readonly vectors: Float32Array,
    readonly dims: number,
    private shards: VoyInstance[],
    readonly shardRows: number,
  ) {
    this.size = vectors.length / dims;
  }

  /**
   * Builds the shards; yields to the event loop between them so progress and cancel get through.
   * @example
   *   const voy = await loadVoyNode();
   *   const index = await VoyIndex.build(voy, vectors, 384, { onProgress: (d, t) => console.log(d, t) });
   */
  static async build(voy: VoyApi, vectors: Float32Array, dims: number, options: VoyBuildOptions = {}): Promise<VoyIndex> {
    assertVoyDims(dims);
    if (vectors.length % dims !== 0) throw new InvalidInputError(`VoyIndex: ${vectors.length} values are not whole rows of ${dims} dims.`);
    const rows = vectors.length / dims;
    const shardRows = Math.max(1, options.shardRows ?? Math.floor(SHARD_VALUES / dims));
    const shards: VoyInstance[] = [];
    try {
      for (let start = 0; start < rows; start += shardRows) {
        throwIfAborted(options.signal);
        const end = Math.min(rows, start + shardRows);
        const embeddings = [];
        for (let r = start; r < end; r++) {
          // id = global row; title/url unused (voy hashes id+title+url, so ids must be unique).
          embeddings.push({ id: String(r), title: '', url: '', embeddings: Array.from(vectors.subarray(r * dims, (r + 1) * dims)) });
        }
        shards.push(new voy.Voy({ embeddings }));
        options.onProgress?.(end, rows);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } catch (e) {
      for (const s of shards) s.free();
      throw e;
    }
    return new VoyIndex(vectors, dims, shards, shardRows);
  }

  get shardCount(): number {
    return this.shards.length;
  }

  search(query: Float32Array, k: number): SearchHit[] {
    checkQuery(query, this.dims, k);
    if (this.shards.length === 0 && this.size > 0) throw new InvalidInputError('This voy index was disposed.');
    const top = new TopK(Math.min(k, this.size));
    if (top.k === 0) return [];
    for (const shard of this.shards) {
      for (const n of shard.search(query, top.k).neighbors) {
        const row = Number(n.id);
        top.push(row, squaredDistance(query, this.vectors, row, this.dims));
      }
    }
    return hitsOf(top);
  }

  dispose(): void {
    for (const s of this.shards) s.free();
    this.shards = [];
  }
}
