/**
 * Drives the app by its public names (the accessible names and test ids the issues fix), as an
 * outside check would: load models from the local hub, import traces, set settings, ask, read
 * the answer, the training steps and the retrieved trace.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import type { HistoryEntry } from '../../app/history/entry.ts';
import { makeTestHub, TEST_HUB_MODELS } from '../../scripts/hub/make-test-hub.ts';
import { launchChromium } from './browser.ts';
import { startBuiltApp, type BuiltApp } from './built-app.ts';
import { ROOT } from './server.ts';

export interface AppParams {
  model?: string;
  embedder?: string;
  weights?: 'q4' | 'f32';
  backend?: 'webgpu' | 'cpu';
}

/** `/?model=&embedder=&weights=&backend=`, defaulting to the stand-ins in the test hub. */
export function appUrl(base: string, p: AppParams = {}): string {
  const q = new URLSearchParams({
    model: p.model ?? TEST_HUB_MODELS.llm,
    embedder: p.embedder ?? TEST_HUB_MODELS.embedder,
    weights: p.weights ?? 'f32',
    backend: p.backend ?? 'webgpu',
  });
  return `${base}?${q}`;
}

/** Screenshots of the main views land here (gitignored test artifacts). */
export const SCREENSHOT_DIR = join(ROOT, 'test-results', 'screenshots');

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A status element whose whole text is `text` (several statuses are on screen at once). */
export function status(page: Page, text: string): Locator {
  return page.getByRole('status').filter({ hasText: new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) });
}

/** "Load models", then waits for "Ready" and "Index ready" (the demo corpus). */
export async function loadModels(page: Page, timeout = 180_000): Promise<void> {
  await page.getByRole('button', { name: 'Load models' }).click();
  await status(page, 'Ready').waitFor({ timeout });
  await status(page, 'Index ready').waitFor({ timeout });
}

/** "Import traces (JSONL)" with a file; waits until the new corpus is the indexed one. */
export async function importTraces(page: Page, path: string, expectedName: string, timeout = 120_000): Promise<void> {
  await page.getByLabel('Import traces (JSONL)').setInputFiles(path);
  await page.getByText(new RegExp(`^${expectedName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ traces$`)).waitFor({ timeout });
  await status(page, 'Index ready').waitFor({ timeout });
}

export interface SettingsInput {
  steps?: number;
  lr?: number;
  maxTrainTokens?: number;
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
  k?: number;
}

const SETTING_LABELS: Record<keyof SettingsInput, string> = {
  steps: 'Steps', lr: 'Learning rate', maxTrainTokens: 'Max trained tokens', maxNewTokens: 'Max new tokens',
  temperature: 'Temperature (0 = greedy)', seed: 'Seed', k: 'Retrieved traces (k)',
};

/** Opens the settings and fills the given fields (they persist in localStorage). */
export async function setSettings(page: Page, s: SettingsInput): Promise<void> {
  const details = page.locator('.settings details');
  if (!(await details.evaluate((d) => (d as HTMLDetailsElement).open))) await page.getByText('Test-time training, decoding and prompt').click();
  for (const [key, value] of Object.entries(s)) {
    if (value === undefined) continue;
    await page.getByLabel(SETTING_LABELS[key as keyof SettingsInput], { exact: true }).fill(String(value));
  }
}

export type AnswerRegion = 'Answer' | 'Answer without TTT' | 'Answer with TTT';

export function region(page: Page, name: AnswerRegion): Locator {
  return page.getByRole('region', { name, exact: true });
}

/** Types the question, sets the switches, clicks Ask (nothing waited for). */
export async function startAsk(page: Page, question: string, opts: { ttt?: boolean; compare?: boolean } = {}): Promise<void> {
  await page.getByLabel('Question').fill(question);
  const compare = page.getByLabel('Compare with and without TTT');
  if ((await compare.isChecked()) !== (opts.compare ?? false)) await compare.setChecked(opts.compare ?? false);
  if (!opts.compare && opts.ttt !== undefined) {
    const ttt = page.getByLabel('Test-time training');
    if ((await ttt.isChecked()) !== opts.ttt) await ttt.setChecked(opts.ttt);
  }
  await page.getByRole('button', { name: 'Ask' }).click();
}

/**
 * Waits for the region's data-state to become "done" and returns its answer text; fails at once,
 * with the page's error, when the answer ends any other way (stopped, error).
 */
export async function answerOf(page: Page, name: AnswerRegion, timeout = 240_000): Promise<string> {
  const r = region(page, name);
  const sel = (state: string) => `[aria-label="${name}"][data-state="${state}"]`;
  await page.locator(`${sel('done')}, ${sel('error')}, ${sel('stopped')}`).waitFor({ timeout });
  const state = await r.getAttribute('data-state');
  if (state !== 'done') {
    const alerts = await page.getByRole('alert').allInnerTexts();
    throw new Error(`"${name}" ended ${state}: ${alerts.join(' | ') || (await r.innerText())}`);
  }
  return (await r.getByTestId('answer-text').innerText()).trim();
}

/** The losses shown in "Training steps", parsed from their 4-decimal text. */
export async function shownLosses(page: Page): Promise<number[]> {
  const items = await page.getByRole('list', { name: 'Training steps' }).getByRole('listitem').allInnerTexts();
  return items.map((t) => {
    const m = /loss (\d+\.\d{4})/.exec(t);
    if (!m) throw new Error(`A training step without "loss x.xxxx": ${t}`);
    return Number(m[1]);
  });
}

/** Downloads the history entry `index` (0 = newest) as JSON through its export button. */
export async function exportJson(page: Page, index = 0): Promise<HistoryEntry> {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('list', { name: 'History' }).getByRole('listitem').nth(index).getByRole('button', { name: 'JSON', exact: true }).click(),
  ]);
  return JSON.parse(await readFile(await download.path(), 'utf8')) as HistoryEntry;
}

/** A fresh context (own OPFS, IndexedDB, localStorage) on the app; console errors forwarded. */
export async function openApp(browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error(`[page console.error] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page uncaught] ${e.stack ?? e.message}`));
  await page.goto(url);
  return page;
}

export interface AppWithHub {
  app: BuiltApp;
  browser: Browser;
  /** The test hub's folder (symlinks into ../shared); tests may add repos to it. */
  hubDir: string;
  close(): Promise<void>;
}

/** The built app with a test hub of the stand-in models at /hub/, and a browser. */
export async function startAppWithTestHub(): Promise<AppWithHub> {
  const hubDir = mkdtempSync(join(tmpdir(), 'finemed-hub-'));
  await makeTestHub(hubDir);
  const app = await startBuiltApp({ hubDir });
  const browser = await launchChromium();
  return {
    app, browser, hubDir,
    close: async () => {
      await browser.close();
      await app.close();
      rmSync(hubDir, { recursive: true, force: true });
    },
  };
}
