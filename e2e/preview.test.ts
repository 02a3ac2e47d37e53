/**
 * The production build (what `npm start` serves): built into a temporary folder, served by
 * `vite preview`, and driven in Chromium. Catches what only the bundle can break: the worker
 * chunk, its dependencies, headers on built assets.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newPage, startBuiltApp, type BuiltApp } from './support/index.ts';

let app: BuiltApp;
let browser: Browser;

beforeAll(async () => {
  app = await startBuiltApp();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
});

describe('built app', () => {
  it('bundles no Node-only code and no test pages', () => {
    const assets = readdirSync(join(app.buildDir, 'assets'));
    expect(assets.some((f) => f.startsWith('llm.worker'))).toBe(true);
    expect(assets.some((f) => f.startsWith('retrieval.worker'))).toBe(true);
    expect(assets.some((f) => f.includes('harness'))).toBe(false);
    for (const f of assets.filter((a) => a.endsWith('.js'))) {
      const js = readFileSync(join(app.buildDir, 'assets', f), 'utf8');
      // onnxruntime-web's own guarded `node:os` lookup is the only Node name allowed in.
      const nodeImports = [...js.matchAll(/(?:from|import\()\s*["'`](node:[a-z_/]+|webgpu)["'`]/g)].map((m) => m[1]);
      expect(nodeImports, f).toEqual([]);
    }
  });

  it('is served cross-origin isolated with the disclaimers, and loads no script from elsewhere', async () => {
    const requests: string[] = [];
    const page = await newPage(browser, 'about:blank');
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(app.url);
    await page.getByText('Not medical advice; in an emergency call your local emergency number.').waitFor({ state: 'visible' });
    await page.getByText('Runs entirely on this device.').waitFor();
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(requests.filter((u) => !u.startsWith(app.url) && !u.startsWith('data:'))).toEqual([]);
    await page.context().close();
  });
});
