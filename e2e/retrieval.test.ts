/**
 * The retrieval worker in Chromium through e2e/retrieval-harness.html: the embedder matches Node,
 * indexes persist in OPFS and reload identically in a fresh worker, stale indexes are detected,
 * an index built by the Node code loads in the browser, and the demo corpus retrieves with no
 * network beyond the local server.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../models/retrieval/build.ts';
import type { Embedder } from '../models/retrieval/embedder-types.ts';
import { loadNodeEmbedder } from '../node/retrieval/node-embedder.ts';
import { NodeDirStore } from '../node/retrieval/node-store.ts';
import { Retriever } from '../models/retrieval/retriever.ts';
import { readJsonlCorpus } from '../models/retrieval/jsonl.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../tests/helpers/shared.ts';
import { fineMedParquet, fineMedRows, startFakeHub } from '../tests/models/retrieval/finemed-fixture.ts';
import { launchChromium, newPage, ROOT, startServer, type TestServer } from './support/index.ts';

warnIfNoShared('retrieval worker e2e with tiny-random-bert');

const HARNESS = 'e2e/retrieval-harness.html';
const EMBEDDER = { model: 'tiny-random-bert', allowRemoteModels: false, localModelPath: '/shared/models/', device: 'wasm' } as const;
const DEMO_URL = '/demo/demo-corpus.jsonl';
const demoText = readFileSync(join(ROOT, 'public', 'demo', 'demo-corpus.jsonl'), 'utf8');
const demoLines = demoText.trim().split('\n');
const question = (i: number): string => (JSON.parse(demoLines[i]) as { question: string }).question;
const idOf = (i: number): string => (JSON.parse(demoLines[i]) as { id: string }).id;

let server: TestServer;
let browser: Browser;
let page: Page;
let node: Embedder;
beforeAll(async () => {
  server = await startServer();
  browser = await launchChromium();
  page = await newPage(browser, server.url + HARNESS);
  await page.waitForFunction(() => window.retrieval?.ready === true);
  if (HAS_SHARED) node = await loadNodeEmbedder(sharedPath('models', 'tiny-random-bert'));
});
afterAll(async () => {
  await node?.dispose();
  await browser?.close();
  await server?.close();
});

describe('retrieval worker misuse', () => {
  it('retrieve before an index, and a missing model, are typed errors', async () => {
    const r = await page.evaluate(async () => {
      const c = window.retrieval.newClient();
      const { settle } = window.harness;
      const early = await settle(c.retrieve('anything', 3));
      const missing = await settle(c.initEmbedder({ model: 'no-such-model', allowRemoteModels: false, localModelPath: '/shared/models/', device: 'wasm' }));
      c.terminate();
      return { early, missing };
    });
    expect(r.early).toMatchObject({ ok: false, code: 'invalid-input', message: expect.stringMatching(/No index is open/) });
    expect(r.missing).toMatchObject({ ok: false, code: 'not-found', message: expect.stringMatching(/no-such-model/) });
  });
});

describe.skipIf(!HAS_SHARED)('retrieval worker with tiny-random-bert', () => {
  it('embeds like Node within 1e-4: unit vectors of 32 dims, batch order kept', async () => {
    const texts = [question(0), 'What causes gout?', question(5).slice(0, 200), 'Hyponatraemia', question(12)];
    const browserVectors = await page.evaluate(async ({ texts, spec }) => {
      const c = window.retrieval.client;
      await c.initEmbedder(spec);
      const { vectors, dims } = await c.embed(texts);
      return { vectors: Array.from(vectors), dims };
    }, { texts, spec: EMBEDDER });
    const nodeVectors = await node.embed(texts);
    expect(browserVectors.dims).toBe(32);
    expect(browserVectors.vectors).toHaveLength(nodeVectors.length);
    let maxDiff = 0;
    browserVectors.vectors.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - nodeVectors[i]))));
    expect(maxDiff).toBeLessThan(1e-4);
    for (let i = 0; i < texts.length; i++) expect(Math.hypot(...browserVectors.vectors.slice(i * 32, (i + 1) * 32))).toBeCloseTo(1, 5);
  });

  it('cancels an index build in flight with an aborted error', async () => {
    // Many short texts: embedding them takes seconds in small steps, so the cancel lands between batches.
    const text = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: `c${i}`, question: `Short question number ${i}?`, reasoning: 'R.', answer: 'A.' })).join('\n');
    const r = await page.evaluate(async ({ text, spec }) => {
      const c = window.retrieval.newClient();
      await c.initEmbedder(spec);
      const phases: string[] = [];
      const call = c.openIndex({ corpus: { kind: 'text', text, name: 'cancelled' } }, (p) => {
        phases.push(p.phase);
        if (p.phase === 'embed' && p.done > 0) call.cancel();
      });
      const out = await window.harness.settle(call);
      const listed = await c.listIndexes();
      c.terminate();
      return { out, embedded: phases.filter((p) => p === 'embed').length, saved: phases.includes('save'), listed: listed.map((l) => [l.key, l.manifest]) };
    }, { text, spec: EMBEDDER });
    expect(r.out).toMatchObject({ ok: false, code: 'aborted' });
    expect(r.saved).toBe(false); // stopped while embedding: nothing half-built is stored
    expect(r.listed.filter(([key]) => String(key).startsWith('cancelled'))).toEqual([['cancelled__tiny-random-bert', null]]);
  });

  it('downloads FineMed-DPO from a hub-shaped server (parquet by range) and retrieves from it', async () => {
    const rows = fineMedRows(24);
    const hub = await startFakeHub({
      repo: 'hongzhouyu/FineMed-DPO', cors: true, license: 'mit',
      files: new Map([['data/train-00000-of-00001.parquet', fineMedParquet(rows)]]),
    });
    try {
      const r = await page.evaluate(async ({ hub, spec, q }) => {
        const c = window.retrieval.client;
        await c.initEmbedder(spec);
        const phases = new Set<string>();
        const info = await c.openIndex({ corpus: { kind: 'finemed-dpo', hub } }, (p) => phases.add(p.phase));
        const res = await c.retrieve(q, 3);
        return { count: info.corpus.count, name: info.corpus.name, phases: [...phases], top: res.results[0].record };
      }, { hub: hub.url, spec: EMBEDDER, q: 'Why does hypokalaemia occur with vomiting? (case 11)' });
      expect(r).toMatchObject({ count: 24, name: 'FineMed-DPO', top: { id: 'finemed-dpo-11', license: 'mit', answer: expect.stringMatching(/^Renal potassium loss/) } });
      expect(r.phases).toEqual(expect.arrayContaining(['download', 'embed', 'save', 'index']));
      expect(hub.requests.some((x) => x.startsWith('GET /api/datasets/hongzhouyu/FineMed-DPO/tree/main/data'))).toBe(true);
    } finally {
      await hub.close();
    }
  });

  it('persists in OPFS: a fresh worker reloads the index and returns identical results; changes mark it stale', async () => {
    const corpus = demoLines.slice(0, 20).join('\n');
    const edited = corpus.replace('"source": "demo"', '"source": "demo (edited)"');
    expect(edited).not.toBe(corpus);
    const r = await page.evaluate(async ({ corpus, edited, q, spec }) => {
      const { settle } = window.harness;
      const a = window.retrieval.newClient();
      await a.initEmbedder(spec);
      const built = await a.openIndex({ corpus: { kind: 'text', text: corpus, name: 'roundtrip' } });
      const before = await a.retrieve(q, 5);
      a.terminate();

      const b = window.retrieval.newClient();
      await b.initEmbedder(spec);
      const stored = await b.openIndex({ corpus: { kind: 'stored', name: 'roundtrip' } });
      const after = await b.retrieve(q, 5);
      const again = await b.openIndex({ corpus: { kind: 'text', text: corpus, name: 'roundtrip' }, index: 'exact' });
      const exact = await b.retrieve(q, 5);
      const changed = await b.openIndex({ corpus: { kind: 'text', text: edited, name: 'roundtrip' } });
      await b.initEmbedder({ ...spec, dtype: 'q8' });
      const otherEmbedder = await settle(b.openIndex({ corpus: { kind: 'stored', name: 'roundtrip' } }));
      const listed = await b.listIndexes();
      b.terminate();
      const ids = (x: typeof before) => x.results.map((h) => [h.record.id, h.score]);
      return {
        built: { previous: built.previous, storage: built.storage, count: built.corpus.count },
        stored: stored.previous, again: again.previous, changed: [changed.previous, changed.staleReasons],
        before: ids(before), after: ids(after), exact: ids(exact), otherEmbedder,
        listed: listed.filter((l) => l.key.startsWith('roundtrip')).map((l) => [l.key, l.storage, l.manifest?.corpus.count]),
      };
    }, { corpus, edited, q: question(3), spec: EMBEDDER });
    expect(r.built).toEqual({ previous: 'missing', storage: 'opfs', count: 20 });
    expect(r.stored).toBe('fresh');
    expect(r.after).toEqual(r.before);
    expect(r.before[0]).toEqual([idOf(3), expect.closeTo(1, 5)]);
    expect(r.again).toBe('fresh');
    expect(r.exact).toEqual(r.before); // voy and the exact scan agree
    expect(r.changed).toEqual(['stale', [expect.stringMatching(/^the corpus changed/)]]);
    // The stored corpus is embedded again with the other embedder, from the stored records (offline).
    expect(r.otherEmbedder).toMatchObject({ ok: true, value: { previous: 'stale', staleReasons: [expect.stringMatching(/the embedder's dtype changed \(fp32 -> q8\)/)] } });
    expect(r.listed).toEqual([['roundtrip__tiny-random-bert', 'opfs', 20]]);
  });

  it('loads an index built by the Node code (CLI format) and ranks like Node', async () => {
    const dir = join(ROOT, 'node_modules', '.cache', 'retrieval-e2e', 'demo-index');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const { records } = await readJsonlCorpus(demoText);
    const data = await buildIndex(new NodeDirStore(dir), records, node, { corpusName: 'demo-node' });
    const q = 'Sudden severe headache during exercise, worst of her life, with neck stiffness.';
    const nodeHits = (await (await Retriever.create(data, node, { index: 'exact' })).retrieve(q, 5)).results.map((h) => [h.record.id, h.score] as const);
    const r = await page.evaluate(async ({ spec, q }) => {
      const c = window.retrieval.client;
      await c.initEmbedder(spec);
      const info = await c.openIndex({ corpus: { kind: 'index-url', url: '/node_modules/.cache/retrieval-e2e/demo-index/' } });
      const res = await c.retrieve(q, 5);
      return { info: [info.previous, info.corpus.name, info.corpus.count], hits: res.results.map((h) => [h.record.id, h.score] as const) };
    }, { spec: EMBEDDER, q });
    expect(r.info).toEqual(['missing', 'demo-node', demoLines.length]);
    expect(r.hits.map((h) => h[0])).toEqual(nodeHits.map((h) => h[0]));
    r.hits.forEach((h, i) => expect(Math.abs(h[1] - nodeHits[i][1])).toBeLessThan(1e-4));
  });

  it('reports bad JSONL lines by number through the protocol, or stops at the first', async () => {
    const text = [demoLines[0], '{"id": "x", "question": ', demoLines[1], JSON.stringify({ id: 'y', question: 'Q?' })].join('\n');
    const r = await page.evaluate(async ({ text }) => {
      const c = window.retrieval.client;
      const skip = await c.openIndex({ corpus: { kind: 'text', text, name: 'bad-lines' }, index: 'exact' });
      const stop = await window.harness.settle(c.openIndex({ corpus: { kind: 'text', text, name: 'bad-lines' }, onBadLine: 'stop' }));
      return { skipped: skip.skipped, lines: skip.badLines, count: skip.corpus.count, stop };
    }, { text });
    expect(r).toMatchObject({ skipped: 2, count: 2, stop: { ok: false, code: 'invalid-input', message: expect.stringMatching(/^Line 2: not valid JSON/) } });
    expect(r.lines).toEqual([{ line: 2, reason: expect.stringMatching(/not valid JSON/) }, { line: 4, reason: 'field "reasoning" is missing' }]);
  });
});

describe.skipIf(!HAS_SHARED)('the demo corpus with no network', () => {
  it('loads and retrieves with every request off the local server blocked, then fully offline', async () => {
    const context = await browser.newContext();
    const origin = new URL(server.url).origin;
    const blocked: string[] = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin) return route.continue();
      blocked.push(url);
      return route.abort('internetdisconnected');
    });
    const offlinePage = await context.newPage();
    offlinePage.on('pageerror', (e) => console.error(`[page uncaught] ${e.message}`));
    await offlinePage.goto(server.url + HARNESS);
    await offlinePage.waitForFunction(() => window.retrieval?.ready === true);
    const info = await offlinePage.evaluate(async ({ url }) => {
      const c = window.retrieval.client;
      // 'auto': the app's default device choice.
      const e = await c.initEmbedder({ model: 'tiny-random-bert', allowRemoteModels: false, localModelPath: '/shared/models/' });
      const i = await c.openIndex({ corpus: { kind: 'url', url } });
      return { device: e.device, count: i.corpus.count, name: i.corpus.name, skipped: i.skipped };
    }, { url: DEMO_URL });
    expect(info).toMatchObject({ count: demoLines.length, name: 'demo-corpus.jsonl', skipped: 0 });
    expect(['wasm', 'webgpu']).toContain(info.device); // wasm on a fallback adapter such as SwiftShader

    await context.setOffline(true);
    const hits = await offlinePage.evaluate(async (qs) => {
      const out = [];
      for (const q of qs) {
        const r = await window.retrieval.client.retrieve(q, 3);
        out.push({ ids: r.results.map((h) => h.record.id), top: r.results[0].score, source: r.results[0].record.source, ms: r.timings.totalMs });
      }
      return out;
    }, [question(7), question(21)]);
    expect(hits.map((h) => h.ids[0])).toEqual([idOf(7), idOf(21)]);
    for (const h of hits) {
      expect(h.ids).toHaveLength(3);
      expect(h.top).toBeCloseTo(1, 5);
      expect(h.source).toBe('demo');
    }
    expect(blocked).toEqual([]);
    await context.close();
  });
});

// Last: SwiftShader keeps both cores busy for a while after a WebGPU run, slowing what follows.
describe.skipIf(!HAS_SHARED)('retrieval worker on WebGPU', () => {
  it('runs on WebGPU too (SwiftShader here), within 1e-4 of Node', async () => {
    const texts = ['What causes gout?', 'Chest pain radiating to the back.'];
    const r = await page.evaluate(async ({ texts, spec }) => {
      const c = window.retrieval.newClient();
      const status = await c.initEmbedder({ ...spec, device: 'webgpu' });
      const { vectors } = await c.embed(texts);
      c.terminate();
      return { device: status.device, vectors: Array.from(vectors) };
    }, { texts, spec: EMBEDDER });
    expect(r.device).toBe('webgpu');
    const nodeVectors = await node.embed(texts);
    expect(Math.max(...r.vectors.map((v, i) => Math.abs(v - nodeVectors[i])))).toBeLessThan(1e-4);
  });
});
