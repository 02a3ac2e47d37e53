import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbedder } from '../../../models/retrieval/embedder.ts';
import type { Embedder } from '../../../models/retrieval/embedder-types.ts';
import { loadNodeEmbedder } from '../../../node/retrieval/node-embedder.ts';
import { configureTransformers } from '../../../models/retrieval/transformers-env.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('embedder plumbing on tiny-random-bert and the bge tokenizer vectors');

const TEXTS = [
  'What causes gout?',
  'A 24-year-old has fever, neck stiffness and a petechial rash. What is the most likely diagnosis and the first step in management?',
  'Hyponatraemia',
  'Chest pain radiating to the back with unequal arm blood pressures.',
  'Why does hypokalaemia occur with vomiting?',
];

describe.skipIf(!HAS_SHARED)('embedder plumbing (tiny-random-bert, random weights, real bge tokenizer)', () => {
  let embedder: Embedder;
  beforeAll(async () => {
    configureTransformers({ allowRemoteModels: false, localModelPath: sharedPath('models') });
    embedder = await createEmbedder({ model: 'tiny-random-bert', batchSize: 3 });
  });
  afterAll(() => embedder?.dispose());

  it('identifies itself and runs on the CPU in Node', () => {
    expect(embedder.info).toEqual({ model: 'tiny-random-bert', dims: 32, dtype: 'fp32', pooling: 'cls', normalize: true });
    expect(embedder.device).toBe('cpu');
  });

  it('gives unit-norm vectors of the right dimension, in input order, with progress', async () => {
    const seen: number[] = [];
    const v = await embedder.embed(TEXTS, { onProgress: (p) => seen.push(p.done) });
    expect(v).toHaveLength(TEXTS.length * 32);
    for (let i = 0; i < TEXTS.length; i++) {
      const row = v.subarray(i * 32, (i + 1) * 32);
      expect(Math.hypot(...row)).toBeCloseTo(1, 5);
    }
    expect(seen).toEqual([3, 5]);
  });

  it('a padded batch entry equals the same text embedded alone', async () => {
    const batch = await embedder.embed(TEXTS);
    for (let i = 0; i < TEXTS.length; i++) {
      const single = await embedder.embed([TEXTS[i]]);
      let maxDiff = 0;
      for (let j = 0; j < 32; j++) maxDiff = Math.max(maxDiff, Math.abs(single[j] - batch[i * 32 + j]));
      expect(maxDiff).toBeLessThan(1e-5);
    }
  });

  it('different texts give different vectors; the same text the same one', async () => {
    const v = await embedder.embed([TEXTS[0], TEXTS[1], TEXTS[0]]);
    expect(Array.from(v.subarray(0, 32))).toEqual(Array.from(v.subarray(64, 96)));
    expect(Array.from(v.subarray(0, 32))).not.toEqual(Array.from(v.subarray(32, 64)));
  });

  it('rejects empty texts and a missing model with typed errors', async () => {
    await expect(embedder.embed(['ok', '  '])).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(createEmbedder({ model: 'no-such-model' })).rejects.toMatchObject({ code: 'not-found' });
  });
});

describe.skipIf(!HAS_SHARED)('embedder from a hub-shaped server, then offline from the cache', () => {
  it('downloads <repo>/resolve/main/<file>, caches it, and loads again with downloads off', async () => {
    const served: string[] = [];
    const seen: string[] = []; // every request, 404s too
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const m = req.url?.match(/^\/test-org\/tiny-bge\/resolve\/main\/(.+)$/);
      const path = m ? sharedPath('models', 'tiny-random-bert', decodeURIComponent(m[1])) : '';
      if (!m || !existsSync(path)) {
        res.statusCode = 404;
        return res.end();
      }
      served.push(m[1]);
      res.end(readFileSync(path));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const cacheDir = mkdtempSync(join(tmpdir(), 'hub-cache-'));
    try {
      const remoteHost = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const online = await loadNodeEmbedder('test-org/tiny-bge', { cacheDir, remoteHost });
      const a = await online.embed(['What causes gout?']);
      await online.dispose();
      expect(served).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'onnx/model.onnx']));
      expect(existsSync(join(cacheDir, 'test-org', 'tiny-bge', 'onnx', 'model.onnx'))).toBe(true);
      expect(online.source).toEqual({ kind: 'hub', hub: remoteHost, repo: 'test-org/tiny-bge', revision: 'main' });
      expect(online.fromCache).toBe(false);
      // Downloads still allowed and the hub up: the cached model loads with no request at all.
      const requests = seen.length;
      const again = await loadNodeEmbedder('test-org/tiny-bge', { cacheDir, remoteHost });
      expect(seen.slice(requests)).toEqual([]);
      expect(again.fromCache).toBe(true);
      await again.dispose();
      await new Promise((r) => server.close(r));
      // The hub gone: downloads allowed or not, the cache serves.
      for (const allowRemote of [true, false]) {
        const offline = await loadNodeEmbedder('test-org/tiny-bge', { cacheDir, allowRemote, remoteHost });
        expect(Array.from(await offline.embed(['What causes gout?']))).toEqual(Array.from(a));
        expect(offline.info.model).toBe('test-org/tiny-bge');
        await offline.dispose();
      }
    } finally {
      server.close();
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});

/** llama.cpp's tokenizer test format: inputs separated by "\n__ggml_vocab_test__\n", one line of ids per input. */
function vocabTests(dir: string, name: string): { text: string; ids: number[] }[] {
  const inp = readFileSync(`${dir}/${name}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  inp.pop(); // the file ends with the separator
  const out = readFileSync(`${dir}/${name}.out`, 'utf8').split('\n');
  return inp.map((text, i) => ({ text, ids: out[i].trim() === '' ? [] : out[i].trim().split(/\s+/).map(Number) }));
}

describe.skipIf(!HAS_SHARED)('the bge-small-en-v1.5 tokenizer', () => {
  const cases = HAS_SHARED ? vocabTests(sharedPath('models', 'bert-uncased-tokenizer', 'testdata'), 'ggml-vocab-bert-bge.gguf') : [];

  it('passes the 46 llama.cpp test vectors (ids without [CLS]/[SEP], as llama.cpp tokenizes them)', async () => {
    configureTransformers({ allowRemoteModels: false, localModelPath: sharedPath('models') });
    const tok = await AutoTokenizer.from_pretrained('bert-uncased-tokenizer');
    expect(cases).toHaveLength(46);
    const failed = cases.filter((c) => JSON.stringify(tok.encode(c.text, { add_special_tokens: false })) !== JSON.stringify(c.ids));
    expect(failed.map((c) => c.text)).toEqual([]);
    // The embedder feeds the model [CLS] ids [SEP]; CLS pooling reads position 0.
    expect(tok.encode('Hello world')).toEqual([101, 7592, 2088, 102]);
  });

  it('is the tokenizer tiny-random-bert ships (so the plumbing tests use the real bge vocabulary)', () => {
    const a = readFileSync(sharedPath('models', 'tiny-random-bert', 'tokenizer.json'));
    expect(a.equals(readFileSync(sharedPath('models', 'bert-uncased-tokenizer', 'tokenizer.json')))).toBe(true);
  });
});
