/**
 * The ask flow in the built app, driven by its public names, with the stand-ins from a local hub:
 * stories260K (f32) as the language model, tiny-random-bert as the embedder, the demo corpus and
 * a JSONL corpus imported through the UI. WebGPU (SwiftShader) here; the CPU backend in
 * e2e/ask-flow-cpu.test.ts. Screenshots of the main views go to test-results/screenshots/.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, warnIfNoShared } from '../tests/helpers/shared.ts';
import {
  answerOf, appUrl, exportJson, importTraces, loadModels, openApp, region, screenshot, setSettings, shownLosses, startAsk,
  startAppWithTestHub, type AppWithHub,
} from './support/app-driver.ts';
import { cliAsk, SHORT_TRACES, SHORT_TRACES_NAME, shortQuestion } from './support/cli-ask.ts';

warnIfNoShared('the ask flow with stories260K and tiny-random-bert');

/**
 * Small enough for SwiftShader (a training step costs seconds there), big enough to see training
 * work: the o1 prompt falls back to the card prompt (~60 tokens), leaving ~30 trace tokens.
 */
const SETTINGS = { steps: 2, lr: 0.01, maxTrainTokens: 96, maxNewTokens: 8, temperature: 0, k: 3 };

describe.skipIf(!HAS_SHARED)('ask flow (built app, local hub, WebGPU)', () => {
  let env: AppWithHub;
  let page: Page;

  beforeAll(async () => {
    env = await startAppWithTestHub();
    page = await openApp(env.browser, appUrl(env.app.url, { backend: 'webgpu' }));
  });
  afterAll(async () => env?.close());

  it('a new user sees what will be downloaded, then loads both models and the demo corpus', async () => {
    await page.getByText('The first load downloads').waitFor();
    await screenshot(page, '1-empty');
    expect(await page.getByRole('button', { name: 'Ask' }).isDisabled()).toBe(true);
    expect(await page.getByLabel('Test-time training').isDisabled()).toBe(true);
    await expect.poll(() => page.getByText('Test-time training needs a corpus').count()).toBe(1);
    await loadModels(page);
    expect(await page.getByLabel('Test-time training').isChecked()).toBe(true); // on once a corpus is ready
    await page.getByText('Built with Llama').waitFor();
    await page.getByText('Not medical advice; in an emergency call your local emergency number.').waitFor();
    await page.getByText('Runs entirely on this device.').waitFor();
  });

  it('an imported JSONL corpus with a bad line becomes active and reports the line', async () => {
    await importTraces(page, SHORT_TRACES, SHORT_TRACES_NAME);
    const alert = page.getByRole('alert').filter({ hasText: /lines? (was|were) skipped/ });
    await alert.waitFor();
    expect(await alert.innerText()).toMatch(/line 7: /);
  });

  it("an exact question retrieves its record first, trains, answers, clears the adapters; losses equal `llm ask`'s", async () => {
    await setSettings(page, SETTINGS);
    // Record, in the page, whether answer text showed up while the answer was still running.
    await page.evaluate(() => {
      const w = window as { streamed?: boolean };
      w.streamed = false;
      new MutationObserver(() => {
        const region = document.querySelector('[aria-label="Answer"]');
        if (region?.getAttribute('data-state') === 'running' && (region.querySelector('[data-testid="answer-text"]')?.textContent ?? '') !== '') w.streamed = true;
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await startAsk(page, shortQuestion(0), { ttt: true });
    await page.getByRole('list', { name: 'Training steps' }).getByRole('listitem').first().waitFor({ timeout: 120_000 });
    await screenshot(page, '2-training');
    const answer = await answerOf(page, 'Answer');
    expect(answer.length).toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as { streamed?: boolean }).streamed)).toBe(true); // it streamed in
    const trace = page.getByRole('region', { name: 'Retrieved trace' });
    expect(await trace.innerText()).toContain(shortQuestion(0));
    expect(await trace.locator('.similarity').innerText()).toMatch(/^(1\.000|0\.99\d)$/);
    await page.getByText('Adapters cleared').waitFor();
    const losses = await shownLosses(page);
    expect(losses).toHaveLength(SETTINGS.steps);
    await screenshot(page, '3-evidence');

    const entry = await exportJson(page);
    const record = entry.records[0]!;
    expect(record.retrieval?.results[0]?.id).toBe('short-gout');
    expect(record.ttt?.losses).toHaveLength(SETTINGS.steps);
    losses.forEach((l, i) => expect(l).toBeCloseTo(record.ttt!.losses[i]!, 4));
    expect(record.answer.summary.trim()).toBe(answer);
    expect(record.restored).toBe(true);

    const cli = await cliAsk({ question: shortQuestion(0), settings: SETTINGS, backend: 'cpu' });
    expect(cli.ttt!.losses).toHaveLength(record.ttt!.losses.length);
    cli.ttt!.losses.forEach((l, i) => expect(Math.abs(l - record.ttt!.losses[i]!) / Math.abs(l)).toBeLessThan(1e-4));
    expect(Math.abs(cli.ttt!.finalLoss - record.ttt!.finalLoss) / cli.ttt!.finalLoss).toBeLessThan(1e-4);
    expect(cli.prompt.style).toBe(record.prompt.style);
    console.log(`[ask-flow webgpu] losses browser ${record.ttt!.losses.map((l) => l.toFixed(6)).join(', ')} | cli ${cli.ttt!.losses.map((l) => l.toFixed(6)).join(', ')}`);
  });

  it('compare, greedy: "Without TTT" equals a plain TTT-off answer; "With TTT" is shown with its timings', async () => {
    await startAsk(page, shortQuestion(2), { ttt: false });
    const plain = await answerOf(page, 'Answer');
    await startAsk(page, shortQuestion(2), { compare: true });
    const without = await answerOf(page, 'Answer without TTT');
    const adapted = await answerOf(page, 'Answer with TTT');
    expect(without).toBe(plain);
    expect(adapted.length).toBeGreaterThan(0);
    expect(await region(page, 'Answer with TTT').getByLabel('Timings').innerText()).toMatch(/Train/);
    expect(await region(page, 'Answer without TTT').getByLabel('Timings').innerText()).not.toMatch(/Train/);
    const verdict = await page.getByLabel('Comparison').innerText();
    expect(verdict).toBe(adapted === without ? 'The two answers are identical.' : 'The two answers differ.');
    console.log(`[ask-flow webgpu] compare: without ${JSON.stringify(without)} | with ${JSON.stringify(adapted)} | ${verdict}`);
    await screenshot(page, '4-compare');
  });

  it('restore holds: after a TTT answer, a TTT-off answer equals the same answer on a freshly loaded page', async () => {
    // The previous tests trained (and restored) several times on this page.
    await startAsk(page, shortQuestion(4), { ttt: false });
    const afterTraining = await answerOf(page, 'Answer');
    const fresh = await openApp(env.browser, appUrl(env.app.url, { backend: 'webgpu' }));
    try {
      await loadModels(fresh);
      await setSettings(fresh, SETTINGS);
      await startAsk(fresh, shortQuestion(4), { ttt: false });
      expect(await answerOf(fresh, 'Answer')).toBe(afterTraining);
    } finally {
      await fresh.context().close();
    }
  });

  it('Stop while retrieving, training and answering: stopped, adapters cleared, the app answers again', async () => {
    for (const stage of ['Retrieving', 'Training: step 1', 'Answering'] as const) {
      // Click Stop from inside the page the moment the stage line shows the stage.
      const armed = page.evaluate((text) => new Promise<void>((resolve) => {
        const check = () => {
          const line = [...document.querySelectorAll('[aria-label="Answer"] .stage')].map((e) => e.textContent ?? '').join(' ');
          if (!line.includes(text)) return false;
          (document.evaluate("//button[text()='Stop']", document, null, XPathResult.FIRST_ORDERED_NODE_TYPE).singleNodeValue as HTMLButtonElement).click();
          resolve();
          return true;
        };
        const obs = new MutationObserver(() => check() && obs.disconnect());
        obs.observe(document.body, { subtree: true, childList: true, characterData: true });
      }), stage);
      await startAsk(page, shortQuestion(1), { ttt: true });
      await armed;
      await page.locator('[aria-label="Answer"][data-state="stopped"]').waitFor({ timeout: 120_000 });
      if (stage !== 'Retrieving') await region(page, 'Answer').getByText('Adapters cleared').waitFor();
      expect(await page.getByRole('button', { name: 'Ask' }).isEnabled()).toBe(true);
    }
    // Usable, and the base model is intact: the same TTT-off answer as before the stops.
    await startAsk(page, shortQuestion(4), { ttt: false });
    const again = await answerOf(page, 'Answer');
    await startAsk(page, shortQuestion(4), { ttt: false });
    expect(await answerOf(page, 'Answer')).toBe(again);
  });

  it('keyboard: Enter asks, Shift+Enter adds a line', async () => {
    const box = page.getByLabel('Question');
    await box.fill('');
    await box.focus();
    await page.keyboard.type('Why is a child with diabetes');
    await page.keyboard.press('Shift+Enter');
    expect(await box.inputValue()).toBe('Why is a child with diabetes\n');
    await page.keyboard.press('Backspace');
    await page.keyboard.type(' so thirsty?');
    await page.getByLabel('Test-time training').uncheck();
    await box.focus();
    await page.keyboard.press('Enter');
    expect((await answerOf(page, 'Answer')).length).toBeGreaterThan(0);
    expect(await page.getByRole('region', { name: 'Answer' }).innerText()).not.toContain('Training steps');
  });

  it('untrusted text renders inert: a corpus trace and a model answer with <script>, <img onerror> and javascript: links', async () => {
    const payload = '<script>window.__pwned = "script"</script> <img src=x onerror="window.__pwned = \'img\'"> [click me](javascript:window.__pwned=\'link\')';
    const file = join(env.hubDir, 'payload-traces.jsonl');
    writeFileSync(file, `${JSON.stringify({ id: 'payload', question: 'Is this inert?', reasoning: `Thinking ${payload}`, answer: `Answer ${payload}`, source: `test ${payload}`, license: 'CC0-1.0' })}\n`);
    await setSettings(page, { steps: 0 }); // the evidence is what matters here, not training
    await importTraces(page, file, 'payload-traces.jsonl');
    await startAsk(page, 'Is this inert?', { ttt: true });
    await answerOf(page, 'Answer');
    await setSettings(page, { steps: SETTINGS.steps });
    const trace = page.getByRole('region', { name: 'Retrieved trace' });
    await trace.getByText('Reasoning and answer of the trace').click();
    expect(await trace.innerText()).toContain('<script>window.__pwned = "script"</script>');
    expect(await trace.innerText()).toContain(`test ${payload.slice(0, 20)}`); // the source, as text

    // A model answer in FineMedLM-o1's format carrying the payload, as a saved history entry.
    const entry = await exportJson(page);
    const forged = structuredClone(entry);
    forged.id = forged.records[0]!.id = 'forged-entry';
    forged.createdAt = forged.records[0]!.createdAt = new Date(Date.now() + 60_000).toISOString();
    forged.records[0]!.answer.text = `**Thought**\n${payload}\n**Summarization**\n${payload} ![x](https://evil.example/p.png)`;
    await page.evaluate((e) => new Promise<void>((resolve, reject) => {
      const req = indexedDB.open('finemed-ttt'); // the app's current version
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const tx = req.result.transaction('entries', 'readwrite');
        tx.objectStore('entries').put(e);
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      };
    }), forged);
    await page.reload();
    await page.getByRole('list', { name: 'History' }).getByRole('listitem').first().getByRole('link').click();
    const answer = region(page, 'Answer');
    await answer.getByText('Thought for').click(); // open the reasoning too
    expect(await answer.getByTestId('answer-text').innerText()).toContain('<img src=x onerror=');
    await answer.getByText('click me').first().click();
    const found = await page.evaluate(() => ({
      pwned: (window as { __pwned?: string }).__pwned ?? null,
      imgs: document.querySelectorAll('main img').length,
      scripts: document.querySelectorAll('main script').length,
      jsLinks: [...document.querySelectorAll('main a')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') ?? '')).length,
      handlers: [...document.querySelectorAll('main *')].filter((el) => [...el.attributes].some((a) => a.name.startsWith('on'))).length,
    }));
    expect(found).toEqual({ pwned: null, imgs: 0, scripts: 0, jsLinks: 0, handlers: 0 });
  });
  it('reload keeps the history; reopening and exporting give the same record', async () => {
    const before = await exportJson(page);
    await page.reload();
    await page.getByRole('list', { name: 'History' }).waitFor();
    const after = await exportJson(page);
    expect(after).toEqual(before);
    const items = page.getByRole('list', { name: 'History' }).getByRole('listitem');
    const count = await items.count();
    expect(count).toBeGreaterThanOrEqual(5);
    await items.nth(1).getByRole('link').click(); // open an older entry: shown as it finished
    const second = await exportJson(page, 1);
    const shown = second.mode === 'compare' ? await answerOf(page, 'Answer with TTT') : await answerOf(page, 'Answer');
    expect(shown).toBe(second.records.at(-1)!.answer.summary.trim());
    // delete removes the newest, also after a reload
    await items.first().getByRole('button', { name: 'Delete', exact: true }).click();
    await expect.poll(() => items.count()).toBe(count - 1);
    await page.reload();
    await expect.poll(() => page.getByRole('list', { name: 'History' }).getByRole('listitem').count()).toBe(count - 1);
    expect((await exportJson(page)).id).toBe(second.id);
  });

});
