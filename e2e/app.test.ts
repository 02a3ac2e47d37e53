/**
 * The app in headless Chromium: the page renders with its disclaimer, is cross-origin isolated,
 * WebGPU is reachable from a module worker (where the engine runs), and the golden tiny model
 * loads and generates through the UI.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../tests/helpers/shared.ts';
import { launchChromium, newPage, startServer, STORIES_URL, type TestServer } from './support/index.ts';
import type { GpuProbe } from './gpu-probe.ts';

warnIfNoShared('app e2e with the golden stories260K model');

let server: TestServer;
let browser: Browser;
beforeAll(async () => {
  server = await startServer();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function withPage(fn: (page: Page) => Promise<void>): Promise<void> {
  const page = await newPage(browser, server.url);
  try {
    await fn(page);
  } finally {
    await page.context().close();
  }
}

async function loadThroughUi(page: Page, opts: { url: string; backend: 'webgpu' | 'cpu'; weights: 'q4' | 'f32' }): Promise<void> {
  await page.getByLabel('Model URL').fill(opts.url);
  await page.getByLabel('Backend').selectOption(opts.backend);
  await page.getByLabel('Weights').selectOption(opts.weights);
  await page.getByRole('button', { name: 'Load model' }).click();
}

async function generateThroughUi(page: Page, prompt: string, maxNewTokens: number): Promise<void> {
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByLabel('Chat template').uncheck(); // stories260K ships a template; this is plain text
  await page.getByLabel('Max new tokens').fill(String(maxNewTokens));
  await page.getByLabel('Greedy').check();
  await page.getByRole('button', { name: 'Generate' }).click();
}

describe('app page', () => {
  it('shows the disclaimer and is cross-origin isolated', () =>
    withPage(async (page) => {
      await page.getByText('Not medical advice. Everything runs locally on your device.').waitFor({ state: 'visible' });
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      await page.getByRole('heading', { name: 'Model' }).waitFor();
    }));

  it('gets a WebGPU adapter inside a module worker', () =>
    withPage(async (page) => {
      const probe = await page.evaluate(
        () =>
          new Promise<GpuProbe>((resolve, reject) => {
            const worker = new Worker('/e2e/gpu-probe.worker.ts', { type: 'module' });
            worker.onmessage = (ev) => (ev.data.ok ? resolve(ev.data.result) : reject(new Error(ev.data.message)));
            worker.onerror = (ev) => reject(new Error(`worker failed: ${ev.message}`));
          }),
      );
      expect(probe.hasGpu).toBe(true);
      expect(probe.adapter).not.toBeNull();
      console.log(`[webgpu in worker] ${probe.adapter!.vendor}/${probe.adapter!.architecture}, fallback=${probe.adapter!.isFallbackAdapter}, f16=${probe.adapter!.features.includes('shader-f16')}`);
    }));

  it('shows a not-found error for a model URL that does not exist', () =>
    withPage(async (page) => {
      await loadThroughUi(page, { url: '/shared/golden/no-such-model/', backend: 'webgpu', weights: 'f32' });
      const alert = page.getByRole('alert');
      await alert.waitFor();
      const text = await alert.innerText();
      expect(text).toContain('could not be loaded');
      expect(text).toContain('not-found');
      expect(text).toContain('config.json');
      // The form is usable again for a corrected URL.
      expect(await page.getByRole('button', { name: 'Load model' }).isEnabled()).toBe(true);
    }));
});

describe.skipIf(!HAS_SHARED)('app page with the golden stories260K model', () => {
  it('loads on WebGPU (f32) and streams the greedy story', () =>
    withPage(async (page) => {
      await loadThroughUi(page, { url: STORIES_URL, backend: 'webgpu', weights: 'f32' });
      await page.getByLabel('Loaded model').waitFor();
      expect(await page.getByLabel('Loaded model').innerText()).toContain('webgpu');
      await generateThroughUi(page, 'Once upon a time', 32);
      const output = page.getByRole('log', { name: 'Generated text' });
      await page.getByLabel('Timings').waitFor({ timeout: 120_000 });
      expect(await output.innerText()).toContain('there was a little girl named Lily');
      expect(await page.getByLabel('Timings').innerText()).toMatch(/Decode\s*[\d.]+ tok\/s/);
    }));

  it('Stop ends a long generation early and keeps the text so far', () =>
    withPage(async (page) => {
      await loadThroughUi(page, { url: STORIES_URL, backend: 'webgpu', weights: 'f32' });
      await page.getByLabel('Loaded model').waitFor();
      await generateThroughUi(page, 'Once upon a time', 400);
      const output = page.getByRole('log', { name: 'Generated text' });
      await expect.poll(async () => (await output.innerText()).length, { timeout: 60_000 }).toBeGreaterThan(10);
      await page.getByRole('button', { name: 'Stop' }).click();
      await page.getByRole('status').getByText('Stopped.').waitFor({ timeout: 30_000 });
      expect(await output.innerText()).toContain('there was');
      expect(await page.getByRole('button', { name: 'Generate' }).isEnabled()).toBe(true);
    }));

  it('loads from a picked folder on the CPU backend', () =>
    withPage(async (page) => {
      await page.getByLabel('From a folder on this device').check();
      await page.getByLabel('Model folder').setInputFiles(sharedPath('golden', 'stories260K-hf', 'f32'));
      await page.getByText(/f32: \d+ files/).waitFor();
      await page.getByLabel('Backend').selectOption('cpu');
      await page.getByLabel('Weights').selectOption('f32');
      await page.getByRole('button', { name: 'Load model' }).click();
      await page.getByLabel('Loaded model').waitFor();
      await generateThroughUi(page, 'Once upon a time', 32);
      await page.getByLabel('Timings').waitFor({ timeout: 60_000 });
      expect(await page.getByRole('log', { name: 'Generated text' }).innerText()).toContain('there was a little girl named Lily');
    }));
});
