/**
 * Download once, then offline, in the built app with a local hub (issue 8's "What must be shown"):
 * first load with progress, a second page from OPFS with zero requests to /hub/, offline with the
 * shell from the service worker, a corrupt cache detected while the previous model keeps
 * answering, delete freeing space, a dropped connection resumed, an injected quota refusal, and
 * a model too large for the adapter refused before its download.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedTensors, parseLlamaConfig } from '../models/config.ts';
import { startHubServer, type HubServer } from '../scripts/hub/hub-server.ts';
import { HAS_SHARED, warnIfNoShared } from '../tests/helpers/shared.ts';
import { fineMedParquet, fineMedRows } from '../tests/models/retrieval/finemed-fixture.ts';
import { answerOf, appUrl, importTraces, loadModels, openApp, setSettings, startAppWithTestHub, startAsk, status, type AppWithHub } from './support/app-driver.ts';
import { SHORT_TRACES, SHORT_TRACES_NAME, shortQuestion } from './support/cli-ask.ts';

warnIfNoShared('the model manager, weight cache and offline app');

const SETTINGS = { steps: 2, lr: 0.01, maxTrainTokens: 96, maxNewTokens: 8, temperature: 0, k: 3 };
const QUESTION = 'Crushing chest pain while shovelling snow?';

/**
 * A one-layer model no GPU of this kind can run: a matrix too big for one binding is split into row
 * blocks (models/gpu/buffer-sizes.ts matrixBlocks), but one row of down_proj (f32, K = 272.6 M) is
 * 1.09 GB, over SwiftShader's 1 GiB maxBufferSize, so no split helps. A sparse file, never read.
 */
function writeOversizedRepo(dir: string): void {
  const raw = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 256, hidden_size: 64, intermediate_size: 2 ** 28 + 2 ** 22,
    num_hidden_layers: 1, num_attention_heads: 1, num_key_value_heads: 1, head_dim: 64, max_position_embeddings: 512,
    rms_norm_eps: 1e-5, rope_theta: 500000, hidden_act: 'silu', tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'bfloat16',
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  let offset = 0;
  for (const [name, shape] of expectedTensors(parseLlamaConfig(raw))) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  writeSync(fd, len);
  writeSync(fd, json);
  ftruncateSync(fd, 8 + json.length + offset); // ~105 GB, sparse
  closeSync(fd);
}

let env: AppWithHub;
let app: AppWithHub['app'];
let browser: AppWithHub['browser'];
let hubDir: string;
/** The greedy TTT-off answer of the first load: every other load must reproduce it. */
let reference = '';

beforeAll(async () => {
  if (!HAS_SHARED) return;
  env = await startAppWithTestHub();
  ({ app, browser, hubDir } = env);
  writeOversizedRepo(join(hubDir, 'test-org', 'too-big'));
});
afterAll(async () => env?.close());

/** Every request of a context, by URL. */
function recordRequests(context: BrowserContext): string[] {
  const urls: string[] = [];
  context.on('request', (r) => urls.push(r.url()));
  return urls;
}

describe.skipIf(!HAS_SHARED)('download once, then offline (one browser profile)', () => {
  let page: Page;
  let context: BrowserContext;
  let requests: string[];

  beforeAll(async () => {
    page = await openApp(browser, appUrl(app.url, { weights: 'q4' }));
    context = page.context();
    requests = recordRequests(context);
  });
  afterAll(async () => context?.close());

  it('first run: both models download with progress; a second page loads them from OPFS with zero /hub/ requests', async () => {
    const t0 = Date.now();
    await page.getByRole('button', { name: 'Load models' }).click();
    await page.getByLabel('Language model progress').waitFor({ state: 'attached', timeout: 60_000 });
    await status(page, 'Ready').waitFor({ timeout: 180_000 });
    const firstMs = Date.now() - t0;
    await status(page, 'Index ready').waitFor({ timeout: 180_000 });
    expect(await page.getByText(/downloaded in/).count()).toBe(1);
    expect(requests.some((u) => u.includes('/hub/test-org/stories260K/resolve/main/model.safetensors'))).toBe(true);
    await setSettings(page, SETTINGS);
    await startAsk(page, QUESTION, { ttt: false });
    reference = await answerOf(page, 'Answer');

    const second = await context.newPage();
    requests.length = 0;
    await second.goto(appUrl(app.url, { weights: 'q4' }));
    await page.close();
    page = second;
    const t1 = Date.now();
    await loadModels(page);
    const cachedMs = Date.now() - t1;
    expect(await page.getByText(/loaded from this device in/).count()).toBe(1);
    expect(requests.filter((u) => u.includes('/hub/'))).toEqual([]);
    await startAsk(page, QUESTION, { ttt: false });
    expect(await answerOf(page, 'Answer')).toBe(reference);
    console.log(`[model-manager e2e] stories260K q4 + tiny-random-bert, WebGPU: first load ${firstMs} ms (hub, quantize, OPFS write), second page ${cachedMs} ms (OPFS, 0 hub requests)`);
  });

  it('offline: the shell from the service worker, models and index from OPFS; a TTT question answered; only the origin asked', async () => {
    await page.getByRole('status', { name: 'App status' }).getByText('Available offline').waitFor({ timeout: 60_000 });
    // A corpus with questions short enough for stories260K's 512-token context becomes the active one.
    await importTraces(page, SHORT_TRACES, SHORT_TRACES_NAME);
    await context.setOffline(true);
    const origin = new URL(app.url).origin;
    await context.route('**/*', (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
    requests.length = 0;
    try {
      await page.reload();
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      await loadModels(page);
      expect(await page.getByText(`${SHORT_TRACES_NAME}: 6 traces`).count()).toBe(1);
      await startAsk(page, shortQuestion(1), { ttt: true });
      expect((await answerOf(page, 'Answer')).length).toBeGreaterThan(0);
      expect(await page.getByRole('region', { name: 'Retrieved trace' }).innerText()).toContain(shortQuestion(1));
      await page.getByText('Adapters cleared').waitFor();
      expect(await page.getByRole('list', { name: 'Training steps' }).getByRole('listitem').count()).toBe(SETTINGS.steps);
      expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:'))).toEqual([]);
      expect(requests.filter((u) => u.includes('/hub/'))).toEqual([]);
    } finally {
      await context.unroute('**/*');
      await context.setOffline(false);
    }
  });

  it('a flipped byte in the cache: a clear error, the loaded model keeps answering, and the next load downloads again', async () => {
    const flipped = await page.evaluate(async () => {
      const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('finemed-weight-cache');
      for await (const [, entry] of (root as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
        if (entry.kind !== 'directory') continue;
        const handle = await (await (entry as FileSystemDirectoryHandle).getDirectoryHandle('tensors')).getFileHandle('model.layers.1.mlp.down_proj.weight.bin');
        const file = await handle.getFile();
        const byte = new Uint8Array(await file.slice(100, 101).arrayBuffer())[0]!;
        const w = await handle.createWritable({ keepExistingData: true });
        await w.seek(100);
        await w.write(new Uint8Array([byte ^ 0x5a]));
        await w.close();
        return true;
      }
      return false;
    });
    expect(flipped).toBe(true);
    await page.getByRole('button', { name: 'Load models' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'The language model could not be loaded.' });
    await alert.waitFor({ timeout: 60_000 });
    expect(await alert.innerText()).toMatch(/cache-corrupt[\s\S]*model\.layers\.1\.mlp\.down_proj\.weight[\s\S]*downloaded again/);
    await status(page, 'Ready').waitFor();
    await startAsk(page, QUESTION, { ttt: false });
    expect(await answerOf(page, 'Answer')).toBe(reference); // the previous model, untouched
    await page.getByRole('button', { name: 'Load models' }).click();
    await page.getByText(/downloaded in/).waitFor({ timeout: 120_000 });
    await status(page, 'Ready').waitFor();
    await startAsk(page, QUESTION, { ttt: false });
    expect(await answerOf(page, 'Answer')).toBe(reference);
  });

  it('delete frees the space: the estimate goes down and the entry is gone', async () => {
    const UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };
    const usage = async () => {
      const m = /^([\d.]+) (B|KB|MB|GB|TB) used/.exec(await page.getByLabel('Storage use').innerText());
      if (!m) throw new Error('no storage use shown');
      return Number(m[1]) * UNITS[m[2]!]!;
    };
    const cached = page.getByRole('list', { name: 'Cached models' });
    await cached.getByRole('listitem').first().waitFor();
    const before = await usage();
    await cached.getByRole('button', { name: /^Delete cached model/ }).first().click();
    await expect.poll(() => page.getByRole('list', { name: 'Cached models' }).count()).toBe(0);
    await expect.poll(usage).toBeLessThan(before);
  });
});

describe.skipIf(!HAS_SHARED)('FineMed-DPO as the corpus (a fresh profile; the dataset in the local hub)', () => {
  it('says how long indexing takes here, then downloads and indexes it from the hub, and TTT retrieves from it', async () => {
    const dir = join(hubDir, 'datasets', 'hongzhouyu', 'FineMed-DPO', 'data');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'train-00000-of-00001.parquet'), fineMedParquet(fineMedRows(30)));
    const page = await openApp(browser, appUrl(app.url, { weights: 'q4' }));
    try {
      await loadModels(page);
      await page.getByLabel('Active corpus').selectOption('finemed-dpo');
      const estimate = page.getByText(/Embedding its 32,919 questions with .* takes about/);
      await estimate.waitFor({ timeout: 60_000 });
      expect(await estimate.innerText()).toMatch(/\d+(\.\d)? texts\/s, (measured on this device|a rough assumption until measured)/);
      await page.getByRole('button', { name: 'Download and index FineMed-DPO' }).click();
      await status(page, 'Index ready').waitFor({ timeout: 120_000 });
      expect(await page.getByText(/^FineMed-DPO: \d+ traces$/).innerText()).toMatch(/^FineMed-DPO: (2[0-9]|30) traces$/);
      await setSettings(page, { ...SETTINGS, steps: 1, maxTrainTokens: 192 }); // its questions make ~120-token prompts
      await startAsk(page, 'Lily went to the park', { ttt: true });
      await answerOf(page, 'Answer');
      expect(await page.getByRole('region', { name: 'Retrieved trace' }).innerText()).toContain('(case ');
      // From now on it opens from this device: the corpus choice names the stored copy.
      expect(await page.getByLabel('Active corpus').inputValue()).toBe('stored:FineMed-DPO');
    } finally {
      await page.context().close();
    }
  });
});

describe.skipIf(!HAS_SHARED)('downloads that go wrong (fresh profiles, a standalone hub with faults)', () => {
  let hub: HubServer;
  beforeAll(async () => {
    hub = await startHubServer(hubDir);
  });
  afterAll(async () => hub?.close());

  it('the hub drops the connection mid-file: the download resumes, re-fetching less than a tensor, and the model answers the same', async () => {
    hub.setFaults({ dropAfterBytes: { path: 'test-org/stories260K/resolve/main/model.safetensors', bytes: 50_000 } });
    hub.requests.length = 0;
    const page = await openApp(browser, `${appUrl(app.url, { weights: 'q4' })}&hub=${encodeURIComponent(hub.url)}`);
    try {
      await loadModels(page);
      const file = hub.requests.filter((r) => r.path.endsWith('/stories260K/resolve/main/model.safetensors') && r.method === 'GET');
      expect(file.some((r) => !r.complete)).toBe(true);
      const sent = file.reduce((n, r) => n + r.bytes, 0);
      const fileBytes = 1_044_984;
      // Everything is read once, plus what the dropped response had sent past its resume point.
      expect(sent - fileBytes).toBeLessThan(512 * 64 * 4 + 64 * 1024); // < the largest tensor (embeddings) + a chunk
      await setSettings(page, SETTINGS);
      await startAsk(page, QUESTION, { ttt: false });
      expect(await answerOf(page, 'Answer')).toBe(reference);
    } finally {
      hub.setFaults({});
      await page.context().close();
    }
  });

  it('quota exceeded: a typed error before anything is written, and no entry marked ready', async () => {
    const page = await openApp(browser, 'about:blank');
    try {
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(app.url).origin, quotaSize: 64 * 1024 });
      await page.goto(appUrl(app.url, { weights: 'q4' }));
      await page.getByRole('button', { name: 'Load models' }).click();
      const alert = page.getByRole('alert').filter({ hasText: 'The language model could not be loaded.' });
      await alert.waitFor({ timeout: 60_000 });
      expect(await alert.innerText()).toContain('storage-quota');
      expect(await page.getByRole('list', { name: 'Cached models' }).getByText(/ready|loaded/).count()).toBe(0);
    } finally {
      await page.context().close();
    }
  });

  it('a model too large for the adapter is refused before its download, naming the limit', async () => {
    hub.requests.length = 0;
    const page = await openApp(browser, `${appUrl(app.url, { model: 'test-org/too-big', weights: 'f32' })}&hub=${encodeURIComponent(hub.url)}`);
    try {
      await page.getByRole('button', { name: 'Load models' }).click();
      const alert = page.getByRole('alert').filter({ hasText: 'The language model could not be loaded.' });
      await alert.waitFor({ timeout: 60_000 });
      const text = await alert.innerText();
      expect(text).toContain('device-limits');
      expect(text).toMatch(/model\.layers\.0\.mlp\.down_proj\.weight[\s\S]*maxBufferSize/);
      const read = hub.requests.filter((r) => r.path.includes('/too-big/')).reduce((n, r) => n + r.bytes, 0);
      expect(read).toBeLessThan(1e6); // config and safetensors header only, of a ~105 GB checkpoint
    } finally {
      await page.context().close();
    }
  });
});
