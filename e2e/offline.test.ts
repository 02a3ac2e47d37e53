/**
 * The service worker against the built app (e2e/support/global-build.ts + vite preview): the first
 * visit precaches the shell, workers, wasm and public assets and says "Available offline"; then the
 * context goes offline, every request not to the app origin is aborted, and a reload must come
 * entirely from the precache, still cross-origin isolated, with a worker that starts and answers.
 * The first two tests share one browser context and run in order; the others have their own:
 * the "Update available" prompt, and the dev server removing a SW the built app left behind.
 */
import { readdirSync } from 'node:fs';
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, ROOT, startBuiltApp, type BuiltApp } from './support/index.ts';

let app: BuiltApp;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let origin: string;
/** Every request the context saw (page, workers, service worker), as URLs. */
const requests: string[] = [];
/** Requests the offline route aborted (anything not to the origin). */
const aborted: string[] = [];

beforeAll(async () => {
  app = await startBuiltApp();
  origin = new URL(app.url).origin;
  browser = await launchChromium();
  context = await browser.newContext();
  context.on('request', (r) => requests.push(r.url()));
  page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[page uncaught] ${err.stack ?? err.message}`));
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
});

/** The Workbox precache as the browser holds it: URLs without Workbox's revision parameter. */
async function precachedUrls(p: Page): Promise<string[]> {
  return p.evaluate(async () => {
    const names = (await caches.keys()).filter((n) => n.startsWith('workbox-precache'));
    const urls: string[] = [];
    for (const name of names) {
      for (const req of await (await caches.open(name)).keys()) {
        const u = new URL(req.url);
        u.searchParams.delete('__WB_REVISION__');
        urls.push(u.pathname + u.search);
      }
    }
    return urls.sort();
  });
}

function buildAsset(pattern: RegExp): string {
  const name = readdirSync(join(app.buildDir, 'assets')).find((f) => pattern.test(f));
  if (!name) throw new Error(`The build has no asset matching ${pattern}.`);
  return `/assets/${name}`;
}

describe('service worker (built app)', () => {
  it('registers, precaches the shell, workers, wasm and public assets, and says "Available offline"', async () => {
    await page.goto(app.url);
    await expect.poll(() => page.getByRole('status', { name: 'App status' }).textContent(), { timeout: 60_000 }).toContain('Available offline');

    const cached = await precachedUrls(page);
    const llmWorker = buildAsset(/^llm\.worker-.*\.js$/);
    const ortWasm = buildAsset(/^ort-wasm-simd-threaded.*\.wasm$/);
    for (const expected of ['/index.html', '/manifest.webmanifest', '/demo/demo-corpus.jsonl', '/icons/icon-192.png', llmWorker, ortWasm]) {
      expect(cached, expected).toContain(expected);
    }
    // Every worker bundle and wasm runtime the build emits (ORT's .wasm/.mjs, voy's .wasm once the
    // retrieval worker is in), and never a model file.
    const runtimes = readdirSync(join(app.buildDir, 'assets')).filter((f) => /\.(wasm|mjs)$|\.worker-.*\.js$/.test(f));
    expect(runtimes.length).toBeGreaterThanOrEqual(2);
    for (const f of runtimes) expect(cached).toContain(`/assets/${f}`);
    expect(cached.filter((u) => /^\/(hub|shared|e2e)\//.test(u) || /\.(safetensors|onnx|gguf|bin)$/.test(u))).toEqual([]);
  });

  it('reloads offline from the precache: isolated, worker answers, assets served, only the origin asked', async () => {
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin) return route.continue();
      aborted.push(url);
      return route.abort('internetdisconnected');
    });
    await context.setOffline(true);
    requests.length = 0;

    await page.reload();
    await expect.poll(() => page.getByRole('status', { name: 'App status' }).textContent(), { timeout: 30_000 }).toContain('Available offline');
    expect(await page.title()).toBe('FineMed TTT');
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);

    // The LLM worker bundle loads from the precache (under COEP) and answers the protocol.
    const llmWorker = buildAsset(/^llm\.worker-.*\.js$/);
    const reply = await page.evaluate(
      (url) =>
        new Promise<unknown>((resolve, reject) => {
          const w = new Worker(url, { type: 'module', name: 'llm-offline-check' });
          const timer = setTimeout(() => reject(new Error('The LLM worker did not answer `info` within 20 s.')), 20_000);
          w.onerror = (e) => reject(new Error(`The LLM worker failed to start: ${e.message || 'script error'}`));
          w.onmessage = (e: MessageEvent<unknown>) => {
            clearTimeout(timer);
            w.terminate();
            resolve(e.data);
          };
          w.postMessage({ type: 'info', id: 1 });
        }),
      llmWorker,
    );
    expect(reply).toMatchObject({ type: 'result', id: 1 });

    // Every precached file is served offline, whole, with the isolation headers.
    const cached = await precachedUrls(page);
    expect(cached.length).toBeGreaterThan(5);
    const served = await page.evaluate(async (urls) => {
      const out: { url: string; status: number; bytes: number; coep: string | null }[] = [];
      for (const url of urls) {
        const res = await fetch(url);
        out.push({ url, status: res.status, bytes: (await res.arrayBuffer()).byteLength, coep: res.headers.get('cross-origin-embedder-policy') });
      }
      return out;
    }, cached);
    expect(served.length).toBe(cached.length);
    for (const s of served) {
      expect(s.status, s.url).toBe(200);
      expect(s.bytes, s.url).toBeGreaterThan(0);
      expect(s.coep, s.url).toBe('require-corp');
    }
    const corpus = await page.evaluate(async () => (await (await fetch('/demo/demo-corpus.jsonl')).text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string }));
    expect(corpus.length).toBeGreaterThan(0);
    expect(typeof corpus[0]!.id).toBe('string');
    const ortWasm = served.find((s) => /\/ort-wasm-simd-threaded.*\.wasm$/.test(s.url));
    expect(ortWasm?.bytes).toBeGreaterThan(1_000_000);

    // Nothing reaches the server: an origin file outside the precache fails as a network error
    // (online it would be a 404), so everything above came from the service worker.
    const probe = await page.evaluate(() => fetch(`/not-precached-${Date.now()}.txt`).then((r) => `HTTP ${r.status}`, (e: Error) => e.name));
    expect(probe).toBe('TypeError');

    expect(aborted).toEqual([]);
    const foreign = requests.filter((u) => /^https?:/.test(u) && new URL(u).origin !== origin);
    expect(foreign).toEqual([]);
    expect(requests.length).toBeGreaterThan(0);
  });

  it('prompts "Update available" when a new service worker waits, and reloads into it', async () => {
    // A second build would take seconds: a byte-different sw.js is a new version to the browser.
    // Playwright cannot route the browser's SW update fetch, so serve a copy of the build and
    // change sw.js on disk (vite preview reads files per request).
    const copy = await mkdtemp(join(tmpdir(), 'finemed-sw-update-'));
    await cp(app.buildDir, copy, { recursive: true });
    const copyApp = await startBuiltApp({ buildDir: copy });
    const fresh = await browser.newContext();
    try {
      const p = await fresh.newPage();
      await p.goto(copyApp.url);
      const status = p.getByRole('status', { name: 'App status' });
      await expect.poll(() => status.textContent(), { timeout: 60_000 }).toContain('Available offline');
      expect(await status.textContent()).not.toContain('Update available');
      // Only a controlled page keeps a new worker waiting (the first visit is not controlled yet).
      await p.reload();
      await expect.poll(() => p.evaluate(() => navigator.serviceWorker.controller !== null), { timeout: 30_000 }).toBe(true);
      const firstScript = await p.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL);

      await appendFile(join(copy, 'sw.js'), '\n// next version\n');
      await p.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.update());
      await expect.poll(() => status.textContent(), { timeout: 30_000 }).toContain('Update available');
      expect(await p.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.waiting !== null)).toBe(true);

      await p.evaluate(() => ((window as { beforeUpdate?: boolean }).beforeUpdate = true));
      await Promise.all([p.waitForEvent('load', { timeout: 30_000 }), p.getByRole('button', { name: 'Reload to update' }).click()]);
      await expect.poll(() => status.textContent(), { timeout: 30_000 }).toContain('Available offline');
      expect(await p.evaluate(() => (window as { beforeUpdate?: boolean }).beforeUpdate)).toBeUndefined();
      expect(await status.textContent()).not.toContain('Update available');
      const after = await p.evaluate(async () => {
        const r = await navigator.serviceWorker.getRegistration();
        return { waiting: r?.waiting ?? null, active: r?.active?.scriptURL, controlled: navigator.serviceWorker.controller !== null };
      });
      expect(after).toEqual({ waiting: null, active: firstScript, controlled: true });
    } finally {
      await fresh.close();
      await copyApp.close();
      await rm(copy, { recursive: true, force: true });
    }
  });

  it('a service worker left by the built app removes itself when the dev server takes its port', async () => {
    // `npm start` and `npm run dev` share localhost:5173: the stale SW must not keep the old shell.
    const built = await startBuiltApp();
    const port = Number(new URL(built.url).port);
    const fresh = await browser.newContext();
    let dev: ViteDevServer | undefined;
    try {
      const p = await fresh.newPage();
      await p.goto(built.url);
      await p.evaluate(async () => void (await navigator.serviceWorker.ready));
      await p.reload();
      expect(await p.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
      await built.close();

      dev = await createServer({ configFile: resolve(ROOT, 'vite.config.ts'), root: ROOT, logLevel: 'warn', server: { host: '127.0.0.1', port, strictPort: true, watch: { ignored: ['**/*'] } } });
      await dev.listen();
      // Only the document matters here; skipping its modules keeps the dev transform out of it.
      await fresh.route(/\.(tsx?|jsx?|css)(\?|$)|\/@/, (route) => route.abort());
      await p.goto(built.url);
      await p.waitForFunction(() => document.querySelector('script[src="/@vite/client"]') !== null, null, { timeout: 30_000 });
      expect(await p.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).length)).toBe(0);
      expect(await p.evaluate(async () => (await caches.keys()).filter((n) => n.startsWith('workbox-precache')))).toEqual([]);
    } finally {
      await fresh.close();
      await dev?.close();
      await built.close();
    }
  });
});
