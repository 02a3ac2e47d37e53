/**
 * The index half of `npm run bench:retrieval`: voy (sharded) against the exact scan over a
 * Float32Array, on seeded random unit vectors, in one run: build time, query latency (median,
 * p95), recall@k of voy against exact, and the bytes of the persisted vectors (F32 and F16).
 */
import { encodeSafetensors } from '../../models/safetensors/writer.ts';
import { ExactIndex } from '../../models/retrieval/exact-index.ts';
import type { VectorIndex } from '../../models/retrieval/search-types.ts';
import { seededUnitVectors } from '../../models/retrieval/vectors.ts';
import { VoyIndex } from '../../models/retrieval/voy-index.ts';
import { voyMemoryBytes, type VoyApi } from '../../models/retrieval/voy-wasm.ts';

export interface IndexBenchRow {
  count: number;
  dims: number;
  kind: 'voy' | 'exact';
  buildMs: number;
  queryMedianMs: number;
  queryP95Ms: number;
  /** voy only: share of exact top-k found; 1 for exact. */
  recall: number;
  shards: number;
  /** Persisted vectors (safetensors) in F32 and F16. */
  persistedF32Bytes: number;
  persistedF16Bytes: number;
  /** voy: its WASM memory after the build (it never shrinks, so it is the high-water mark so far). */
  wasmBytes: number;
}

export interface IndexBenchOptions {
  counts: number[];
  dims: number[];
  queries: number;
  k: number;
  voy: VoyApi;
  log?: (line: string) => void;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

function timeQueries(index: VectorIndex, queries: Float32Array, dims: number, k: number): { times: number[]; rows: number[][] } {
  const times: number[] = [];
  const rows: number[][] = [];
  const n = queries.length / dims;
  for (let i = 0; i < 3; i++) index.search(queries.subarray(0, dims), k); // warm-up (JIT, WASM tiers)
  for (let i = 0; i < n; i++) {
    const q = queries.subarray(i * dims, (i + 1) * dims);
    const t0 = performance.now();
    const hits = index.search(q, k);
    times.push(performance.now() - t0);
    rows.push(hits.map((h) => h.row));
  }
  return { times: times.sort((a, b) => a - b), rows };
}

/**
 * @example
 *   const rows = await runIndexBench({ counts: [1000], dims: [384], queries: 100, k: 5, voy: await loadVoyNode() });
 */
export async function runIndexBench(o: IndexBenchOptions): Promise<IndexBenchRow[]> {
  const out: IndexBenchRow[] = [];
  for (const dims of o.dims) {
    for (const count of o.counts) {
      const vectors = seededUnitVectors(count, dims, count + dims);
      const queries = seededUnitVectors(o.queries, dims, 7 * dims + 1);
      const persisted = (dtype: 'F32' | 'F16'): number =>
        encodeSafetensors([{ name: 'embeddings', dtype, shape: [count, dims], data: vectors }]).byteLength;
      const persistedF32Bytes = persisted('F32');
      const persistedF16Bytes = persisted('F16');

      let t0 = performance.now();
      const exact = new ExactIndex(vectors, dims);
      const exactBuild = performance.now() - t0;
      const e = timeQueries(exact, queries, dims, o.k);
      out.push({
        count, dims, kind: 'exact', buildMs: exactBuild, queryMedianMs: percentile(e.times, 0.5), queryP95Ms: percentile(e.times, 0.95),
        recall: 1, shards: 1, persistedF32Bytes, persistedF16Bytes, wasmBytes: 0,
      });

      t0 = performance.now();
      const voy = await VoyIndex.build(o.voy, vectors, dims);
      const voyBuild = performance.now() - t0;
      const v = timeQueries(voy, queries, dims, o.k);
      let found = 0;
      v.rows.forEach((r, i) => (found += r.filter((row) => e.rows[i].includes(row)).length));
      out.push({
        count, dims, kind: 'voy', buildMs: voyBuild, queryMedianMs: percentile(v.times, 0.5), queryP95Ms: percentile(v.times, 0.95),
        recall: found / (o.queries * o.k), shards: voy.shardCount, persistedF32Bytes, persistedF16Bytes, wasmBytes: voyMemoryBytes(),
      });
      voy.dispose();
      o.log?.(`${count} x ${dims}: exact ${percentile(e.times, 0.5).toFixed(2)} ms/query, voy build ${voyBuild.toFixed(0)} ms, ${percentile(v.times, 0.5).toFixed(2)} ms/query`);
    }
  }
  return out;
}
