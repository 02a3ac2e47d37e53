import type { Browser, Page } from 'playwright-core';
import { launchChromium, newPage } from './browser.ts';
import { startServer, type TestServer } from './server.ts';

/** A dev server, a browser and the harness page (e2e/harness.ts) with its worker client ready. */
export interface HarnessSession {
  server: TestServer;
  browser: Browser;
  page: Page;
  close(): Promise<void>;
}

/**
 * Starts the dev server and Chromium and opens the harness page, waiting for it to be ready.
 * @example
 *   let s: HarnessSession;
 *   beforeAll(async () => { s = await openHarness(); });
 *   afterAll(() => s?.close());
 */
export async function openHarness(harnessPath = 'e2e/harness.html'): Promise<HarnessSession> {
  const server = await startServer();
  const browser = await launchChromium();
  const page = await newPage(browser, server.url + harnessPath);
  await page.waitForFunction(() => window.harness?.ready === true);
  return {
    server, browser, page,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}
