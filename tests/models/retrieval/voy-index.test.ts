import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExactIndex } from '../../../models/retrieval/exact-index.ts';
import { seededUnitVectors } from '../../../models/retrieval/vectors.ts';
import { VoyIndex, VOY_MAX_DIMS } from '../../../models/retrieval/voy-index.ts';
import { loadVoyNode } from '../../../node/retrieval/voy-node.ts';
import type { VoyApi } from '../../../models/retrieval/voy-wasm.ts';
import { DimensionsError } from '../../../models/retrieval/errors.ts';

let voy: VoyApi;
beforeAll(async () => {
  voy = await loadVoyNode();
});

describe.each([384, 768])('voy vs exact search at %i dims', (dims) => {
  const N = 2000;
  const vectors = seededUnitVectors(N, dims, 1234 + dims);
  const queries = seededUnitVectors(100, dims, 99 + dims);
  let index: VoyIndex;
  beforeAll(async () => {
    index = await VoyIndex.build(voy, vectors, dims);
  });
  afterAll(() => index.dispose());

  it('top-5 equals brute force for 100 queries (recall 1.0), in order, with cosine scores', () => {
    const exact = new ExactIndex(vectors, dims);
    let found = 0;
    for (let q = 0; q < 100; q++) {
      const query = queries.subarray(q * dims, (q + 1) * dims);
      const a = index.search(query, 5);
      const b = exact.search(query, 5);
      expect(a.map((h) => h.row)).toEqual(b.map((h) => h.row));
      found += a.filter((h) => b.some((x) => x.row === h.row)).length;
      for (const h of a) {
        let dot = 0;
        for (let j = 0; j < dims; j++) dot += query[j] * vectors[h.row * dims + j];
        expect(h.score).toBeCloseTo(dot, 5); // cosine = 1 - d^2/2 for unit vectors
      }
    }
    expect(found / 500).toBe(1);
  });

  it('finds a stored vector itself with score 1', () => {
    const hit = index.search(vectors.subarray(7 * dims, 8 * dims), 1)[0];
    expect(hit.row).toBe(7);
    expect(hit.score).toBeCloseTo(1, 6);
  });
});

describe('voy index limits', () => {
  it('refuses 1024 dims with a clear error', async () => {
    const v = seededUnitVectors(10, 1024, 1);
    const err = await VoyIndex.build(voy, v, 1024).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DimensionsError);
    expect((err as DimensionsError).code).toBe('invalid-input');
    expect((err as Error).message).toMatch(/at most 768 dims.*1024.*truncate/);
    expect(VOY_MAX_DIMS).toBe(768);
  });

  it('shards and merges exactly: 3 shards give the same top-10 as one', async () => {
    const dims = 384;
    const v = seededUnitVectors(900, dims, 5);
    const sharded = await VoyIndex.build(voy, v, dims, { shardRows: 300 });
    const exact = new ExactIndex(v, dims);
    expect(sharded.shardCount).toBe(3);
    const q = seededUnitVectors(20, dims, 6);
    for (let i = 0; i < 20; i++) {
      const query = q.subarray(i * dims, (i + 1) * dims);
      expect(sharded.search(query, 10)).toEqual(exact.search(query, 10));
    }
    sharded.dispose();
    expect(() => sharded.search(q.subarray(0, dims), 1)).toThrow(/disposed/);
  });

  it('rejects a query of the wrong length', async () => {
    const idx = new ExactIndex(seededUnitVectors(4, 8, 1), 8);
    expect(() => idx.search(new Float32Array(7), 1)).toThrow(/7 dims; the index has 8/);
  });
});
