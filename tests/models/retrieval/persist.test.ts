import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashCorpus } from '../../../models/retrieval/corpus-hash.ts';
import type { EmbedderInfo } from '../../../models/retrieval/embedder-types.ts';
import { IndexFormatError, StaleIndexError } from '../../../models/retrieval/errors.ts';
import { ExactIndex } from '../../../models/retrieval/exact-index.ts';
import { NodeDirStore } from '../../../node/retrieval/node-store.ts';
import { indexStatus, loadIndex, saveIndex } from '../../../models/retrieval/persist.ts';
import type { CorpusRecord } from '../../../models/retrieval/record.ts';
import { MemoryStore } from '../../../models/retrieval/store.ts';
import { roundToF16, seededUnitVectors } from '../../../models/retrieval/vectors.ts';

const DIMS = 24;
const EMBEDDER: EmbedderInfo = { model: 'test/embedder', dims: DIMS, dtype: 'fp32', pooling: 'cls', normalize: true };
const records: CorpusRecord[] = Array.from({ length: 40 }, (_, i) => ({
  id: `r${i}`, question: `Question ${i}?`, reasoning: `Reasoning ${i}.`, answer: `Answer ${i}.`, source: 'test', license: 'MIT', department: i % 2 ? 'Cardiology' : null,
}));
const vectors = seededUnitVectors(records.length, DIMS, 7);
const dir = mkdtempSync(join(tmpdir(), 'index-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('index persistence', () => {
  it('round-trips vectors and records exactly (F32, on disk)', async () => {
    const store = new NodeDirStore(join(dir, 'f32'));
    const corpusHash = await hashCorpus(records);
    const manifest = await saveIndex(store, { embedder: EMBEDDER, corpusName: 'test.jsonl', corpusHash, records, vectors });
    expect(manifest).toMatchObject({
      format: 'finemed-retrieval-index', version: 1, embeddedField: 'question', embedder: EMBEDDER,
      corpus: { hash: corpusHash, count: 40, name: 'test.jsonl' },
      vectors: { file: 'embeddings.safetensors', dtype: 'F32', count: 40, dims: DIMS },
    });
    expect(statSync(join(dir, 'f32', 'embeddings.safetensors')).size).toBe(manifest.vectors.bytes);
    expect(manifest.vectors.bytes).toBeLessThan(40 * DIMS * 4 + 256);
    const loaded = await loadIndex(store, { corpusHash, embedder: EMBEDDER });
    expect(loaded.records).toEqual(records);
    expect(Array.from(loaded.vectors)).toEqual(Array.from(vectors));
    const q = seededUnitVectors(1, DIMS, 8);
    expect(new ExactIndex(loaded.vectors, DIMS).search(q, 5)).toEqual(new ExactIndex(vectors, DIMS).search(q, 5));
  });

  it('F16 halves the vectors file and gives back the rounded values exactly', async () => {
    const store = new MemoryStore();
    const v16 = roundToF16(vectors.slice());
    const m = await saveIndex(store, { embedder: EMBEDDER, corpusName: 't', corpusHash: await hashCorpus(records), records, vectors: v16, dtype: 'F16' });
    expect(m.vectors.bytes).toBeLessThan(40 * DIMS * 2 + 256);
    const loaded = await loadIndex(store);
    expect(Array.from(loaded.vectors)).toEqual(Array.from(v16));
  });

  it('marks the index stale when the corpus or the embedder changes', async () => {
    const store = new MemoryStore();
    const corpusHash = await hashCorpus(records);
    await saveIndex(store, { embedder: EMBEDDER, corpusName: 't', corpusHash, records, vectors });
    expect((await indexStatus(store, { corpusHash, embedder: EMBEDDER })).state).toBe('fresh');

    const edited = records.map((r, i) => (i === 13 ? { ...r, answer: r.answer + ' Edited.' } : r));
    const changedHash = await hashCorpus(edited);
    expect(changedHash).not.toBe(corpusHash);
    const s1 = await indexStatus(store, { corpusHash: changedHash, embedder: EMBEDDER });
    expect(s1).toMatchObject({ state: 'stale', reasons: [expect.stringMatching(/^the corpus changed/)] });
    expect(await hashCorpus([...records].reverse())).not.toBe(corpusHash); // order matters: rows = records

    for (const change of [{ model: 'other/embedder' }, { dtype: 'q8' }, { dims: 48 }]) {
      const s = await indexStatus(store, { corpusHash, embedder: { ...EMBEDDER, ...change } });
      expect(s.state).toBe('stale');
    }
    await expect(loadIndex(store, { embedder: { ...EMBEDDER, model: 'other/embedder' } })).rejects.toBeInstanceOf(StaleIndexError);
    await expect(loadIndex(store, { corpusHash: changedHash })).rejects.toThrow(/stale: the corpus changed/);
    expect(await indexStatus(new MemoryStore(), { corpusHash })).toEqual({ state: 'missing' });
    await expect(loadIndex(new MemoryStore())).rejects.toMatchObject({ code: 'not-found' });
  });

  it('refuses truncated or tampered files with IndexFormatError', async () => {
    const sub = join(dir, 'bad');
    const store = new NodeDirStore(sub);
    await saveIndex(store, { embedder: EMBEDDER, corpusName: 't', corpusHash: await hashCorpus(records), records, vectors });
    const vecPath = join(sub, 'embeddings.safetensors');
    const full = readFileSync(vecPath);
    writeFileSync(vecPath, full.subarray(0, full.length - 10));
    await expect(loadIndex(store)).rejects.toThrow(IndexFormatError);
    writeFileSync(vecPath, full);
    const recPath = join(sub, 'records.json');
    const tampered = JSON.parse(readFileSync(recPath, 'utf8')) as CorpusRecord[];
    tampered[3].question = 'Changed?';
    writeFileSync(recPath, JSON.stringify(tampered));
    await expect(loadIndex(store)).rejects.toThrow(/does not match the corpus hash/);
    writeFileSync(join(sub, 'manifest.json'), '{"format": "something-else"}');
    await expect(loadIndex(store)).rejects.toThrow(/not a finemed-retrieval-index manifest/);
  });
});
