/**
 * The app in headless Chromium: the page renders with its disclaimer, is cross-origin isolated,
 * and WebGPU is reachable from a module worker (where the engine runs).
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newPage, startServer, type TestServer } from './support/index.ts';
import type { GpuProbe } from './gpu-probe.ts';

describe('app page', () => {
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

  it('shows the disclaimer and is cross-origin isolated', async () => {
    const page = await newPage(browser, server.url);
    await expect.poll(() => page.getByText('Not medical advice. Everything runs locally on your device.').isVisible()).toBe(true);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    await page.getByRole('heading', { name: 'Model' }).waitFor();
    await page.context().close();
  });

  it('gets a WebGPU adapter inside a module worker', async () => {
    const page = await newPage(browser, server.url);
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
    console.log(`[webgpu in worker] ${JSON.stringify(probe.adapter)}`);
    await page.context().close();
  });
});
