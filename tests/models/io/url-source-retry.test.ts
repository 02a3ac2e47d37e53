/**
 * UrlModelSource retries: transient failures (5xx, a connection dropped mid-body, a stall) are
 * retried with backoff and a range read continues where it stopped; 4xx is final; a cancel during
 * the backoff wait ends it at once; revision() reports X-Repo-Commit and ETags.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AbortError, NetworkError, NotFoundError, type EngineError } from '../../../models/errors.ts';
import { UrlModelSource, type RetryEvent } from '../../../models/io/url-source.ts';
import { UPLOAD_CHUNK_BYTES } from '../../../models/gpu/buffer-sizes.ts';

const SIZE = 4 * 2 ** 20;
const data = new Uint8Array(SIZE).map((_, i) => (i * 131 + 17) & 0xff);

/** Faults for the next requests to a file: consumed in order; then the file is served normally. */
type Fault = { status: number; retryAfter?: string } | { dropAfter: number } | { stallAfter: number };
let faults: Fault[] = [];
let log: { method: string; path: string; range?: string; sent: number }[] = [];
let server: Server;
let base: string;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const entry = { method: req.method!, path: req.url!, range: req.headers.range, sent: 0 };
  log.push(entry);
  if (req.url!.endsWith('/missing.bin')) return void res.writeHead(404).end();
  if (req.url!.endsWith('/forbidden.bin')) return void res.writeHead(403).end();
  const headers = { 'X-Repo-Commit': 'c0ffee1234', ETag: '"v1-etag"', 'Accept-Ranges': 'bytes' };
  const fault = req.method === 'HEAD' ? undefined : faults.shift();
  if (fault && 'status' in fault) return void res.writeHead(fault.status, fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {}).end('busy');
  if (req.method === 'HEAD') return void res.writeHead(200, { ...headers, 'Content-Length': SIZE }).end();
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0, end = m ? Number(m[2]) : SIZE - 1;
  const body = Buffer.from(data.buffer, start, end - start + 1);
  res.writeHead(m ? 206 : 200, { ...headers, 'Content-Length': body.length, ...(m ? { 'Content-Range': `bytes ${start}-${end}/${SIZE}` } : {}) });
  if (fault && 'dropAfter' in fault) {
    entry.sent = fault.dropAfter;
    res.write(body.subarray(0, fault.dropAfter), () => setTimeout(() => res.destroy(), 20));
    return;
  }
  if (fault && 'stallAfter' in fault) {
    entry.sent = fault.stallAfter;
    res.write(body.subarray(0, fault.stallAfter)); // then nothing: the client's idle timer fires
    return;
  }
  entry.sent = body.length;
  res.end(body);
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hub/test-org/model/resolve/main/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  faults = [];
  log = [];
});

function source(opts: { baseDelayMs?: number; tries?: number; idleTimeoutMs?: number } = {}) {
  const retries: RetryEvent[] = [];
  const src = new UrlModelSource(base, {
    retry: { baseDelayMs: opts.baseDelayMs ?? 20, tries: opts.tries, jitter: 0 }, idleTimeoutMs: opts.idleTimeoutMs, onRetry: (e) => retries.push(e),
  });
  return { src, retries };
}

/** Byte-exact comparison (vitest's deep equality is slow on megabytes). */
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

async function caught(p: Promise<unknown>): Promise<EngineError> {
  return p.then(() => { throw new Error('expected a rejection'); }, (e: EngineError) => e);
}

const gets = () => log.filter((r) => r.method === 'GET');

describe('UrlModelSource retries', () => {
  it('5xx and 429 are retried with doubling delays, then the read succeeds', async () => {
    const { src, retries } = source();
    const f = await src.open('model.safetensors');
    faults = [{ status: 503 }, { status: 500 }, { status: 429 }];
    expect(await f.read(1000, 5000)).toEqual(data.slice(1000, 6000));
    expect(retries.map((r) => [r.attempt, r.delayMs])).toEqual([[1, 20], [2, 40], [3, 80]]);
    expect(retries[0].reason).toContain('HTTP 503');
    expect(gets()).toHaveLength(4);
  });

  it("honours a server's Retry-After", async () => {
    const { src, retries } = source();
    faults = [{ status: 503, retryAfter: '1' }];
    expect(await src.readText('config.json')).toHaveLength(SIZE);
    expect(retries[0].delayMs).toBe(1000);
  });

  it('a connection dropped mid-body: the next request asks only for the rest; the result is exact', async () => {
    const { src, retries } = source();
    const f = await src.open('model.safetensors');
    const offset = 123, length = SIZE - 1000;
    faults = [{ dropAfter: 2 ** 20 }];
    const got = await f.read(offset, length);
    expect(got.length).toBe(length);
    expect(same(got, data.subarray(offset, offset + length))).toBe(true);
    const [first, second] = gets();
    expect(first.range).toBe(`bytes=${offset}-${offset + length - 1}`);
    const resumedAt = Number(/^bytes=(\d+)-/.exec(second.range!)![1]);
    expect(resumedAt).toBeGreaterThan(offset);
    expect(retries).toHaveLength(1);
    expect(retries[0].receivedBytes).toBe(resumedAt - offset);
    // Bytes fetched twice: what the server sent past the resume point (lost in flight), if any.
    const refetched = first.sent - (resumedAt - offset);
    console.log(`[url-source] dropped after ${first.sent} bytes; resumed at +${resumedAt - offset}; re-fetched ${refetched} bytes`);
    expect(refetched).toBeGreaterThanOrEqual(0);
    expect(refetched).toBeLessThan(UPLOAD_CHUNK_BYTES);
    expect(second.sent).toBe(length - (resumedAt - offset));
  });

  it('a stalled body is retried after the idle timeout and continues', async () => {
    const { src, retries } = source({ idleTimeoutMs: 300 });
    const f = await src.open('model.safetensors');
    faults = [{ stallAfter: 65536 }];
    expect(same(await f.read(0, 200_000), data.subarray(0, 200_000))).toBe(true);
    expect(retries).toHaveLength(1);
    expect(retries[0].reason).toContain('stalled');
    expect(retries[0].receivedBytes).toBeGreaterThan(0);
  });

  it('gives up after the configured tries with the last error', async () => {
    const { src, retries } = source({ tries: 3 });
    faults = [{ status: 502 }, { status: 502 }, { status: 502 }, { status: 502 }];
    const e = await caught(src.readText('config.json'));
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toContain('HTTP 502');
    expect(retries).toHaveLength(2);
    expect(gets()).toHaveLength(3);
  });

  it('4xx is final: no retry for 404 or 403', async () => {
    const { src, retries } = source();
    expect(await caught(src.open('missing.bin'))).toBeInstanceOf(NotFoundError);
    expect(await caught(src.readText('missing.bin'))).toBeInstanceOf(NotFoundError);
    const e = await caught(src.readText('forbidden.bin'));
    expect(e.message).toContain('HTTP 403');
    expect(retries).toEqual([]);
    expect(log).toHaveLength(3);
  });

  it('cancelling during the backoff wait stops at once', async () => {
    const { src, retries } = source({ baseDelayMs: 10_000 });
    faults = [{ status: 503 }, { status: 503 }];
    const ac = new AbortController();
    const t0 = Date.now();
    const p = caught(src.readText('config.json', ac.signal));
    while (retries.length === 0) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    const e = await p;
    expect(e).toBeInstanceOf(AbortError);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(gets()).toHaveLength(1);
  });

  it('revision() gives the hub commit and the ETags seen, without a request once config.json was read', async () => {
    const { src } = source();
    await src.readText('config.json');
    await src.open('model.safetensors');
    const before = log.length;
    expect(await src.revision()).toEqual({ commit: 'c0ffee1234', etags: { 'config.json': '"v1-etag"', 'model.safetensors': '"v1-etag"' } });
    expect(log.length).toBe(before);
    const fresh = source().src;
    expect((await fresh.revision()).commit).toBe('c0ffee1234'); // one HEAD for config.json
    expect(log.slice(before)).toEqual([expect.objectContaining({ method: 'HEAD', path: '/hub/test-org/model/resolve/main/config.json' })]);
  });
});
