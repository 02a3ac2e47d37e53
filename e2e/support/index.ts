/**
 * The shared harness of every browser test (vitest project 'e2e'). Typical use:
 *
 *   import { startServer, launchChromium, newPage, type TestServer } from './support/index.ts';
 *   let server: TestServer, browser: Browser;
 *   beforeAll(async () => { server = await startServer(); browser = await launchChromium(); });
 *   afterAll(async () => { await browser?.close(); await server?.close(); });
 *
 *   const page = await newPage(browser, server.url);                      // the app
 *   const page = await newPage(browser, server.url + HARNESS_PATH);       // the test page
 *   await page.waitForFunction(() => window.harness?.ready);
 *   const r = await page.evaluate(() => window.harness.settle(window.harness.client.load(...)));
 *
 * The harness page (e2e/harness.ts) drives the real worker through LlmClient; see `Harness` there.
 * Model files under ../shared are served at /shared/ (404 when ../shared is absent: skip with
 * HAS_SHARED from tests/helpers/shared.ts).
 *
 * The production build (service worker included): the project's globalSetup
 * (./global-build.ts) builds it once per run; `startBuiltApp({ hubDir })` serves it with
 * `vite preview` (see ./built-app.ts and e2e/offline.test.ts).
 */
export { startServer, ROOT, type TestServer } from './server.ts';
export { launchChromium, newPage, CHROMIUM_ARGS, CHROMIUM_PATH } from './browser.ts';
export { startBuiltApp, type BuiltApp, type BuiltAppOptions } from './built-app.ts';
export { BUILT_APP_DIR, buildApp } from './global-build.ts';
export { openHarness, type HarnessSession } from './harness-page.ts';

/** Path of the harness page relative to the server URL. */
export const HARNESS_PATH = 'e2e/harness.html';
/** The golden tiny model (stories260K, f32) as served by the dev server. */
export const STORIES_URL = '/shared/golden/stories260K-hf/f32/';
