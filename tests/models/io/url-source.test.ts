import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../models/checkpoint.ts';
import { AbortError, NetworkError, NotFoundError, WeightsFormatError, type EngineError } from '../../../models/errors.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { UrlModelSource } from '../../../models/io/url-source.ts';
import { writeRandomLlama } from '../../helpers/random-model.ts';

const FAST = 10_000;
/** Failure tests retry transient errors quickly (the default backoff is 0.5 s doubling, 5 tries). */
const QUICK_RETRY = { retry: { baseDelayMs: 5 } };
let dir: string;
let server: Server;
let origin: string;
const seen: { method: string; url: string; range?: string; auth?: string }[] = [];
const data = new Uint8Array(5000).map((_, i) => (i * 31 + 7) & 0xff);

/**
 * Static server over `dir`. The first path segment picks a behaviour:
 * files (HEAD + Range, the normal case), nohead (405 on HEAD), norange (ignores Range),
 * nolength (ignores Range, never says Content-Length), cut (drops the connection mid-body),
 * short (206 with one byte less than asked), stall (sends part of the body, then nothing),
 * auth (401 without the right token), fail (500). Anything else, or a missing file: 404.
 */
async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url!, 'http://x');
  const [, mode, ...rest] = url.pathname.split('/');
  const rel = rest.map(decodeURIComponent).join('/');
  const range = req.headers.range;
  seen.push({ method: req.method!, url: url.pathname, range, auth: req.headers.authorization });
  const notFound = (): void => void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  const modes = ['files', 'nohead', 'norange', 'nolength', 'cut', 'short', 'stall', 'auth', 'fail'];
  if (!modes.includes(mode) || rel.includes('..')) return notFound();
  if (mode === 'fail') return void res.writeHead(500).end('boom');
  if (mode === 'auth' && req.headers.authorization !== 'Bearer secret') return void res.writeHead(401).end();
  const path = join(dir, rel);
  const st = await stat(path).catch(() => null);
  if (!st?.isFile()) return notFound();
  const size = st.size;
  if (req.method === 'HEAD') {
    if (mode === 'nohead') return void res.writeHead(405).end();
    if (mode === 'nolength') return void res.writeHead(200).end();
    return void res.writeHead(200, { 'Content-Length': size, 'Accept-Ranges': 'bytes' }).end();
  }
  const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
  if (!m || mode === 'norange' || mode === 'nolength') {
    res.writeHead(200, mode === 'nolength' ? {} : { 'Content-Length': size });
    createReadStream(path).on('error', () => res.destroy()).pipe(res);
    return;
  }
  const start = Number(m[1]);
  const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  if (start >= size) return void res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
  const len = end - start + 1;
  const bytes = (await readFile(path)).subarray(start, end + 1);
  const headers = { 'Content-Range': `bytes ${start}-${end}/${size}` };
  if (mode === 'short') return void res.writeHead(206, { ...headers, 'Content-Length': len - 1 }).end(bytes.subarray(0, len - 1));
  res.writeHead(206, { ...headers, 'Content-Length': len });
  if (mode === 'cut' && len > 1) {
    res.write(bytes.subarray(0, len >> 1), () => res.destroy());
    return;
  }
  if (mode === 'stall' && len > 1) return void res.write(bytes.subarray(0, len >> 1));
  res.end(bytes);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'url-src-'));
  await writeFile(join(dir, 'data.bin'), data);
  await writeFile(join(dir, 'name with space.txt'), 'spaced');
  await writeRandomLlama(join(dir, 'sharded'), {
    seed: 11, hiddenSize: 32, intermediateSize: 48, numLayers: 3, numHeads: 4, numKvHeads: 2, vocabSize: 70, sharded: true, ropeScaling: true,
  });
  await writeFile(join(dir, 'big.bin'), '');
  await truncate(join(dir, 'big.bin'), 17 * 1024 * 1024); // sparse: cheap on disk
  server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function caught(p: Promise<unknown>): Promise<EngineError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: EngineError) => e,
  );
}

describe('UrlModelSource', () => {
  it('finds the size with HEAD and reads exact ranges', async () => {
    const src = new UrlModelSource(`${origin}/files`);
    const f = await src.open('data.bin');
    expect(f.size).toBe(5000);
    for (const [off, len] of [[0, 8], [1, 1], [4093, 907], [4999, 1], [123, 2000], [0, 5000]]) {
      expect(await f.read(off, len)).toEqual(data.slice(off, off + len));
    }
    expect(await f.read(10, 0)).toEqual(new Uint8Array(0));
    await expect(f.read(4990, 20)).rejects.toThrow(WeightsFormatError);
    const ranges = seen.filter((r) => r.url === '/files/data.bin' && r.method === 'GET').map((r) => r.range);
    expect(ranges).toContain('bytes=4093-4999');
  });

  it('reads text, encodes path segments and answers exists', async () => {
    const src = new UrlModelSource(`${origin}/files/`);
    expect(await src.readText('name with space.txt')).toBe('spaced');
    expect(await src.exists('data.bin')).toBe(true);
    expect(await src.exists('nope.bin')).toBe(false);
  });

  it('falls back to a 1-byte range GET when HEAD is not allowed', async () => {
    const f = await new UrlModelSource(`${origin}/nohead/`).open('data.bin');
    expect(f.size).toBe(5000);
    expect(await f.read(100, 50)).toEqual(data.slice(100, 150));
  });

  it('accepts a server that ignores Range for a small file (downloads it once)', async () => {
    for (const mode of ['norange', 'nolength']) {
      const before = seen.length;
      const f = await new UrlModelSource(`${origin}/${mode}/`).open('data.bin');
      expect(f.size).toBe(5000);
      expect(await f.read(10, 20)).toEqual(data.slice(10, 30));
      expect(await f.read(4000, 1000)).toEqual(data.slice(4000));
      expect(seen.slice(before).filter((r) => r.method === 'GET').length).toBe(1);
    }
  });

  it('refuses to download a large file whose server ignores Range', { timeout: FAST }, async () => {
    const f = await new UrlModelSource(`${origin}/norange/`).open('big.bin');
    expect(f.size).toBe(17 * 1024 * 1024);
    const e = await caught(f.read(0, 8));
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toContain('ignores Range');
  });

  it('sends the configured headers and uses the given fetch', async () => {
    let calls = 0;
    const src = new UrlModelSource(`${origin}/auth/`, {
      headers: { Authorization: 'Bearer secret' },
      fetch: (input, init) => {
        calls++;
        return fetch(input, init);
      },
    });
    const f = await src.open('data.bin');
    expect(await f.read(7, 3)).toEqual(data.slice(7, 10));
    expect(calls).toBe(2);
    const e = await caught(new UrlModelSource(`${origin}/auth/`).open('data.bin'));
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.code).toBe('network');
    expect(e.message).toContain('401');
    expect(e.message).toContain('access token');
  });

  it('loads a sharded model identically to NodeDirSource', async () => {
    const viaUrl = await openCheckpoint(new UrlModelSource(`${origin}/files/sharded/`));
    const viaDisk = await openCheckpoint(new NodeDirSource(join(dir, 'sharded')));
    expect(viaUrl.config).toEqual(viaDisk.config);
    expect(viaUrl.totalBytes).toBe(viaDisk.totalBytes);
    expect([...viaUrl.tensors.keys()]).toEqual([...viaDisk.tensors.keys()]);
    for (const name of viaDisk.tensors.keys()) {
      expect(await viaUrl.readTensor(name), name).toEqual(await viaDisk.readTensor(name));
    }
    expect(await viaUrl.readRows('lm_head.weight', 60, 10)).toEqual(await viaDisk.readRows('lm_head.weight', 60, 10));
  });
});

describe('UrlModelSource failures', () => {
  it('a URL that 404s -> NotFoundError naming the URL', { timeout: FAST }, async () => {
    const src = new UrlModelSource(`${origin}/files/`);
    const e = await caught(src.open('missing.safetensors'));
    expect(e).toBeInstanceOf(NotFoundError);
    expect(e.code).toBe('not-found');
    expect(e.message).toContain(`${origin}/files/missing.safetensors`);
    const t = await caught(src.readText('missing.json'));
    expect(t).toBeInstanceOf(NotFoundError);
    expect(t.message).toContain(`${origin}/files/missing.json`);
  });

  it('a model URL that 404s -> openCheckpoint throws NotFoundError naming config.json', { timeout: FAST }, async () => {
    const e = await caught(openCheckpoint(new UrlModelSource(`${origin}/files/no-such-model/`)));
    expect(e).toBeInstanceOf(NotFoundError);
    expect(e.message).toContain(`${origin}/files/no-such-model/config.json`);
  });

  it('HTTP 500 -> NetworkError with the status', { timeout: FAST }, async () => {
    const e = await caught(new UrlModelSource(`${origin}/fail/`, QUICK_RETRY).readText('config.json'));
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toContain('HTTP 500');
  });

  it('an unreachable server -> NetworkError', { timeout: FAST }, async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const e = await caught(new UrlModelSource(`http://127.0.0.1:${port}/`, QUICK_RETRY).open('config.json'));
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toContain(`http://127.0.0.1:${port}/config.json`);
  });

  it('a body cut mid-way -> NetworkError, no hang', { timeout: FAST }, async () => {
    const f = await new UrlModelSource(`${origin}/cut/`, QUICK_RETRY).open('data.bin');
    const e = await caught(f.read(0, 4000));
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toContain('connection broke');
  });

  it('a 206 reply one byte short -> WeightsFormatError', { timeout: FAST }, async () => {
    const f = await new UrlModelSource(`${origin}/short/`).open('data.bin');
    const e = await caught(f.read(100, 100));
    expect(e).toBeInstanceOf(WeightsFormatError);
    expect(e.message).toContain('after 99 of 100 bytes');
  });

  it('a stalled body -> NetworkError after the idle timeout', { timeout: FAST }, async () => {
    const f = await new UrlModelSource(`${origin}/stall/`, { idleTimeoutMs: 300, ...QUICK_RETRY }).open('data.bin');
    const t0 = Date.now();
    const e = await caught(f.read(0, 1000));
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toContain('stalled');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('AbortSignal cancels a stalled read with AbortError', { timeout: FAST }, async () => {
    const f = await new UrlModelSource(`${origin}/stall/`).open('data.bin');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const e = await caught(f.read(0, 1000, ac.signal));
    expect(e).toBeInstanceOf(AbortError);
    expect(e.code).toBe('aborted');
    const pre = new AbortController();
    pre.abort();
    expect(await caught(new UrlModelSource(`${origin}/files/`).open('data.bin', pre.signal))).toBeInstanceOf(AbortError);
  });
});
