/**
 * Device loss in Chromium (SwiftShader WebGPU), through the real worker: the page destroys the
 * model's GPU device mid-generation (the test request `debug-lose-device`), the pending generate
 * rejects with DeviceLostError, a later one too (at once), and the client then loads again, from
 * the weight cache when the first load wrote it, and generates the same greedy tokens.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, warnIfNoShared } from '../tests/helpers/shared.ts';
import { HARNESS_PATH, openHarness, STORIES_URL, type HarnessSession } from './support/index.ts';

warnIfNoShared('device loss through the LLM worker (stories260K)');

let session: HarnessSession | undefined;
let page: Page;
beforeAll(async () => {
  if (!HAS_SHARED) return;
  session = await openHarness(HARNESS_PATH);
  page = session.page;
});
afterAll(() => session?.close());

describe.skipIf(!HAS_SHARED)('GPU device lost in the browser', () => {
  it('mid-generation: DeviceLostError, later calls too at once, then a reload generates again', async () => {
    const r = await page.evaluate(async (url) => {
      const h = window.harness;
      const client = h.newClient();
      const first = await client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'f32' });
      const ids = [1, 403, 407, 261, 378]; // golden case 0: 32 greedy tokens without eos
      const reference = (await client.generate({ ids, options: { maxNewTokens: 16, stopIds: [] } })).ids;
      let streamed = 0;
      let lost: Promise<{ lost: boolean }> | null = null;
      const pending = h.settle(client.generate({ ids, options: { maxNewTokens: 400, stopIds: [] } }, () => {
        if (++streamed === 2) lost = client.debugLoseDevice();
      }));
      const lostGenerate = await Promise.race([pending, new Promise((r) => setTimeout(() => r('hung'), 15_000))]);
      const t0 = performance.now();
      const later = await h.settle(client.generate({ ids, options: { maxNewTokens: 2 } }));
      const laterMs = performance.now() - t0;
      const again = await client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'f32' });
      const after = (await client.generate({ ids, options: { maxNewTokens: 16, stopIds: [] } })).ids;
      client.terminate();
      return { first, lostAck: await lost, streamed, lostGenerate, later, laterMs, again, reference, after };
    }, STORIES_URL);
    console.log(`[gpu-errors e2e] tokens streamed before the loss: ${r.streamed}; later call rejected in ${r.laterMs.toFixed(1)} ms; reload from ${r.again.loadedFrom} in ${r.again.loadMs.toFixed(0)} ms`);
    expect(r.lostAck).toEqual({ lost: true });
    expect(r.lostGenerate).toMatchObject({ ok: false, name: 'DeviceLostError', code: 'device-lost' });
    expect(r.streamed).toBeLessThan(400);
    expect(r.later).toMatchObject({ ok: false, name: 'DeviceLostError', code: 'device-lost' });
    expect(r.laterMs).toBeLessThan(1000);
    expect(r.again.backend).toBe('webgpu');
    // The normal load path reads the weight cache: the reload comes from it when the first load wrote it.
    if (r.first.cacheKey) expect(r.again.loadedFrom).toBe('cache');
    expect(r.reference).toHaveLength(16);
    expect(r.after).toEqual(r.reference);
  });
});
