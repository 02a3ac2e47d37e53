/**
 * `llm generate --cache-dir`: the first run downloads from a local HTTP server and fills the
 * cache; the second makes no request at all and gives the same logits.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../../scripts/cli-cache.ts';
import { HAS_SHARED, ROOT, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

const run = promisify(execFile);
warnIfNoShared('llm CLI weight cache (--cache-dir) with stories260K over HTTP');

let server: Server;
let url: string;
let tmp: string;
const requests: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'llm-cache-cli-'));
  const dir = sharedPath('golden/stories260K-hf/f32');
  // A minimal static server with Range support, counting every request.
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`);
    const file = join(dir, decodeURIComponent(new URL(req.url!, 'http://x').pathname.replace(/^\/m\//, '')));
    stat(file).then(async (st) => {
      if (req.method === 'HEAD') return void res.writeHead(200, { 'Content-Length': st.size }).end();
      const bytes = await readFile(file);
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!m) return void res.writeHead(200, { 'Content-Length': st.size }).end(bytes);
      const [a, b] = [Number(m[1]), Math.min(Number(m[2]), st.size - 1)];
      res.writeHead(206, { 'Content-Length': b - a + 1, 'Content-Range': `bytes ${a}-${b}/${st.size}` }).end(bytes.subarray(a, b + 1));
    }, () => res.writeHead(404).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/m/`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await rm(tmp, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/llm.ts', ...args], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

describe('llm generate --cache-dir', () => {
  it('defaults to $XDG_CACHE_HOME/finemed-ttt, else ~/.cache/finemed-ttt', () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/finemed-ttt');
    expect(defaultCacheDir({})).toMatch(/\.cache\/finemed-ttt$/);
  });

  it.skipIf(!HAS_SHARED)('the second run reads the cache: zero requests to the server, same logits', async () => {
    const args = ['generate', '--model', url, '--ids', '1,403,407,261', '--max-new', '4', '--greedy', '--backend', 'cpu', '--json', '--cache-dir', join(tmp, 'c')];
    const first = await cli(args);
    expect(first.loaded_from).toBe('source');
    expect(requests.length).toBeGreaterThan(0);
    requests.length = 0;
    const second = await cli(args);
    expect(requests).toEqual([]);
    expect(second.loaded_from).toBe('cache');
    const [a, b] = [first.last_logits as number[], second.last_logits as number[]];
    expect(a).toHaveLength(512);
    expect(b).toEqual(a);
    expect(second.ids).toEqual(first.ids);
    const off = await cli(['generate', '--model', url, '--ids', '1,403', '--max-new', '1', '--backend', 'cpu', '--json', '--no-cache']);
    expect(off.loaded_from).toBe('source');
    expect(requests.length).toBeGreaterThan(0);
  });

  it('refuses --cache-dir together with --no-cache', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'scripts/llm.ts', 'generate', '--model', '/nonexistent', '--ids', '1', '--backend', 'cpu', '--no-cache', '--cache-dir', tmp], { cwd: ROOT }).catch((e) => e);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1))).toMatchObject({ error: { code: 'usage', message: expect.stringMatching(/--cache-dir or --no-cache/) } });
  });
});
