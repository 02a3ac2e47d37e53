import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOrBuildIndex, type BuildProgress } from '../../../models/retrieval/build.ts';
import type { Embedder } from '../../../models/retrieval/embedder-types.ts';
import { readJsonlCorpus } from '../../../models/retrieval/jsonl.ts';
import { loadNodeEmbedder } from '../../../node/retrieval/node-embedder.ts';
import { loadIndex } from '../../../models/retrieval/persist.ts';
import type { CorpusRecord } from '../../../models/retrieval/record.ts';
import { Retriever } from '../../../models/retrieval/retriever.ts';
import { MemoryStore } from '../../../models/retrieval/store.ts';
import { loadVoyNode } from '../../../node/retrieval/voy-node.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('traces.jsonl indexed end to end with tiny-random-bert');

describe.skipIf(!HAS_SHARED)('traces.jsonl end to end: import, embed, persist, retrieve', () => {
  let embedder: Embedder;
  let records: CorpusRecord[];
  const store = new MemoryStore();
  beforeAll(async () => {
    embedder = await loadNodeEmbedder(sharedPath('models', 'tiny-random-bert'), { batchSize: 32 });
    records = (await readJsonlCorpus(createReadStream(sharedPath('data', 'traces.jsonl')), { onBadLine: 'stop' })).records;
  });
  afterAll(() => embedder?.dispose());

  it('indexes all 1,747 records and finds each sampled question as its own top hit', async () => {
    const phases = new Set<string>();
    let embedDone = 0;
    const { data, previous } = await openOrBuildIndex(store, records, embedder, {
      corpusName: 'traces.jsonl',
      onProgress: (p: BuildProgress) => {
        phases.add(p.phase);
        if (p.phase === 'embed') embedDone = p.done;
      },
    });
    expect(previous.state).toBe('missing');
    expect([...phases]).toEqual(['hash', 'embed', 'save']);
    expect(embedDone).toBe(1747);
    expect(data.manifest.corpus.count).toBe(1747);
    const retriever = await Retriever.create(data, embedder, { voy: await loadVoyNode() });
    for (const i of [0, 500, 1746]) {
      const { results, timings } = await retriever.retrieve(records[i].question, 5);
      expect(results[0].record.id).toBe(records[i].id);
      expect(results[0].score).toBeCloseTo(1, 5);
      expect(results.map((r) => r.rank)).toEqual([0, 1, 2, 3, 4]);
      expect(timings.totalMs).toBeGreaterThanOrEqual(timings.searchMs);
    }
    retriever.dispose();
  });

  it('opens the stored index without re-embedding when it is fresh', async () => {
    const phases = new Set<string>();
    const { previous, data } = await openOrBuildIndex(store, records, embedder, { corpusName: 'traces.jsonl', onProgress: (p) => phases.add(p.phase) });
    expect(previous.state).toBe('fresh');
    expect(phases.has('embed')).toBe(false);
    expect(data.records).toHaveLength(1747);
  });

  it('with F16 vectors, a reloaded index returns exactly what the built one did', async () => {
    const small = records.slice(0, 200);
    const s16 = new MemoryStore();
    const { data } = await openOrBuildIndex(s16, small, embedder, { corpusName: 't', dtype: 'F16' });
    expect(data.manifest.vectors.dtype).toBe('F16');
    const a = await Retriever.create(data, embedder, { index: 'exact' });
    const b = await Retriever.create(await loadIndex(s16), embedder, { index: 'exact' });
    const q = small[17].question;
    expect((await b.retrieve(q, 5)).results).toEqual((await a.retrieve(q, 5)).results);
    await expect(a.retrieve('   ', 5)).rejects.toMatchObject({ code: 'invalid-input' });
  });

  it('refuses to search an index with an embedder other than the one that built it', async () => {
    const other = await loadNodeEmbedder(sharedPath('models', 'tiny-random-bert'), { dtype: 'q8' });
    try {
      await expect(Retriever.create(await loadIndex(store), other, { index: 'exact' })).rejects.toThrow(/dtype changed \(fp32 -> q8\)/);
    } finally {
      await other.dispose();
    }
  });
});
