/**
 * The OPFS weight cache through the real LLM worker in Chromium (harness page): the first load
 * from /shared/ writes the entry; a fresh page of the same browser context (same origin storage)
 * loads from it with zero requests to the model URL and identical logits; a flipped byte in an
 * OPFS file is a typed error that leaves the loaded model usable, and the next load downloads
 * again; list/delete frees the space. Load times and OPFS throughput: `npm run bench:cache`.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, warnIfNoShared } from '../tests/helpers/shared.ts';
import { HARNESS_PATH, launchChromium, startServer, STORIES_URL, type TestServer } from './support/index.ts';

warnIfNoShared('OPFS weight cache e2e with the golden stories260K model');

let server: TestServer;
let browser: Browser;
let context: BrowserContext;
const modelRequests: string[] = [];

beforeAll(async () => {
  server = await startServer();
  browser = await launchChromium();
  context = await browser.newContext();
  // Requests of every page and its workers in this context.
  context.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith(STORIES_URL)) modelRequests.push(`${r.method()} ${r.url()}`);
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function harnessPage(): Promise<Page> {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('404')) console.error(`[page] ${m.text()}`); });
  await page.goto(server.url + HARNESS_PATH);
  await page.waitForFunction(() => window.harness?.ready === true);
  return page;
}

const IDS = [1, 403, 407, 261, 378, 411];

/** Load (timed), then the last-position logits of IDS, in the page's own client. */
function loadAndLogits(page: Page) {
  return page.evaluate(async ({ url, ids }) => {
    const h = window.harness;
    const t0 = performance.now();
    const info = await h.settle(h.client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'q4' }));
    const ms = performance.now() - t0;
    if (!info.ok) return { info, ms, logits: null };
    const gen = await h.client.generate({ ids, options: { maxNewTokens: 1, includeLogits: true } });
    return { info, ms, logits: gen.lastLogits! };
  }, { url: STORIES_URL, ids: IDS });
}

const usage = (page: Page) => page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);

describe.skipIf(!HAS_SHARED)('OPFS weight cache in the LLM worker', () => {
  it('first load writes the entry; a new page loads it with zero model requests and the same logits; corruption and delete', async () => {
    const page1 = await harnessPage();
    const first = await loadAndLogits(page1);
    if (!first.info.ok) throw new Error(`first load failed: ${first.info.message}`);
    expect(first.info.value).toMatchObject({ loadedFrom: 'source', cacheKey: expect.stringMatching(/^stories260K-hf--f32--q4-q8head-v2-/) });
    expect(modelRequests.length).toBeGreaterThan(0);
    const key = first.info.value.cacheKey!;
    const listed = await page1.evaluate(() => window.harness.client.listCachedModels());
    expect(listed).toEqual([expect.objectContaining({ key, complete: true, weights: 'q4', kind: 'url', source: expect.stringContaining(STORIES_URL) })]);
    expect(listed[0]!.tensorsDone).toBe(listed[0]!.tensorsTotal);
    expect(listed[0]!.bytes).toBeGreaterThan(100_000);

    // A fresh page (new worker) of the same context: same origin storage.
    modelRequests.length = 0;
    const page2 = await harnessPage();
    const cached = await loadAndLogits(page2);
    if (!cached.info.ok) throw new Error(`cached load failed: ${cached.info.message}`);
    expect(cached.info.value.loadedFrom).toBe('cache');
    expect(cached.info.value.cacheKey).toBe(key);
    expect(modelRequests).toEqual([]);
    expect(cached.logits).toHaveLength(512);
    expect(cached.logits).toEqual(first.logits);
    console.log(`[weight-cache e2e] stories260K q4 WebGPU (SwiftShader): first load ${first.ms.toFixed(0)} ms (source, quantize + OPFS write), cached load ${cached.ms.toFixed(0)} ms (OPFS, no quantize, 0 requests)`);

    // Flip one byte of a cached tensor from the page (OPFS is shared with the worker).
    const corrupted = await page2.evaluate(async (k) => {
      const root = await navigator.storage.getDirectory();
      const dir = await (await (await root.getDirectoryHandle('finemed-weight-cache')).getDirectoryHandle(k)).getDirectoryHandle('tensors');
      const handle = await dir.getFileHandle('model.layers.2.mlp.up_proj.weight.bin');
      const file = await handle.getFile();
      const b = new Uint8Array(await file.slice(200, 201).arrayBuffer());
      const w = await handle.createWritable({ keepExistingData: true });
      await w.seek(200);
      await w.write(new Uint8Array([b[0]! ^ 0x5a]));
      await w.close();
      return file.size;
    }, key);
    expect(corrupted).toBeGreaterThan(200);
    const bad = await page2.evaluate(async (url) => {
      const h = window.harness;
      const r = await h.settle(h.client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'q4' }));
      const still = await h.client.info();
      const gen = await h.client.generate({ ids: [1, 403, 407, 261, 378, 411], options: { maxNewTokens: 1, includeLogits: true } });
      return { r, stillFrom: still?.loadedFrom, logits: gen.lastLogits, list: await h.client.listCachedModels() };
    }, STORIES_URL);
    expect(bad.r).toMatchObject({ ok: false, code: 'cache-corrupt', message: expect.stringMatching(/model\.layers\.2\.mlp\.up_proj\.weight fails its checksum.*downloaded again/) });
    expect(bad.stillFrom).toBe('cache'); // the previous model is still loaded ...
    expect(bad.logits).toEqual(first.logits); // ... and still generates
    expect(bad.list).toEqual([]); // the bad entry is gone

    modelRequests.length = 0;
    const again = await loadAndLogits(page2);
    if (!again.info.ok) throw new Error(`reload failed: ${again.info.message}`);
    expect(again.info.value.loadedFrom).toBe('source');
    expect(modelRequests.length).toBeGreaterThan(0);
    expect(again.logits).toEqual(first.logits);

    // Delete frees the space.
    const before = await usage(page2);
    const deleted = await page2.evaluate((k) => window.harness.client.deleteCachedModel(k), key);
    const after = await usage(page2);
    expect(deleted.deleted).toBe(true);
    expect(deleted.freedBytes).toBeGreaterThan(100_000);
    expect(after).toBeLessThan(before);
    console.log(`[weight-cache e2e] delete freed ${deleted.freedBytes} bytes; storage estimate ${before} -> ${after}`);
    expect(await page2.evaluate(() => window.harness.client.listCachedModels())).toEqual([]);
    expect(await page2.evaluate(() => window.harness.client.deleteCachedModel('no-such-entry'))).toEqual({ deleted: false, freedBytes: 0 });
    await page1.close();
    await page2.close();
  });

  it('two tabs loading one model at once: one writes the entry (Web Locks), the other reads the source; both give the same logits', async () => {
    const [a, b] = [await harnessPage(), await harnessPage()];
    const [x, y] = await Promise.all([loadAndLogits(a), loadAndLogits(b)]);
    if (!x.info.ok || !y.info.ok) throw new Error(`a load failed: ${JSON.stringify([x.info, y.info])}`);
    expect([x.info.value.loadedFrom, y.info.value.loadedFrom]).toEqual(['source', 'source']);
    const keys = [x.info.value.cacheKey, y.info.value.cacheKey].filter((k) => k !== null);
    expect(keys).toHaveLength(1); // the second found the entry's lock taken and cached nothing
    expect(y.logits).toEqual(x.logits);
    const listed = await a.evaluate(() => window.harness.client.listCachedModels());
    expect(listed).toEqual([expect.objectContaining({ key: keys[0], complete: true })]);

    modelRequests.length = 0;
    const c = await harnessPage();
    const cached = await loadAndLogits(c);
    if (!cached.info.ok) throw new Error(`cached load failed: ${cached.info.message}`);
    expect(cached.info.value.loadedFrom).toBe('cache');
    expect(modelRequests).toEqual([]);
    expect(cached.logits).toEqual(x.logits);
    expect(await c.evaluate((k) => window.harness.client.deleteCachedModel(k), keys[0]!)).toMatchObject({ deleted: true });
    for (const p of [a, b, c]) await p.close();
  });
});
