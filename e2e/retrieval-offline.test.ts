/**
 * The retrieval worker's "download once, then offline" side in Chromium: a corpus opens
 * lexical-only with no embedder; BM25 answers while the embedding index builds and 'auto' switches
 * to it when built; a cancelled build resumes in a fresh worker from its last checkpoint; a hub
 * embedder loads the second time from the Cache API with no request to the hub, also with the hub
 * down.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../tests/helpers/shared.ts';
import { launchChromium, newPage, ROOT, startServer, type TestServer } from './support/index.ts';

warnIfNoShared('retrieval worker builds, resume and hub cache with tiny-random-bert');

const HARNESS = 'e2e/retrieval-harness.html';
const EMBEDDER = { model: 'tiny-random-bert', allowRemoteModels: false, localModelPath: '/shared/models/', device: 'wasm' } as const;
const demoLines = readFileSync(join(ROOT, 'public', 'demo', 'demo-corpus.jsonl'), 'utf8').trim().split('\n');
const demo = (i: number): { id: string; question: string } => JSON.parse(demoLines[i]) as { id: string; question: string };

/** `n` short records: enough batches on WASM for a test to act mid-build. */
function shortCorpus(n: number, tag: string): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${tag}${i}`, question: `Question ${i} about ${['gout', 'sepsis', 'anaemia', 'asthma'][i % 4]} number ${i}?`, reasoning: 'R.', answer: 'A.' })).join('\n');
}

let server: TestServer;
let browser: Browser;
let page: Page;
beforeAll(async () => {
  server = await startServer();
  browser = await launchChromium();
  page = await newPage(browser, server.url + HARNESS);
  await page.waitForFunction(() => window.retrieval?.ready === true);
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('lexical retrieval in the worker', () => {
  it('opens the demo corpus with no embedder: lexical only, and says lexical answered', async () => {
    const q = demo(17);
    const r = await page.evaluate(async ({ q }) => {
      const c = window.retrieval.newClient();
      const statuses: string[] = [];
      c.onStatus((s) => statuses.push(`${s.retrievers.lexical}/${s.retrievers.embedding}`));
      const info = await c.openIndex({ corpus: { kind: 'url', url: '/demo/demo-corpus.jsonl' } });
      const hit = await c.retrieve(q, 3);
      const embedding = await window.harness.settle(c.retrieve(q, 3, { retriever: 'embedding' }));
      const status = await c.status();
      c.terminate();
      return { info, hit, embedding, status, statuses };
    }, { q: q.question });
    expect(r.info).toMatchObject({ corpus: { name: 'demo-corpus.jsonl', count: 40 }, manifest: null, kind: null, retrievers: { lexical: 'ready', embedding: 'none' } });
    expect(r.info.embedderNote).toMatch(/No embedder is loaded/);
    expect(r.hit).toMatchObject({ retriever: 'lexical', corpus: 'demo-corpus.jsonl', results: [{ record: { id: q.id }, rank: 0 }, {}, {}] });
    expect(r.hit.results[0].score).toBeGreaterThan(0.99);
    expect(r.hit.results[0].bm25).toBeGreaterThan(r.hit.results[1].bm25!);
    expect(r.embedding).toMatchObject({ ok: false, code: 'invalid-input', message: expect.stringMatching(/not ready: no embedder is loaded/) });
    expect(r.status).toMatchObject({ auto: 'lexical', corpus: { count: 40 }, embedder: null });
    expect(r.statuses).toContain('ready/none');
  });
});

describe.skipIf(!HAS_SHARED)('embedding builds in the worker (tiny-random-bert on WASM)', () => {
  it('answers lexically while the embedding index builds, then auto switches to embedding', async () => {
    const text = shortCorpus(480, 'sw');
    const r = await page.evaluate(async ({ text, spec }) => {
      const c = window.retrieval.newClient();
      await c.initEmbedder(spec);
      const statuses: string[] = [];
      c.onStatus((s) => statuses.push(`${s.retrievers.embedding}/${s.auto}`));
      const during: Promise<unknown>[] = [];
      const info = await c.openIndex({ corpus: { kind: 'text', text, name: 'switch' } }, (p) => {
        if (p.phase === 'embed' && p.done > 0 && p.done < p.total && during.length === 0) {
          during.push(c.retrieve('Question 7 about asthma number 7?', 1), window.harness.settle(c.retrieve('x', 1, { retriever: 'embedding' })));
        }
      });
      const [lexical, embeddingEarly] = await Promise.all(during) as [Awaited<ReturnType<typeof c.retrieve>>, { ok: boolean; message?: string }];
      const after = await c.retrieve('Question 7 about asthma number 7?', 1);
      c.terminate();
      return { info, lexical, embeddingEarly, after, statuses };
    }, { text, spec: EMBEDDER });
    expect(r.lexical).toMatchObject({ retriever: 'lexical', results: [{ record: { id: 'sw7' } }] });
    expect(r.embeddingEarly).toMatchObject({ ok: false, message: expect.stringMatching(/not ready: it is being built/) });
    expect(r.info).toMatchObject({ kind: 'voy', retrievers: { lexical: 'ready', embedding: 'ready' }, manifest: { corpus: { count: 480 } } });
    expect(r.after).toMatchObject({ retriever: 'embedding', results: [{ record: { id: 'sw7' } }] });
    expect(r.statuses.indexOf('building/lexical')).toBeGreaterThanOrEqual(0);
    expect(r.statuses.indexOf('building/lexical')).toBeLessThan(r.statuses.indexOf('ready/embedding'));
  });

  it('resumes a cancelled build in a fresh worker from its last checkpoint, with texts/s in progress', async () => {
    const text = shortCorpus(600, 'rs');
    const r = await page.evaluate(async ({ text, spec }) => {
      const a = window.retrieval.newClient();
      await a.initEmbedder(spec);
      const call = a.openIndex({ corpus: { kind: 'text', text, name: 'resume' }, checkpointRows: 64 }, (p) => {
        if (p.phase === 'embed' && p.done >= 150) call.cancel();
      });
      const cancelled = await window.harness.settle(call);
      const afterCancel = await a.status();
      const listed = (await a.listIndexes()).filter((l) => l.key.startsWith('resume'));
      a.terminate();

      const b = window.retrieval.newClient(); // a reload: a new worker over the same OPFS
      await b.initEmbedder(spec);
      const embeds: { done: number; resumedFrom?: number; textsPerSecond?: number; etaMs?: number }[] = [];
      const info = await b.openIndex({ corpus: { kind: 'stored', name: 'resume' }, checkpointRows: 64 }, (p) => {
        if (p.phase === 'embed') embeds.push({ done: p.done, resumedFrom: p.resumedFrom, textsPerSecond: p.textsPerSecond, etaMs: p.etaMs });
      });
      const hit = await b.retrieve('Question 321 about sepsis number 321?', 1);
      b.terminate();
      return { cancelled, afterCancel, listed, embeds, info, hit };
    }, { text, spec: EMBEDDER });
    expect(r.cancelled).toMatchObject({ ok: false, code: 'aborted' });
    expect(r.afterCancel).toMatchObject({ retrievers: { lexical: 'ready', embedding: 'partial' }, auto: 'lexical' });
    const saved = r.afterCancel.build!.done;
    expect(saved).toBeGreaterThanOrEqual(128);
    expect(saved % 64).toBe(0);
    expect(saved).toBeLessThan(600);
    expect(r.listed).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'embedding', manifest: null, partial: expect.objectContaining({ done: saved, total: 600 }) })]));
    expect(r.embeds[0]).toMatchObject({ done: saved, resumedFrom: saved }); // the first event of a phase is never throttled
    expect(r.embeds.every((p) => p.done >= saved && p.resumedFrom === saved)).toBe(true);
    expect(r.embeds.some((p) => (p.textsPerSecond ?? 0) > 0 && (p.etaMs ?? -1) >= 0)).toBe(true);
    expect(r.embeds.at(-1)).toMatchObject({ done: 600 });
    expect(r.info).toMatchObject({ resumedFrom: saved, retrievers: { embedding: 'ready' }, manifest: { corpus: { count: 600 }, build: { resumedFrom: saved } } });
    expect(r.hit).toMatchObject({ retriever: 'embedding', results: [{ record: { id: 'rs321' } }] });
    console.log(`[retrieval e2e] resumed from row ${saved} of 600; texts/s in Chromium WASM (tiny-random-bert): ${r.embeds.at(-1)?.textsPerSecond?.toFixed(0)}`);
  });
});

/** tiny-random-bert as the hub serves a repo (`<repo>/resolve/main/<file>`), cross-origin with CORS; logs every request. */
async function startModelHub(): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const srv: Server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, ETag');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Headers', 'Range');
      res.statusCode = 204;
      return res.end();
    }
    requests.push(`${req.method} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const m = req.url?.match(/^\/test-org\/tiny-bge\/resolve\/main\/(.+)$/);
    const path = m ? sharedPath('models', 'tiny-random-bert', decodeURIComponent(m[1])) : '';
    if (!m || !existsSync(path)) {
      res.statusCode = 404;
      return res.end();
    }
    const body = readFileSync(path);
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d+)$/);
    if (range) {
      const [s, e] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${s}-${e}/${body.length}`);
      return res.end(body.subarray(s, e + 1));
    }
    res.setHeader('Content-Length', body.length);
    res.end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`, requests, close: () => new Promise((r) => srv.close(() => r())) };
}

describe.skipIf(!HAS_SHARED)('a hub embedder and the browser cache', () => {
  it('downloads once; a fresh worker loads it from the Cache API with zero hub requests, also with the hub down', async () => {
    const hub = await startModelHub();
    const spec = { model: 'test-org/tiny-bge', hub: hub.url, allowRemoteModels: true, device: 'wasm' } as const;
    const load = (s: object) => page.evaluate(async (s) => {
      const c = window.retrieval.newClient();
      const r = await window.harness.settle(c.initEmbedder(s as never));
      const v = r.ok ? Array.from((await c.embed(['What causes gout?'])).vectors) : [];
      c.terminate();
      return { r, v };
    }, s);
    try {
      const first = await load(spec);
      expect(first.r).toMatchObject({ ok: true, value: { fromCache: false, source: { kind: 'hub', hub: hub.url, repo: 'test-org/tiny-bge', revision: 'main' } } });
      const downloaded = hub.requests.length;
      expect(hub.requests.filter((x) => x.startsWith('GET /test-org/tiny-bge/resolve/main/onnx/model.onnx') && !x.includes('bytes='))).toHaveLength(1);

      const second = await load(spec);
      expect(second.r).toMatchObject({ ok: true, value: { fromCache: true } });
      expect(hub.requests.slice(downloaded)).toEqual([]);
      expect(second.v).toEqual(first.v);

      // transformers.js on its own (no cache-first load): what does a cached second load ask the hub?
      const plain = await load({ ...spec, cacheFirst: false });
      expect(plain.r.ok).toBe(true);
      console.log(`[retrieval e2e] cached load without cacheFirst: ${hub.requests.length - downloaded} hub request(s): ${JSON.stringify(hub.requests.slice(downloaded))}`);
    } finally {
      await hub.close();
    }
    const offline = await load(spec);
    expect(offline.r).toMatchObject({ ok: true, value: { fromCache: true } });

    // An index built with it reopens in a fresh worker with its embedder, from the cache (the hub is down).
    const reopened = await page.evaluate(async ({ spec, text, q }) => {
      const a = window.retrieval.newClient();
      await a.initEmbedder(spec as never);
      await a.openIndex({ corpus: { kind: 'text', text, name: 'hub-source' } });
      a.terminate();
      const b = window.retrieval.newClient();
      const info = await b.openIndex({ corpus: { kind: 'stored', name: 'hub-source' } });
      const hit = await b.retrieve(q, 1);
      const status = await b.status();
      b.terminate();
      return { info, hit, status };
    }, { spec, text: demoLines.slice(0, 20).join('\n'), q: demo(12).question });
    expect(reopened.info).toMatchObject({ previous: 'fresh', retrievers: { embedding: 'ready' }, manifest: { embedderSource: { kind: 'hub', repo: 'test-org/tiny-bge' } } });
    expect(reopened.info.embedderNote).toBeUndefined();
    expect(reopened.hit).toMatchObject({ retriever: 'embedding', results: [{ record: { id: demo(12).id } }] });
    expect(reopened.status.embedder).toMatchObject({ fromCache: true, source: { kind: 'hub', hub: hub.url } });

    const cache = await page.evaluate(async (hubUrl) => {
      const c = window.retrieval.newClient();
      const spec = { model: 'test-org/tiny-bge', hub: hubUrl };
      const before = await c.checkEmbedder(spec);
      const del = await c.deleteEmbedder(spec);
      const after = await c.checkEmbedder(spec);
      c.terminate();
      return { before, del, after };
    }, hub.url);
    expect(cache.before).toMatchObject({ cached: true, files: [{ file: 'config.json', cached: true }, {}, {}, { file: 'onnx/model.onnx', cached: true }] });
    expect(cache.before.bytes).toBeGreaterThan(100_000);
    expect(cache.del.deleted).toBe(4);
    expect(cache.after).toMatchObject({ cached: false, bytes: 0 });
  });
});
