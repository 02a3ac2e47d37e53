/**
 * The ask flow on the CPU backend (the engine's reference path in the LLM worker), same stand-ins
 * and local hub as e2e/ask-flow.test.ts: retrieval of an exact question, every training step's
 * loss equal to `llm ask` on the CPU, compare mode, and a stop while training.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../tests/helpers/shared.ts';
import { answerOf, appUrl, exportJson, importTraces, loadModels, openApp, region, setSettings, shownLosses, startAsk, startAppWithTestHub, type AppWithHub } from './support/app-driver.ts';
import { cliAsk, SHORT_TRACES, SHORT_TRACES_NAME, shortQuestion } from './support/cli-ask.ts';

warnIfNoShared('the ask flow on the CPU backend');

const SETTINGS = { steps: 3, lr: 0.01, maxTrainTokens: 128, maxNewTokens: 16, temperature: 0, k: 3 };

describe.skipIf(!HAS_SHARED)('ask flow (built app, local hub, CPU backend)', () => {
  let env: AppWithHub;
  let page: Page;

  beforeAll(async () => {
    env = await startAppWithTestHub();
    page = await openApp(env.browser, appUrl(env.app.url, { backend: 'cpu' }));
    await loadModels(page);
    await importTraces(page, SHORT_TRACES, SHORT_TRACES_NAME);
    await setSettings(page, SETTINGS);
  });
  afterAll(async () => env?.close());

  it('retrieves the exact question first; losses equal `llm ask --backend cpu` within 1e-4 relative', async () => {
    expect(await page.getByText(/cpu · f32 · f32/).count()).toBe(1);
    await startAsk(page, shortQuestion(3), { ttt: true });
    await answerOf(page, 'Answer');
    await region(page, 'Answer').getByText('Adapters cleared').waitFor();
    expect(await page.getByRole('region', { name: 'Retrieved trace' }).innerText()).toContain(shortQuestion(3));
    const shown = await shownLosses(page);
    const record = (await exportJson(page)).records[0]!;
    expect(record.model.backend).toBe('cpu');
    expect(record.retrieval?.results[0]).toMatchObject({ id: 'short-meningitis' });
    expect(record.retrieval!.results[0]!.score).toBeGreaterThan(0.999);
    expect(shown).toHaveLength(SETTINGS.steps);
    const cli = await cliAsk({ question: shortQuestion(3), settings: SETTINGS, backend: 'cpu' });
    expect(cli.ttt!.losses).toHaveLength(SETTINGS.steps);
    cli.ttt!.losses.forEach((l, i) => expect(Math.abs(l - record.ttt!.losses[i]!) / l).toBeLessThan(1e-4));
    // same model, same settings, same greedy decoding: the same adapted answer
    expect(record.answer.text).toBe(cli.answer.text);
    console.log(`[ask-flow cpu] losses ${record.ttt!.losses.map((l) => l.toFixed(6)).join(', ')} | cli ${cli.ttt!.losses.map((l) => l.toFixed(6)).join(', ')}`);
  });

  it('compare on the CPU: "Without TTT" equals the CLI\'s TTT-off answer', async () => {
    await startAsk(page, shortQuestion(5), { compare: true });
    const without = await answerOf(page, 'Answer without TTT');
    await answerOf(page, 'Answer with TTT');
    const cli = await cliAsk({ question: shortQuestion(5), settings: SETTINGS, backend: 'cpu', ttt: 'off' });
    expect(without).toBe(cli.answer.summary.trim());
  });

  it('Stop while training clears the adapters; the next TTT-off answer equals the one before', async () => {
    await startAsk(page, shortQuestion(5), { ttt: false });
    const before = await answerOf(page, 'Answer');
    await startAsk(page, shortQuestion(0), { ttt: true });
    await page.getByRole('list', { name: 'Training steps' }).getByRole('listitem').first().waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.locator('[aria-label="Answer"][data-state="stopped"]').waitFor({ timeout: 60_000 });
    await region(page, 'Answer').getByText('Adapters cleared').waitFor();
    await startAsk(page, shortQuestion(5), { ttt: false });
    expect(await answerOf(page, 'Answer')).toBe(before);
  });

  it('a model folder picked on this device loads instead of the hub and answers the same', async () => {
    await startAsk(page, shortQuestion(2), { ttt: false });
    const fromHub = await answerOf(page, 'Answer');
    await page.getByLabel('Or a model folder on this device').setInputFiles(sharedPath('golden', 'stories260K-hf', 'f32'));
    await page.getByText(/Using the folder f32 \(\d+ files/).waitFor();
    await page.getByRole('button', { name: 'Load models' }).click();
    await page.getByText(/^f32 · 5 layers · cpu/).waitFor({ timeout: 60_000 });
    await startAsk(page, shortQuestion(2), { ttt: false });
    expect(await answerOf(page, 'Answer')).toBe(fromHub);
  });

  it('the public names stay unique, whatever the questions in the history say', async () => {
    await startAsk(page, 'When should I stop and ask about a question on aspirin?', { ttt: false });
    await answerOf(page, 'Answer');
    // Non-exact, case-insensitive matching, as a careless outside check would do it.
    expect(await page.getByRole('button', { name: 'Ask' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Stop' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Load models' }).count()).toBe(1);
    expect(await page.getByLabel('Question').count()).toBe(1);
    expect(await page.getByLabel('Test-time training').count()).toBe(1);
    expect(await page.getByLabel('Compare with and without TTT').count()).toBe(1);
    expect(await page.getByLabel('Import traces (JSONL)').count()).toBe(1);
    expect(await page.getByRole('status').filter({ hasText: /^\s*Ready\s*$/ }).count()).toBe(1);
    expect(await page.getByRole('status').filter({ hasText: /^\s*Index ready\s*$/ }).count()).toBe(1);
    expect(await page.getByRole('region', { name: 'Answer', exact: true }).count()).toBe(1);
  });
});
