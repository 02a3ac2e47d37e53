/**
 * The Evaluate view in the built app: five multiple-choice items of ../shared/data/eval-mcq.jsonl
 * answered without and with TTT through the app's pipeline (stories260K on the CPU backend, the
 * short-traces corpus), the results table and the per-item log, their downloads, and a stopped
 * run resuming from its stored log.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../tests/helpers/shared.ts';
import { appUrl, importTraces, loadModels, openApp, screenshot, setSettings, startAppWithTestHub, type AppWithHub } from './support/app-driver.ts';
import { SHORT_TRACES, SHORT_TRACES_NAME } from './support/cli-ask.ts';

warnIfNoShared('the Evaluate view with stories260K');

/** The n items with the shortest question + options: they fit stories260K's 512-token context. */
function shortItems(n: number): string {
  const lines = readFileSync(sharedPath('data', 'eval-mcq.jsonl'), 'utf8').trim().split('\n');
  const size = (l: string) => { const j = JSON.parse(l) as { question: string; options: Record<string, string>; context: string | null }; return j.question.length + Object.values(j.options).join('').length + (j.context?.length ?? 0); };
  return lines.sort((a, b) => size(a) - size(b)).slice(0, n).join('\n') + '\n';
}

async function downloaded(page: Page, button: string): Promise<string> {
  const [d] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: button }).click()]);
  return readFile(await d.path(), 'utf8');
}

describe.skipIf(!HAS_SHARED)('Evaluate view (built app, CPU backend)', () => {
  let env: AppWithHub;
  let page: Page;
  let file: string;

  beforeAll(async () => {
    env = await startAppWithTestHub();
    file = join(env.hubDir, 'eval-5.jsonl');
    writeFileSync(file, shortItems(5));
    page = await openApp(env.browser, appUrl(env.app.url, { backend: 'cpu' }));
    await loadModels(page);
    await importTraces(page, SHORT_TRACES, SHORT_TRACES_NAME);
    await setSettings(page, { steps: 1, lr: 0.01, maxTrainTokens: 128, maxNewTokens: 8 });
  });
  afterAll(async () => env?.close());

  it('runs 5 items without and with TTT: the table, the per-item log, and both downloads', async () => {
    await page.getByText('Multiple-choice accuracy with and without test-time training').click();
    await page.getByLabel('Evaluation items (JSONL)').setInputFiles(file);
    await page.getByLabel('Evaluation file').getByText('eval-5.jsonl: 5 items').waitFor();
    await page.getByLabel('Items (0 = all)').fill('0');
    await page.getByRole('button', { name: 'Run evaluation' }).click();
    const table = page.getByRole('table', { name: 'Evaluation results' });
    await table.waitFor({ timeout: 180_000 });
    const all = table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'All' }) });
    expect(await all.getByRole('cell').first().innerText()).toBe('5'); // items
    expect(await table.getByRole('columnheader').allInnerTexts()).toEqual(['Benchmark', 'Items', 'Chance', 'TTT off', 'TTT on', 'On − off', 'b / c', 'McNemar p', 'Skipped']);
    expect(await page.getByRole('status', { name: 'Evaluation status' }).innerText()).toMatch(/^10 of 10 answers/);
    await page.getByText('Per-item log (10 answers)').click();
    expect(await page.getByRole('table', { name: 'Evaluation log' }).getByRole('row').count()).toBe(11); // header + 10
    await screenshot(page, '5-evaluate');

    const log = (await downloaded(page, 'Download log (JSONL)')).trim().split('\n').map((l) => JSON.parse(l) as { item: string; mode: string; gold: string; correct: boolean | null; ttt: unknown });
    expect(log).toHaveLength(10);
    expect(new Set(log.map((l) => `${l.item}|${l.mode}`)).size).toBe(10);
    expect(log.filter((l) => l.mode === 'on' && l.correct !== null).every((l) => l.ttt !== null)).toBe(true);
    const md = await downloaded(page, 'Download results (Markdown)');
    expect(md).toMatch(/\| Benchmark \| Items \| Chance \| TTT off \| TTT on \|/);
    expect(md).toContain('| **All** | 5 |');
    const json = JSON.parse(await downloaded(page, 'Download results (JSON)')) as { items: number; mcnemar: { b: number; c: number; p: number } };
    expect(json.items).toBe(5);
    // McNemar's counts recomputed from the log: b = right off, wrong on; c = the reverse.
    const by = (item: string, mode: string) => log.find((l) => l.item === item && l.mode === mode)!.correct;
    const items = [...new Set(log.map((l) => l.item))].filter((i) => by(i, 'off') !== null && by(i, 'on') !== null);
    expect(json.mcnemar.b).toBe(items.filter((i) => by(i, 'off') && !by(i, 'on')).length);
    expect(json.mcnemar.c).toBe(items.filter((i) => !by(i, 'off') && by(i, 'on')).length);
  });

  it('a stopped run resumes from its stored log after a reload: nothing lost, nothing twice', async () => {
    await page.getByRole('button', { name: 'Start over' }).click();
    await page.getByRole('button', { name: 'Run evaluation' }).click();
    const status = page.getByRole('status', { name: 'Evaluation status' });
    await expect.poll(async () => Number(/^(\d+) of/.exec(await status.innerText())?.[1] ?? 0), { timeout: 120_000 }).toBeGreaterThanOrEqual(2);
    await page.getByRole('button', { name: 'Pause evaluation' }).click();
    await status.getByText(/paused; run again to resume/).waitFor({ timeout: 60_000 });
    const done = Number(/^(\d+) of/.exec(await status.innerText())![1]);
    expect(done).toBeLessThan(10);

    await page.reload();
    await loadModels(page);
    await page.getByText('Multiple-choice accuracy with and without test-time training').click();
    await page.getByLabel('Evaluation items (JSONL)').setInputFiles(file);
    await page.getByLabel('Items (0 = all)').fill('0');
    await page.getByRole('button', { name: 'Run evaluation' }).click();
    await page.getByRole('table', { name: 'Evaluation results' }).waitFor({ timeout: 180_000 });
    expect(await status.innerText()).toMatch(new RegExp(`^10 of 10 answers \\(${done} resumed from the stored log\\)`));
    const log = (await downloaded(page, 'Download log (JSONL)')).trim().split('\n').map((l) => JSON.parse(l) as { item: string; mode: string });
    expect(log).toHaveLength(10);
    expect(new Set(log.map((l) => `${l.item}|${l.mode}`)).size).toBe(10);
  });
});
