import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AbortError } from '../../../models/errors.ts';
import { DimensionsError } from '../../../models/retrieval/errors.ts';
import { ExactIndex } from '../../../models/retrieval/exact-index.ts';
import { chooseIndexKind } from '../../../models/retrieval/index-kind.ts';
import { readJsonlCorpus } from '../../../models/retrieval/jsonl.ts';
import { Retriever } from '../../../models/retrieval/retriever.ts';
import { corpusKey, indexKey, RetrievalSession, type SessionEnv } from '../../../models/retrieval/session.ts';
import type { EmbedderSpec, RetrievalProgress, RetrievalStatus } from '../../../models/retrieval/session-types.ts';
import { MemoryStore } from '../../../models/retrieval/store.ts';
import { UrlStore } from '../../../models/retrieval/url-store.ts';
import { loadVoyNode } from '../../../node/retrieval/voy-node.ts';
import { ROOT } from '../../helpers/shared.ts';
import { FakeEmbedder, type FakeEmbedderOptions } from './fake-embedder.ts';

const demo = readFileSync(join(ROOT, 'public', 'demo', 'demo-corpus.jsonl'), 'utf8');
const demoRecords = (await readJsonlCorpus(demo)).records;

/** A session over in-memory stores (shared by sessions made from the same env: a "reload"). */
function memoryEnv(makeEmbedder: (spec: EmbedderSpec) => FakeEmbedder = () => new FakeEmbedder()) {
  const stores = new Map<string, MemoryStore>();
  const loaded: EmbedderSpec[] = [];
  const env: SessionEnv = {
    openStore: async (key) => {
      if (!stores.has(key)) stores.set(key, new MemoryStore());
      return { store: stores.get(key)!, storage: 'memory' };
    },
    // A store exists once it holds a file (OPFS lists folders, which the worker creates on open).
    listKeys: async () => [...stores.entries()].filter(([, s]) => s.files.size > 0).map(([k]) => k).sort(),
    removeKey: async (key) => void stores.delete(key),
    urlStore: (url) => new UrlStore(url),
    loadVoy: loadVoyNode,
    loadEmbedder: async (spec) => {
      loaded.push(spec);
      return makeEmbedder(spec);
    },
  };
  return { env, stores, loaded };
}

function statusLog(session: RetrievalSession): RetrievalStatus[] {
  const log: RetrievalStatus[] = [];
  session.onStatus((s) => log.push(s));
  return log;
}

const text = { kind: 'text' as const, text: demo, name: 'demo' };

describe('retrieval session: lexical first, embedding when ready', () => {
  it('opens a corpus with no embedder lexical-only; retrieve says lexical answered', async () => {
    const { env, stores } = memoryEnv();
    const session = new RetrievalSession(env);
    const info = await session.openIndex({ corpus: text });
    expect(info).toMatchObject({
      corpus: { name: 'demo', count: 40, key: 'corpus~demo' }, key: null, manifest: null, kind: null,
      retrievers: { lexical: 'ready', embedding: 'none' }, embedderNote: expect.stringMatching(/No embedder is loaded: lexical retrieval only/),
    });
    const r = await session.retrieve(demoRecords[4].question, 3);
    expect(r).toMatchObject({ retriever: 'lexical', corpus: 'demo', results: [{ record: { id: demoRecords[4].id }, rank: 0 }, {}, {}] });
    expect(r.results[0].score).toBeGreaterThan(0.99);
    await expect(session.retrieve('x', 3, 'embedding')).rejects.toMatchObject({ code: 'invalid-input', message: expect.stringMatching(/not ready: no embedder is loaded/) });
    // The corpus is stored, so it reopens without the file.
    expect(stores.get(corpusKey('demo'))!.files.has('records.json')).toBe(true);
    const again = new RetrievalSession(env);
    expect((await again.openIndex({ corpus: { kind: 'stored', name: 'demo' } })).retrievers).toEqual({ lexical: 'ready', embedding: 'none' });
    expect((await again.retrieve(demoRecords[11].question, 1)).results[0].record.id).toBe(demoRecords[11].id);
  });

  it('serves lexical while the embedding index builds, then auto switches to embedding', async () => {
    const { env } = memoryEnv(() => new FakeEmbedder({ delayMs: 2 }));
    const session = new RetrievalSession(env);
    const log = statusLog(session);
    await session.initEmbedder({ allowRemoteModels: false });
    const during: string[] = [];
    const pending: Promise<unknown>[] = [];
    const info = await session.openIndex({ corpus: text, checkpointRows: 8 }, undefined, (p) => {
      if (p.phase === 'embed' && p.done > 0 && p.done < p.total && pending.length < 2) {
        pending.push(session.retrieve(demoRecords[2].question, 1).then((r) => during.push(String(r.retriever))));
      }
    });
    await Promise.all(pending);
    expect(during).toEqual(['lexical', 'lexical']);
    expect(info).toMatchObject({ key: indexKey('demo', 'test/fake-embedder'), kind: 'voy', previous: 'missing', retrievers: { lexical: 'ready', embedding: 'ready' } });
    const after = await session.retrieve(demoRecords[2].question, 1);
    expect(after).toMatchObject({ retriever: 'embedding', results: [{ record: { id: demoRecords[2].id } }] });
    expect(after.results[0].score).toBeCloseTo(1, 5);
    expect((await session.retrieve(demoRecords[2].question, 1, 'lexical')).retriever).toBe('lexical');
    // Status events: embedder loaded, lexical ready, building, embedding ready.
    const states = log.map((s) => `${s.retrievers.lexical}/${s.retrievers.embedding}/${s.auto}`);
    expect(states).toEqual(expect.arrayContaining(['ready/none/lexical', 'ready/building/lexical', 'ready/ready/embedding']));
    expect(states.indexOf('ready/building/lexical')).toBeLessThan(states.indexOf('ready/ready/embedding'));
    expect(session.status()).toMatchObject({ corpus: { name: 'demo', count: 40 }, auto: 'embedding', index: { kind: 'voy' } });
  });

  it('resumes a cancelled build from its last checkpoint, reporting texts/s; the result equals a one-shot build', async () => {
    const embedders: FakeEmbedder[] = [];
    const { env } = memoryEnv(() => {
      embedders.push(new FakeEmbedder({ batchSize: 4, delayMs: 1 }));
      return embedders.at(-1)!;
    });
    const s1 = new RetrievalSession(env);
    await s1.initEmbedder({ allowRemoteModels: false });
    const ac = new AbortController();
    const first: RetrievalProgress[] = [];
    const err = await s1.openIndex({ corpus: text, checkpointRows: 8 }, ac.signal, (p) => {
      if (p.phase === 'embed') first.push(p);
      if (p.phase === 'embed' && p.done >= 20) ac.abort(); // mid third checkpoint (rows 16..23)
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    // Lexical still serves; the stored partial build holds the two finished checkpoints.
    expect(s1.status()).toMatchObject({ retrievers: { lexical: 'ready', embedding: 'partial' }, build: { done: 16, total: 40 } });
    expect((await s1.retrieve(demoRecords[1].question, 1)).retriever).toBe('lexical');
    expect(first.some((p) => (p.textsPerSecond ?? 0) > 0 && (p.etaMs ?? -1) >= 0)).toBe(true);
    const listed = await s1.listIndexes();
    expect(listed.find((l) => l.key === indexKey('demo', 'test/fake-embedder'))).toMatchObject({ type: 'embedding', manifest: null, partial: { done: 16, total: 40 } });
    expect(listed.find((l) => l.key === 'corpus~demo')).toMatchObject({ type: 'corpus', corpus: { name: 'demo', count: 40 } });

    // "Reload": a new session over the same storage resumes at row 16.
    const s2 = new RetrievalSession(env);
    await s2.initEmbedder({ allowRemoteModels: false });
    const second: RetrievalProgress[] = [];
    const info = await s2.openIndex({ corpus: { kind: 'stored', name: 'demo' }, checkpointRows: 8 }, undefined, (p) => {
      if (p.phase === 'embed') second.push(p);
    });
    expect(second[0]).toMatchObject({ done: 16, resumedFrom: 16 });
    expect(second.at(-1)).toMatchObject({ done: 40, total: 40, textsPerSecond: expect.any(Number) });
    expect(embedders[1].embedded).toEqual(demoRecords.slice(16).map((r) => r.question)); // rows 0..15 not embedded again
    expect(info).toMatchObject({ resumedFrom: 16, previous: 'missing', manifest: { corpus: { count: 40 }, build: { resumedFrom: 16 } } });

    const oneShot = new RetrievalSession(memoryEnv().env);
    await oneShot.initEmbedder({ allowRemoteModels: false });
    await oneShot.openIndex({ corpus: text });
    for (const row of [0, 15, 16, 39]) {
      const q = demoRecords[row].question;
      expect((await s2.retrieve(q, 5)).results).toEqual((await oneShot.retrieve(q, 5)).results);
    }
    // The partial files are gone once the index is complete.
    const done = (await s2.listIndexes()).find((l) => l.key === indexKey('demo', 'test/fake-embedder'));
    expect(done).toMatchObject({ manifest: { build: { resumedFrom: 16 } } });
    expect(done?.partial).toBeUndefined();
  });

  it('reopens a stored index with the embedder it was built with, from the cache only; lexical-only if that fails', async () => {
    const source = { kind: 'hub' as const, hub: 'http://127.0.0.1:1/', repo: 'test/fake-embedder', revision: 'main' };
    let fail = false;
    const { env, loaded } = memoryEnv(() => {
      if (fail) throw new Error('not in the cache');
      return new FakeEmbedder({ source });
    });
    const s1 = new RetrievalSession(env);
    await s1.initEmbedder({ allowRemoteModels: true, hub: source.hub });
    const built = await s1.openIndex({ corpus: text });
    expect(built.manifest?.embedderSource).toEqual(source);

    const s2 = new RetrievalSession(env);
    const reopened = await s2.openIndex({ corpus: { kind: 'stored', name: 'demo' } });
    expect(loaded.at(-1)).toEqual({ model: 'test/fake-embedder', hub: source.hub, revision: 'main', dtype: 'fp32', allowRemoteModels: false });
    expect(reopened).toMatchObject({ previous: 'fresh', retrievers: { embedding: 'ready' } });
    expect((await s2.retrieve(demoRecords[8].question, 1)).retriever).toBe('embedding');

    fail = true;
    const s3 = new RetrievalSession(env);
    const lexicalOnly = await s3.openIndex({ corpus: { kind: 'stored', name: 'demo' } });
    expect(lexicalOnly).toMatchObject({ retrievers: { lexical: 'ready', embedding: 'none' }, embedderNote: expect.stringMatching(/could not be loaded from the cache \(not in the cache\)/) });
    expect((await s3.retrieve(demoRecords[8].question, 1)).retriever).toBe('lexical');
  });

  it('picks exact search for 1024-dim embeddings (voy refuses them) and says so', async () => {
    const { env } = memoryEnv(() => new FakeEmbedder({ model: 'test/large', dims: 1024 }));
    const session = new RetrievalSession(env);
    await session.initEmbedder({ allowRemoteModels: false });
    const info = await session.openIndex({ corpus: { kind: 'text', text: demo.split('\n').slice(0, 12).join('\n'), name: 'large' }, index: 'voy' });
    expect(info).toMatchObject({ kind: 'exact', kindNote: expect.stringMatching(/^voy-search refuses 1024 dims .*exact search is used/) });
    expect(session.status().index).toMatchObject({ kind: 'exact', note: expect.stringMatching(/1024 dims/) });
    expect((await session.retrieve(demoRecords[3].question, 1)).results[0].record.id).toBe(demoRecords[3].id);
    expect(chooseIndexKind('auto', 1024).kind).toBe('exact');
    expect(chooseIndexKind('auto', 768)).toEqual({ kind: 'voy' });
    // The low-level voy index refuses outright.
    const e = new FakeEmbedder({ model: 'test/large', dims: 1024 });
    const vectors = await e.embed(['a b', 'c d']);
    const data = { manifest: { embedder: e.info, vectors: { dims: 1024 } }, vectors, records: demoRecords.slice(0, 2) } as never;
    await expect(Retriever.create(data, e, { index: 'voy', voy: await loadVoyNode() })).rejects.toBeInstanceOf(DimensionsError);
    expect(new ExactIndex(vectors, 1024).size).toBe(2);
  });

  it('estimates the build time: assumed before a measurement, measured after', async () => {
    const { env } = memoryEnv(() => new FakeEmbedder({ model: 'Xenova/bge-base-en-v1.5', dims: 8 }));
    const session = new RetrievalSession(env);
    expect(await session.estimate({ model: 'Xenova/bge-base-en-v1.5', device: 'wasm', texts: 32919 })).toMatchObject({ basis: 'assumed', textsPerSecond: 6, seconds: 32919 / 6 });
    await session.initEmbedder({ allowRemoteModels: false });
    await session.openIndex({ corpus: text, embeddings: 'none' });
    expect(await session.estimate()).toMatchObject({ basis: 'assumed', texts: 40, device: 'cpu' });
    const measured = await session.estimate({ measure: true });
    expect(measured.basis).toBe('measured');
    expect(measured.textsPerSecond).toBeGreaterThan(0);
    expect(measured.seconds).toBeCloseTo(40 / measured.textsPerSecond, 6);
  });

  it('retrieve before any corpus, and an unknown retriever, are typed errors; delete closes the active corpus', async () => {
    const { env } = memoryEnv();
    const session = new RetrievalSession(env);
    await expect(session.retrieve('q', 1)).rejects.toMatchObject({ code: 'invalid-input', message: expect.stringMatching(/No index is open/) });
    await session.openIndex({ corpus: text });
    await expect(session.retrieve('q', 1, 'bm42' as never)).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(session.openIndex({ corpus: { kind: 'stored', name: 'never-imported' } })).rejects.toMatchObject({ code: 'not-found' });
    expect(await session.deleteIndex('corpus~demo')).toEqual({ deleted: true });
    expect(session.status()).toMatchObject({ corpus: null, retrievers: { lexical: 'none', embedding: 'none' }, auto: null });
  });
});
