/**
 * The dev and preview servers: /shared/ with HTTP Range semantics (what UrlModelSource relies on)
 * and cross-origin isolation headers. Plain Node fetch, no browser.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../tests/helpers/shared.ts';
import { parseRange } from '../scripts/vite/serve-shared.ts';
import { ROOT, startServer, type TestServer } from './support/index.ts';

warnIfNoShared('/shared/ Range serving');

describe('parseRange', () => {
  it('parses the forms of RFC 9110', () => {
    expect(parseRange(undefined, 100)).toBeNull();
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=50-1000', 100)).toEqual({ start: 50, end: 99 });
  });
  it('rejects unsatisfiable and malformed byte ranges, ignores other units and multi-ranges', () => {
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-2', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=abc', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-0', 0)).toBe('unsatisfiable');
    expect(parseRange('items=0-5', 100)).toBeNull();
    expect(parseRange('bytes=0-1,5-6', 100)).toBeNull();
  });
});

/** Checks one server; both the dev and the preview server must pass the same list. */
function rangeSuite(name: string, start: () => Promise<TestServer>): void {
  describe.skipIf(!HAS_SHARED)(`${name}: /shared/ with Range`, () => {
    let server: TestServer;
    const file = 'golden/stories260K-hf/f32/config.json';
    let bytes: Buffer;
    beforeAll(async () => {
      server = await start();
      bytes = readFileSync(sharedPath(file));
    });
    afterAll(async () => server?.close());
    const url = () => `${server.url}shared/${file}`;

    it('GET whole file: 200, Accept-Ranges, isolation headers', async () => {
      const r = await fetch(url());
      expect(r.status).toBe(200);
      expect(r.headers.get('accept-ranges')).toBe('bytes');
      expect(r.headers.get('content-length')).toBe(String(bytes.length));
      expect(r.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
      expect(Buffer.from(await r.arrayBuffer()).equals(bytes)).toBe(true);
    });
    it('HEAD: Content-Length, no body', async () => {
      const r = await fetch(url(), { method: 'HEAD' });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-length')).toBe(String(bytes.length));
      expect((await r.arrayBuffer()).byteLength).toBe(0);
    });
    it('Range: 206 with Content-Range and exactly those bytes', async () => {
      for (const [range, a, b] of [['bytes=3-10', 3, 10], ['bytes=5-', 5, bytes.length - 1], ['bytes=-7', bytes.length - 7, bytes.length - 1]] as const) {
        const r = await fetch(url(), { headers: { Range: range } });
        expect(r.status, range).toBe(206);
        expect(r.headers.get('content-range'), range).toBe(`bytes ${a}-${b}/${bytes.length}`);
        expect(r.headers.get('content-length'), range).toBe(String(b - a + 1));
        expect(Buffer.from(await r.arrayBuffer()).equals(bytes.subarray(a, b + 1)), range).toBe(true);
      }
    });
    it('HEAD with Range: 206 headers only', async () => {
      const r = await fetch(url(), { method: 'HEAD', headers: { Range: 'bytes=0-3' } });
      expect(r.status).toBe(206);
      expect(r.headers.get('content-length')).toBe('4');
    });
    it('bad ranges: 416 with the size', async () => {
      for (const range of [`bytes=${bytes.length}-`, 'bytes=9-2', 'bytes=x-y']) {
        const r = await fetch(url(), { headers: { Range: range } });
        expect(r.status, range).toBe(416);
        expect(r.headers.get('content-range'), range).toBe(`bytes */${bytes.length}`);
        await r.arrayBuffer();
      }
    });
    it('missing files, folders and escapes: 404', async () => {
      for (const path of ['shared/golden/nope.json', 'shared/golden/', 'shared/..%2Fmain%2Fpackage.json', 'shared/%2E%2E/main/package.json']) {
        const r = await fetch(server.url + path);
        expect(r.status, path).toBe(404);
        await r.arrayBuffer();
      }
    });
    it('a big binary file streams intact in ranges', async () => {
      const weights = 'golden/stories260K-hf/f32/model.safetensors';
      const all = readFileSync(sharedPath(weights));
      const r = await fetch(`${server.url}shared/${weights}`, { headers: { Range: `bytes=1000-${all.length - 1}` } });
      expect(r.status).toBe(206);
      expect(Buffer.from(await r.arrayBuffer()).equals(all.subarray(1000))).toBe(true);
    });
  });
}

rangeSuite('dev server', startServer);
rangeSuite('preview server', async () => {
  // No build needed: /shared/ is served by the plugin whether or not dist/ exists.
  const server = await preview({ configFile: resolve(ROOT, 'vite.config.ts'), root: ROOT, logLevel: 'warn', preview: { host: '127.0.0.1', port: 0 } });
  const port = (server.httpServer.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/`, close: () => server.close() };
});

describe('dev server isolation headers', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => server?.close());
  it('the page, the worker script and a 404 all carry COOP/COEP', async () => {
    for (const path of ['', 'e2e/gpu-probe.worker.ts?worker_file&type=module', 'no-such-file.js']) {
      const r = await fetch(server.url + path);
      await r.arrayBuffer();
      expect(r.headers.get('cross-origin-opener-policy'), path).toBe('same-origin');
      expect(r.headers.get('cross-origin-embedder-policy'), path).toBe('require-corp');
    }
  });
  it('unknown paths are 404, not the index page', async () => {
    const r = await fetch(server.url + 'nope/config.json');
    await r.arrayBuffer();
    expect(r.status).toBe(404);
  });
});
