import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, ROOT, sharedPath, warnIfNoShared } from '../helpers/shared.ts';
import { fineMedParquet, fineMedRows, startFakeHub } from '../models/retrieval/finemed-fixture.ts';

const run = promisify(execFile);
warnIfNoShared('index CLI build + query with tiny-random-bert');

/** No hub reachable: port 9 (discard) on loopback refuses connections. */
const NO_HUB = 'http://127.0.0.1:9/';

/** Runs `npm run --silent index -- ...` (as tsx does) and parses its last stdout line. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ json: Record<string, unknown>; code: number; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'scripts/index.ts', ...args], { cwd: ROOT, maxBuffer: 64 * 2 ** 20, env: { ...process.env, ...env } });
    return { json: JSON.parse(stdout.trim().split('\n').at(-1)!), code: 0, stderr };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { json: JSON.parse(err.stdout.trim().split('\n').at(-1)!), code: err.code, stderr: err.stderr };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'index-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!HAS_SHARED)('npm run index -- build / query / info', () => {
  const embedder = sharedPath('models', 'tiny-random-bert');
  // The describe body runs even when skipped: read ../shared only when it is there.
  const lines = HAS_SHARED ? readFileSync(sharedPath('data', 'traces.jsonl'), 'utf8').trim().split('\n').slice(0, 120) : [];
  const corpus = join(dir, 'corpus.jsonl');
  if (HAS_SHARED) writeFileSync(corpus, [...lines.slice(0, 60), '{"id": "broken"', ...lines.slice(60)].join('\n') + '\n');
  const out = join(dir, 'idx');
  const q = (HAS_SHARED ? JSON.parse(lines[42]) : { id: '', question: '' }) as { id: string; question: string };

  it('builds an index, reporting the bad line, and queries it (last line JSON)', async () => {
    const b = await cli(['build', corpus, '--embedder', embedder, '--out', out]);
    expect(b.code).toBe(0);
    expect(b.json).toMatchObject({ skipped: 1, badLines: [{ line: 61 }], manifest: { corpus: { count: 120, name: 'corpus.jsonl' }, vectors: { dims: 32, dtype: 'F32' } } });
    expect(b.stderr).toMatch(/1 bad lines SKIPPED:\n {2}line 61: not valid JSON/);

    const r = await cli(['query', out, q.question, '-k', '5', '--embedder', embedder]);
    expect(r.code).toBe(0);
    const results = r.json.results as { id: string; score: number; question: string; rank: number }[];
    expect(results).toHaveLength(5);
    expect(results[0]).toMatchObject({ id: q.id, question: q.question, rank: 0 });
    expect(results[0].score).toBeCloseTo(1, 5);
    expect(results.map((x) => x.score)).toEqual([...results.map((x) => x.score)].sort((a, b) => b - a));
    expect(r.json.timings).toEqual(expect.objectContaining({ embedMs: expect.any(Number), searchMs: expect.any(Number) }));

    const exact = await cli(['query', out, q.question, '-k', '5', '--embedder', embedder, '--index', 'exact']);
    expect((exact.json.results as { id: string }[]).map((x) => x.id)).toEqual(results.map((x) => x.id));
  });

  it('says when the corpus or the embedder changed (stale), with a typed error', async () => {
    const changed = join(dir, 'changed.jsonl');
    writeFileSync(changed, lines.slice(0, 119).join('\n') + '\n');
    const info = await cli(['info', out, '--corpus', changed]);
    expect(info.json).toMatchObject({ state: 'stale', reasons: [expect.stringMatching(/^the corpus changed/)] });
    const other = await cli(['query', out, 'x', '--embedder', embedder, '--dtype', 'q8']);
    expect(other.code).toBe(1);
    expect(other.json).toMatchObject({ error: { name: 'StaleIndexError', message: expect.stringMatching(/dtype changed \(fp32 -> q8\)/) } });
  });

  it('builds from FineMed-DPO as a hub serves it (here a local hub-shaped server)', async () => {
    const hub = await startFakeHub({ repo: 'hongzhouyu/FineMed-DPO', license: 'mit', files: new Map([['data/train-00000-of-00001.parquet', fineMedParquet(fineMedRows(30))]]) });
    try {
      const r = await cli(['build', 'finemed-dpo', '--hub', hub.url, '--limit', '20', '--embedder', embedder, '--out', join(dir, 'finemed')]);
      expect(r.code).toBe(0);
      expect(r.json).toMatchObject({ skipped: 0, manifest: { corpus: { name: 'FineMed-DPO', count: 20 } } });
      const q = await cli(['query', join(dir, 'finemed'), 'Why does hypokalaemia occur with vomiting? (case 5)', '-k', '1', '--embedder', embedder]);
      expect(q.json.results).toMatchObject([{ id: 'finemed-dpo-5', source: 'hongzhouyu/FineMed-DPO', license: 'mit' }]);
    } finally {
      await hub.close();
    }
  });

  it('stops at a bad line with --on-bad-line stop', async () => {
    const r = await cli(['build', corpus, '--embedder', embedder, '--out', join(dir, 'never'), '--on-bad-line', 'stop']);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ error: { code: 'invalid-input', message: expect.stringMatching(/^Line 61: not valid JSON/) } });
  });

  it('queries without --embedder and without a hub: the index names its embedder folder; BM25 needs none', async () => {
    const withFlag = await cli(['query', out, q.question, '-k', '3', '--embedder', embedder]);
    const r = await cli(['query', out, q.question, '-k', '3'], { FINEMED_HUB: NO_HUB });
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ retriever: 'embedding', index: { embedderSource: { kind: 'local', path: embedder } } });
    expect(r.json.results).toEqual(withFlag.json.results);
    expect(r.stderr).toMatch(/embedder tiny-random-bert .*local folder/);
    const lexical = await cli(['query', out, q.question, '-k', '3', '--retriever', 'lexical'], { FINEMED_HUB: NO_HUB });
    expect(lexical.code).toBe(0);
    const hits = lexical.json.results as { id: string; score: number; bm25: number }[];
    expect(lexical.json).toMatchObject({ retriever: 'lexical', index: { kind: 'bm25' } });
    expect(hits).toHaveLength(3);
    expect(hits[0].id).toBe(q.id);
    expect(hits[0].score).toBeGreaterThan(0.99);
    expect(hits[0].bm25).toBeGreaterThan(hits[1].bm25);
  });

  it('a hub embedder: built once through the hub, queried later from the cache with the hub gone', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const m = req.url?.match(/^\/test-org\/tiny-bge\/resolve\/main\/(.+)$/);
      const path = m ? sharedPath('models', 'tiny-random-bert', decodeURIComponent(m[1])) : '';
      if (!m || !existsSync(path)) {
        res.statusCode = 404;
        return res.end();
      }
      res.end(readFileSync(path));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const cacheDir = join(dir, 'model-cache');
    const hubIndex = join(dir, 'hub-idx');
    try {
      const b = await cli(['build', corpus, '--embedder', 'test-org/tiny-bge', '--hub', hubUrl, '--cache-dir', cacheDir, '--out', hubIndex]);
      expect(b.code).toBe(0);
      expect(b.json).toMatchObject({ manifest: { embedderSource: { kind: 'hub', hub: hubUrl, repo: 'test-org/tiny-bge', revision: 'main' } } });
      expect(seen.length).toBeGreaterThan(0);
    } finally {
      await new Promise((r) => server.close(r));
    }
    const r = await cli(['query', hubIndex, q.question, '-k', '1', '--cache-dir', cacheDir], { FINEMED_HUB: NO_HUB });
    expect(r.code).toBe(0);
    expect(r.json.results).toMatchObject([{ id: q.id }]);
    expect(r.stderr).toMatch(/from the cache: test-org\/tiny-bge@main/);
    // Without the cache, the same query fails with a typed network error naming the model.
    const none = await cli(['query', hubIndex, q.question, '--cache-dir', join(dir, 'empty-cache')]);
    expect(none.code).toBe(1);
    expect(none.json).toMatchObject({ error: { code: 'network', message: expect.stringMatching(/test-org\/tiny-bge/) } });
  });

  it('resumes a killed build from its last checkpoint', async () => {
    const all = join(dir, 'all.jsonl');
    writeFileSync(all, readFileSync(sharedPath('data', 'traces.jsonl')));
    const killedOut = join(dir, 'killed');
    const args = ['--import', 'tsx', 'scripts/index.ts', 'build', all, '--embedder', embedder, '--out', killedOut, '--checkpoint', '64', '--batch', '8'];
    const child = spawn(process.execPath, args, { cwd: ROOT });
    let err = '';
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/embedding \d+\/1747 \(10%\)/.test(err)) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    expect(err).toMatch(/texts\/s/);
    expect(existsSync(join(killedOut, 'manifest.json'))).toBe(false);
    expect(existsSync(join(killedOut, 'partial.json'))).toBe(true);
    const resumed = await cli(['build', all, '--embedder', embedder, '--out', killedOut, '--checkpoint', '64', '--batch', '8']);
    expect(resumed.code).toBe(0);
    const from = resumed.json.resumedFrom as number;
    expect(from).toBeGreaterThanOrEqual(128);
    expect(from % 64).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resuming a partial build: ${from} of 1747 rows`));
    expect(existsSync(join(killedOut, 'partial.json'))).toBe(false);
    const q2 = (JSON.parse(lines[7]) as { id: string; question: string });
    const hit = await cli(['query', killedOut, q2.question, '-k', '1', '--index', 'exact']);
    expect(hit.json.results).toMatchObject([{ id: q2.id, score: expect.closeTo(1, 5) }]);
  });
});

describe('npm run index: command-line errors (no model needed)', { concurrent: true }, () => {
  it('an unknown option, a bad value or no command: usage, exit 2, the JSON shape of every CLI, usage on stderr', async () => {
    const unknown = await cli(['query', dir, 'Q?', '--bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.json).toMatchObject({ error: { name: 'UsageError', code: 'usage', message: expect.stringMatching(/--bogus/) } });
    expect(unknown.stderr).toMatch(/error \(usage\): .*--bogus[\s\S]*index build/);
    const badK = await cli(['query', dir, 'Q?', '-k', '0']);
    expect(badK).toMatchObject({ code: 2, json: { error: { code: 'usage', message: '--k must be a positive integer, got "0".' } } });
    const none = await cli([]);
    expect(none).toMatchObject({ code: 2, json: { error: { code: 'usage', message: expect.stringMatching(/a command is needed/) } } });
  });

  it('a folder without an index: not-found, exit 1', async () => {
    const r = await cli(['query', dir, 'Q?', '--retriever', 'lexical']);
    expect(r).toMatchObject({ code: 1, json: { error: { name: 'NotFoundError', code: 'not-found', message: expect.stringMatching(/holds no index/) } } });
  });
});
