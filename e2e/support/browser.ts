/**
 * Headless Debian Chromium through playwright-core, with the flags that expose its SwiftShader
 * WebGPU adapter (see ../shared/TESTING.md), and pages whose console errors reach the test output.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu', // without it Chromium hides CPU adapters and requestAdapter() is null
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`No Chromium at ${CHROMIUM_PATH}: run \`apt-get install -y chromium\` or set CHROMIUM_PATH.`);
  }
  // CHROMIUM_EXTRA_ARGS: e.g. a real GPU's flags on a device machine (scripts/device/bench-gpu.sh).
  const extra = (process.env.CHROMIUM_EXTRA_ARGS ?? '').split(' ').filter(Boolean);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...extra] });
}

/** Console types always forwarded; set E2E_VERBOSE=1 to forward every console message. */
const FORWARDED = new Set(['error', 'warning', 'assert']);

function forward(source: string, msg: ConsoleMessage): void {
  if (!FORWARDED.has(msg.type()) && !process.env.E2E_VERBOSE) return;
  const where = msg.location().url ? ` (${msg.location().url}:${msg.location().lineNumber})` : '';
  console.error(`[${source} console.${msg.type()}] ${msg.text()}${where}`);
}

/**
 * Opens `url` in a fresh browser context (own storage, so tests do not leak OPFS/IndexedDB into
 * each other) and forwards console errors, uncaught page errors and crashes to the test output.
 */
export async function newPage(browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (msg) => forward('page', msg));
  page.on('pageerror', (err) => console.error(`[page uncaught] ${err.stack ?? err.message}`));
  page.on('crash', () => console.error('[page crashed]'));
  await page.goto(url);
  return page;
}
