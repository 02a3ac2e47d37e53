/**
 * The production build (what `npm start` serves): built into a temporary folder, served by
 * `vite preview`, and driven in Chromium. Catches what only the bundle can break: the worker
 * chunk, its dependencies, headers on built assets.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, warnIfNoShared } from '../tests/helpers/shared.ts';
import { launchChromium, newPage, ROOT, STORIES_URL } from './support/index.ts';

warnIfNoShared('built app with the golden stories260K model');

const outDir = mkdtempSync(join(tmpdir(), 'finemed-dist-'));
const configFile = resolve(ROOT, 'vite.config.ts');
let server: PreviewServer;
let url: string;
let browser: Browser;

beforeAll(async () => {
  await build({ configFile, root: ROOT, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  server = await preview({ configFile, root: ROOT, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
  url = `http://127.0.0.1:${(server.httpServer.address() as AddressInfo).port}/`;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(outDir, { recursive: true, force: true });
});

describe('built app', () => {
  it('bundles no Node-only code and no test pages', () => {
    const assets = readdirSync(join(outDir, 'assets'));
    expect(assets.some((f) => f.startsWith('llm.worker'))).toBe(true);
    expect(assets.some((f) => f.includes('harness'))).toBe(false);
    for (const f of assets.filter((a) => a.endsWith('.js'))) {
      const js = readFileSync(join(outDir, 'assets', f), 'utf8');
      // onnxruntime-web's own guarded `node:os` lookup is the only Node name allowed in.
      const nodeImports = [...js.matchAll(/(?:from|import\()\s*["'`](node:[a-z_/]+|webgpu)["'`]/g)].map((m) => m[1]);
      expect(nodeImports, f).toEqual([]);
    }
  });

  it('is served cross-origin isolated with the disclaimer', async () => {
    const page = await newPage(browser, url);
    await page.getByText('Not medical advice. Everything runs locally on your device.').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    await page.context().close();
  });

  it.skipIf(!HAS_SHARED)('loads the golden model on WebGPU and generates', async () => {
    const page = await newPage(browser, url);
    await page.getByLabel('Model URL').fill(STORIES_URL);
    await page.getByLabel('Backend').selectOption('webgpu');
    await page.getByLabel('Weights').selectOption('f32');
    await page.getByRole('button', { name: 'Load model' }).click();
    await page.getByLabel('Loaded model').waitFor();
    await page.getByLabel('Prompt', { exact: true }).fill('Once upon a time');
    await page.getByLabel('Chat template').uncheck();
    await page.getByLabel('Max new tokens').fill('12');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByLabel('Timings').waitFor({ timeout: 60_000 });
    expect(await page.getByRole('log', { name: 'Generated text' }).innerText()).toContain('there was a little girl');
    await page.context().close();
  });
});
