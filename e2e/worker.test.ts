/**
 * The LLM worker and LlmClient in Chromium, through the harness page: golden logits survive the
 * protocol, cancellation stops loads and generations, misuse gives typed errors, not hangs.
 */
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbsDiff } from '../tests/helpers/gpu.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../tests/helpers/shared.ts';
import { HARNESS_PATH, openHarness, STORIES_URL, type HarnessSession } from './support/index.ts';

warnIfNoShared('LLM worker e2e with the golden stories260K model');

/** max |logit - golden| through the worker, WebGPU f32 on SwiftShader (logits up to 18): measured 2.8e-6 .. 8.7e-6, x ~11. */
const F32_LOGITS = 1e-4;

let session: HarnessSession | undefined;
let page: Page;
beforeAll(async () => {
  session = await openHarness(HARNESS_PATH);
  page = session.page;
});
afterAll(() => session?.close());

describe('LLM worker without a model', () => {
  it('generate before any load is a typed invalid-input error', async () => {
    const r = await page.evaluate(() => {
      const h = window.harness;
      return h.settle(h.newClient().generate({ ids: [1, 2], options: { maxNewTokens: 1 } }));
    });
    expect(r).toMatchObject({ ok: false, code: 'invalid-input', message: expect.stringContaining('No model is loaded') });
  });

  it('info is null before a load', async () => {
    expect(await page.evaluate(() => window.harness.newClient().info())).toBeNull();
  });

  it('a missing model folder is a not-found error naming config.json', async () => {
    const r = await page.evaluate(() => {
      const h = window.harness;
      return h.settle(h.newClient().load({ kind: 'url', url: '/shared/no-such-model/' }, { backend: 'cpu' }));
    });
    expect(r).toMatchObject({ ok: false, code: 'not-found', message: expect.stringContaining('config.json') });
  });
});

describe.skipIf(!HAS_SHARED)('LLM worker with stories260K', () => {
  const golden = () => JSON.parse(readFileSync(sharedPath('golden', 'forward-stories260K.json'), 'utf8')) as { cases: { ids: number[]; last_logits: number[]; greedy_32: number[] | null }[] };

  it('WebGPU f32 through the protocol: golden logits and greedy tokens of every case', async () => {
    const cases = golden().cases;
    const r = await page.evaluate(
      async ({ url, cases }) => {
        const h = window.harness;
        const progress: string[] = [];
        const info = await h.client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'f32' }, (p) => progress.push(p.phase));
        const gens = [];
        for (const ids of cases) {
          let streamed = 0;
          const gen = await h.client.generate({ ids, options: { maxNewTokens: 32, includeLogits: true } }, () => streamed++);
          gens.push({ gen, streamed });
        }
        return { info, progress, gens };
      },
      { url: STORIES_URL, cases: cases.map((c) => c.ids) },
    );
    expect(r.info).toMatchObject({ backend: 'webgpu', weights: 'f32', precision: 'f32', hasTokenizer: true });
    expect(r.info.config.vocabSize).toBe(512);
    expect(r.progress).toContain('weights');
    expect(r.progress.at(-1)).toBe('ready');
    expect(r.gens).toHaveLength(cases.length);
    const diffs = cases.map((c, i) => {
      const { gen, streamed } = r.gens[i]!;
      expect(gen.ids).toEqual(c.greedy_32);
      expect(streamed).toBe(32);
      expect(gen.promptTokens).toBe(c.ids.length);
      const logits = gen.lastLogits!;
      expect(logits).toHaveLength(512);
      return maxAbsDiff(logits, c.last_logits);
    });
    console.log(`[worker e2e] SwiftShader f32 max |logit - golden| per case: ${diffs.map((d) => d.toExponential(2)).join(', ')}`);
    for (const d of diffs) expect(d).toBeLessThan(F32_LOGITS);
  });

  it('results omit logits unless asked for', async () => {
    const r = await page.evaluate(() => window.harness.client.generate({ prompt: 'Once upon a time', chat: false, options: { maxNewTokens: 2 } }));
    expect(r.lastLogits).toBeUndefined();
    expect(r.ids).toHaveLength(2);
  });

  it('cancel stops a generation early with the tokens so far', async () => {
    const r = await page.evaluate(async () => {
      const h = window.harness;
      let tokens = 0;
      const p = h.settle(
        h.client.generate({ prompt: 'Once upon a time', chat: false, options: { maxNewTokens: 400 } }, () => {
          if (++tokens === 3) h.client.cancel();
        }),
      );
      return { result: await p, busy: h.client.busy };
    });
    expect(r.busy).toBe(false);
    if (!r.result.ok) throw new Error(`generate failed: ${r.result.message}`);
    expect(r.result.value.stopReason).toBe('aborted');
    expect(r.result.value.ids.length).toBeLessThan(400);
    expect(r.result.value.ids.length).toBeGreaterThanOrEqual(3);
  });

  it('cancel stops a load, and the worker takes the next load', async () => {
    const r = await page.evaluate(async (url) => {
      const h = window.harness;
      const client = h.newClient();
      const cancelled = await h.settle(client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'f32' }, () => client.cancel()));
      const afterCancel = await client.info();
      const reloaded = await h.settle(client.load({ kind: 'url', url }, { backend: 'cpu', weights: 'f32' }));
      const text = await client.generate({ prompt: 'Once upon a time', chat: false, options: { maxNewTokens: 8 } });
      await client.unload();
      const afterUnload = await client.info();
      client.terminate();
      return { cancelled, afterCancel, reloaded: reloaded.ok, text: text.text, afterUnload };
    }, STORIES_URL);
    expect(r.cancelled).toMatchObject({ ok: false, code: 'aborted' });
    expect(r.afterCancel).toBeNull();
    expect(r.reloaded).toBe(true);
    expect(r.text).toContain('there was');
    expect(r.afterUnload).toBeNull();
  });

  it('a second load replaces the first model', async () => {
    const r = await page.evaluate(async (url) => {
      const h = window.harness;
      const client = h.newClient();
      const a = await client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'f32' });
      const b = await client.load({ kind: 'url', url }, { backend: 'cpu', weights: 'f32' });
      const info = await client.info();
      client.terminate();
      return { a: a.backend, b: b.backend, now: info?.backend };
    }, STORIES_URL);
    expect(r).toEqual({ a: 'webgpu', b: 'cpu', now: 'cpu' });
  });
});
