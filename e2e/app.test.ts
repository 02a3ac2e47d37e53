/**
 * The app in the dev server (`npm run dev`): the page renders with its disclaimers, is
 * cross-origin isolated, WebGPU is reachable from a module worker (where the engine runs), and
 * a model repo the hub does not have gives a typed error with guidance. The ask flow itself is
 * tested against the built app (e2e/ask-flow*.test.ts).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newPage, startServer, type TestServer } from './support/index.ts';
import type { GpuProbe } from './gpu-probe.ts';

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

describe('app page', () => {
  it('shows the disclaimers and is cross-origin isolated', () =>
    withPage(async (page) => {
      await page.getByText('Not medical advice; in an emergency call your local emergency number.').waitFor({ state: 'visible' });
      await page.getByText('Runs entirely on this device.').waitFor();
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      await page.getByRole('heading', { name: 'Models' }).waitFor();
      await page.getByRole('heading', { name: 'How it works' }).waitFor();
      // Nothing loaded yet: Ask waits, and says why.
      expect(await page.getByRole('button', { name: 'Ask' }).isDisabled()).toBe(true);
      await page.getByText('Load the models first.').waitFor();
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

  it('a model repo the hub does not have gives a not-found error, and the form stays usable', async () => {
    const page = await newPage(browser, `${server.url}?model=test-org/no-such-model&embedder=test-org/no-such-embedder&backend=cpu&hub=${server.url}hub`);
    try {
      await page.getByRole('button', { name: 'Load models' }).click();
      const alert = page.getByRole('alert').filter({ hasText: 'The language model could not be loaded.' });
      await alert.waitFor({ timeout: 60_000 });
      const text = await alert.innerText();
      expect(text).toContain('not-found');
      expect(text).toContain('no-such-model');
      await page.getByRole('alert').filter({ hasText: 'The embedder could not be loaded.' }).waitFor({ timeout: 60_000 });
      expect(await page.getByRole('button', { name: 'Load models' }).isEnabled()).toBe(true);
      expect(await page.getByRole('button', { name: 'Ask' }).isDisabled()).toBe(true);
    } finally {
      await page.context().close();
    }
  });
});
