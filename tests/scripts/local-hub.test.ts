import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger, Plugin } from 'vite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../models/checkpoint.ts';
import { NotFoundError } from '../../models/errors.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { UrlModelSource } from '../../models/io/url-source.ts';
import { loadFineMedDpo } from '../../models/retrieval/finemed-loader.ts';
import { datasetLicense, listDatasetFiles } from '../../models/retrieval/hub.ts';
import { loadNodeEmbedder } from '../../node/retrieval/node-embedder.ts';
import { frontMatterLicense } from '../../scripts/hub/card.ts';
import { startHubServer, type HubServer } from '../../scripts/hub/hub-server.ts';
import type { Middleware } from '../../scripts/hub/local-hub.ts';
import { makeTestHub, TEST_HUB_DATASETS, TEST_HUB_MODELS, TEST_HUB_TRACES_FILE } from '../../scripts/hub/make-test-hub.ts';
import { localHub } from '../../scripts/vite/local-hub.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../helpers/shared.ts';
import { fineMedParquet, fineMedRows } from '../models/retrieval/finemed-fixture.ts';

warnIfNoShared('local hub serving the shared golden models, embedder and traces');

const PINNED = '0123456789abcdef0123456789abcdef01234567';
const weights = new Uint8Array(5000).map((_, i) => (i * 31 + 7) & 0xff);
const rows = fineMedRows(20);
const parquet = fineMedParquet(rows);

let tmp: string;
let dir: string;
let hub: HubServer;

function put(path: string, data: string | Uint8Array): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, data);
}

/** A GET with the path sent exactly as given (fetch would normalise `..`). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: hub.port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok({ status: res.statusCode!, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

const file = (repo: string, path: string, rev = 'main'): string => `${hub.url}/${repo}/resolve/${rev}/${path}`;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'local-hub-'));
  dir = join(tmp, 'hub');
  put(join(dir, 'org-a/model-x/config.json'), '{"a":1}');
  put(join(dir, 'org-a/model-x/weights.bin'), weights);
  put(join(dir, 'org-a/model-x/onnx/model.onnx'), new Uint8Array(300));
  put(join(dir, 'org-a/model-x/odd dir/with space+plus.txt'), 'odd');
  put(join(dir, 'org-a/model-x/README.md'), '---\nlicense: apache-2.0\ntags: [x]\n---\n# Model X\n');
  put(join(dir, 'org-a/pinned/.commit'), `${PINNED}\n`);
  put(join(dir, 'org-a/pinned/config.json'), '{}');
  put(join(dir, 'org-a/bad-commit/.commit'), 'not-a-sha');
  put(join(dir, 'org-a/secret.txt'), 'secret');
  put(join(tmp, 'secret.txt'), 'secret');
  // A repo that is a symlink, holding a symlinked file.
  put(join(tmp, 'elsewhere/real/config.json'), '{"linked":true}');
  put(join(tmp, 'elsewhere/blob.bin'), new Uint8Array(64).fill(9));
  symlinkSync(join(tmp, 'elsewhere/blob.bin'), join(tmp, 'elsewhere/real/blob.bin'));
  symlinkSync(join(tmp, 'elsewhere/real'), join(dir, 'org-a/linked'));
  put(join(dir, 'datasets/org-a/dpo/README.md'), '---\npretty_name: DPO\nlicense: "mit"\n---\n');
  put(join(dir, 'datasets/org-a/dpo/data/train-00000-of-00001.parquet'), parquet);
  put(join(dir, 'datasets/org-a/dpo/data/sub/notes.txt'), 'notes');
  put(join(dir, 'datasets/org-a/nocard/data.jsonl'), '{}\n');
  hub = await startHubServer(dir);
});

afterAll(async () => {
  await hub?.close();
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  // A response an earlier test left unread may close late; let it, then start a clean log.
  await hub.settled();
  hub.requests.length = 0;
  hub.setFaults({});
});

describe('resolve', () => {
  it('serves a whole file with the hub headers', async () => {
    const res = await fetch(file('org-a/model-x', 'weights.bin'));
    expect(res.status).toBe(200);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body.byteLength).toBe(weights.byteLength);
    expect(body).toEqual(weights);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-length')).toBe('5000');
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(res.headers.get('x-repo-commit')).toMatch(/^[0-9a-f]{40}$/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect((await fetch(file('org-a/model-x', 'config.json'))).headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('answers ranges with 206, suffix ranges, and 416 past the end', async () => {
    const r = await fetch(file('org-a/model-x', 'weights.bin'), { headers: { Range: 'bytes=10-19' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe('bytes 10-19/5000');
    expect(new Uint8Array(await r.arrayBuffer())).toEqual(weights.subarray(10, 20));
    const suffix = await fetch(file('org-a/model-x', 'weights.bin'), { headers: { Range: 'bytes=-4' } });
    expect(suffix.status).toBe(206);
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(weights.subarray(4996));
    const past = await fetch(file('org-a/model-x', 'weights.bin'), { headers: { Range: 'bytes=5000-' } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */5000');
  });

  it('answers HEAD with the size and no body; If-None-Match with 304', async () => {
    const head = await fetch(file('org-a/model-x', 'weights.bin'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('5000');
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    const again = await fetch(file('org-a/model-x', 'weights.bin'), { headers: { 'If-None-Match': head.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  it('404s missing files, repos, folders and the .commit file, naming them', async () => {
    const cases: [string, RegExp, string][] = [
      [file('org-a/model-x', 'nope.bin'), /nope\.bin/, 'EntryNotFound'],
      [file('org-a/missing', 'config.json'), /org-a\/missing/, 'RepoNotFound'],
      [file('org-a/model-x', 'onnx'), /onnx/, 'EntryNotFound'],
      [file('org-a/pinned', '.commit'), /\.commit/, 'EntryNotFound'],
      [`${hub.url}/datasets/org-a/model-x/resolve/main/config.json`, /datasets\/org-a\/model-x/, 'RepoNotFound'],
    ];
    for (const [url, message, code] of cases) {
      const res = await fetch(url);
      expect(res.status, url).toBe(404);
      expect(res.headers.get('x-error-code'), url).toBe(code);
      expect(await res.text()).toMatch(message);
    }
  });

  it('decodes encoded path segments and follows symlinked repos and files', async () => {
    const odd = await fetch(file('org-a/model-x', 'odd%20dir/with%20space%2Bplus.txt'));
    expect(odd.status).toBe(200);
    expect(await odd.text()).toBe('odd');
    expect(await (await fetch(file('org-a/linked', 'config.json'))).json()).toEqual({ linked: true });
    const blob = await fetch(file('org-a/linked', 'blob.bin'));
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(new Uint8Array(64).fill(9));
  });

  it('makes path traversal impossible', async () => {
    const paths = [
      '/hub/org-a/model-x/resolve/main/../secret.txt',
      '/hub/org-a/model-x/resolve/main/../../../secret.txt',
      '/hub/org-a/model-x/resolve/main/..%2F..%2Fsecret.txt',
      '/hub/org-a/model-x/resolve/main/%2E%2E/%2E%2E/secret.txt',
      '/hub/org-a/..%2F..%2Fsecret.txt/resolve/main/x',
      '/hub/../secret.txt',
      '/hub/org-a/model-x/resolve/main//etc/passwd',
      '/hub/org-a/model-x/resolve/main/%00config.json',
    ];
    for (const p of paths) {
      const r = await rawGet(p);
      expect(r.status, p).not.toBe(200);
      expect(r.body, p).not.toContain('secret\n');
      expect(r.body, p).not.toBe('secret');
    }
  });
});

describe('commit ids and revisions', () => {
  it('reports a stable commit that matches the API sha and changes when a file changes', async () => {
    const commit = async (): Promise<string> => (await fetch(file('org-a/model-x', 'config.json'), { method: 'HEAD' })).headers.get('x-repo-commit')!;
    const a = await commit();
    expect(a).toMatch(/^[0-9a-f]{40}$/);
    expect(await commit()).toBe(a);
    const info = (await (await fetch(`${hub.url}/api/models/org-a/model-x`)).json()) as { sha: string };
    expect(info.sha).toBe(a);
    const path = join(dir, 'org-a/model-x/config.json');
    const t = statSync(path).mtime;
    utimesSync(path, t, new Date(t.getTime() + 5000));
    const b = await commit();
    expect(b).toMatch(/^[0-9a-f]{40}$/);
    expect(b).not.toBe(a);
  });

  it('honours .commit, resolves by commit id, and 404s other revisions with a message', async () => {
    const res = await fetch(file('org-a/pinned', 'config.json'));
    expect(res.headers.get('x-repo-commit')).toBe(PINNED);
    expect((await fetch(file('org-a/pinned', 'config.json', PINNED))).status).toBe(200);
    const derived = (await fetch(file('org-a/model-x', 'config.json'))).headers.get('x-repo-commit')!;
    expect((await fetch(file('org-a/model-x', 'config.json', derived))).status).toBe(200);
    for (const rev of ['v1.0', 'refs%2Fpr%2F1', PINNED]) {
      const r = await fetch(file('org-a/model-x', 'config.json', rev));
      expect(r.status, rev).toBe(404);
      expect(r.headers.get('x-error-code')).toBe('RevisionNotFound');
      expect(await r.text()).toMatch(/Revision not found.*only "main"/);
    }
  });

  it('rejects a malformed .commit file with a 500 naming it', async () => {
    const r = await fetch(`${hub.url}/api/models/org-a/bad-commit`);
    expect(r.status).toBe(500);
    expect(await r.text()).toMatch(/\.commit must hold a 40-hex commit id/);
  });
});

describe('headers for cross-origin use', () => {
  it('sends CORS, CORP and isolation headers on files, API answers and errors', async () => {
    for (const url of [file('org-a/model-x', 'weights.bin'), `${hub.url}/api/models/org-a/model-x`, `${hub.url}/nothing/here`]) {
      const r = await fetch(url);
      expect(r.headers.get('access-control-allow-origin'), url).toBe('*');
      expect(r.headers.get('cross-origin-resource-policy'), url).toBe('cross-origin');
      expect(r.headers.get('cross-origin-embedder-policy'), url).toBe('require-corp');
      expect(r.headers.get('cross-origin-opener-policy'), url).toBe('same-origin');
      const exposed = r.headers.get('access-control-expose-headers')!.split(/,\s*/);
      expect(exposed).toEqual(expect.arrayContaining(['Content-Range', 'Content-Length', 'ETag', 'X-Repo-Commit', 'Accept-Ranges']));
    }
  });

  it('answers an OPTIONS preflight with 204 and the allowed headers', async () => {
    const r = await fetch(file('org-a/model-x', 'weights.bin'), { method: 'OPTIONS', headers: { Origin: 'http://localhost:5173', 'Access-Control-Request-Headers': 'range' } });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('access-control-allow-headers')!.split(/,\s*/)).toEqual(expect.arrayContaining(['Range', 'Authorization', 'Content-Type']));
    expect(r.headers.get('access-control-allow-methods')).toMatch(/GET/);
  });

  it('404s unknown paths under the prefix, naming the path, and anything outside it', async () => {
    for (const p of ['/hub/org-a/model-x/blob/main/config.json', '/hub/api/spaces/org-a/x', '/hub/org-a']) {
      const r = await fetch(hub.origin + p);
      expect(r.status, p).toBe(404);
      expect(await r.text()).toContain(`Not found: ${p}`);
    }
    const outside = await fetch(`${hub.origin}/other`);
    expect(outside.status).toBe(404);
    expect(await outside.text()).toMatch(/only the local hub under \/hub\//);
    expect((await fetch(file('org-a/model-x', 'config.json'), { method: 'POST' })).status).toBe(405);
  });
});

describe('root', () => {
  it('says it is a local hub and lists its repos (the app finds a local hub this way)', async () => {
    const r = await fetch(`${hub.origin}/hub/`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { hub: string; repos: { models: string[]; datasets: string[] } };
    expect(body.hub).toBe('local');
    expect(body.repos.models).toEqual(expect.arrayContaining(['org-a/model-x', 'org-a/pinned', 'org-a/linked']));
    expect(body.repos.datasets).toEqual(expect.arrayContaining(['org-a/dpo', 'org-a/nocard']));
  });
});

describe('API', () => {
  it('lists model siblings with sizes (no .commit), by main and by revision', async () => {
    const info = (await (await fetch(`${hub.url}/api/models/org-a/model-x`)).json()) as { id: string; sha: string; siblings: { rfilename: string; size: number }[]; cardData: { license?: string } };
    expect(info.id).toBe('org-a/model-x');
    expect(info.siblings).toEqual([
      { rfilename: 'README.md', size: statSync(join(dir, 'org-a/model-x/README.md')).size },
      { rfilename: 'config.json', size: 7 },
      { rfilename: 'odd dir/with space+plus.txt', size: 3 },
      { rfilename: 'onnx/model.onnx', size: 300 },
      { rfilename: 'weights.bin', size: 5000 },
    ]);
    expect(info.cardData.license).toBe('apache-2.0');
    const byRev = (await (await fetch(`${hub.url}/api/models/org-a/model-x/revision/${info.sha}`)).json()) as { sha: string };
    expect(byRev.sha).toBe(info.sha);
    const pinned = (await (await fetch(`${hub.url}/api/models/org-a/pinned/revision/main`)).json()) as { sha: string; siblings: unknown[] };
    expect(pinned.sha).toBe(PINNED);
    expect(pinned.siblings).toEqual([{ rfilename: 'config.json', size: 2 }]);
    expect((await fetch(`${hub.url}/api/models/org-a/model-x/revision/dev`)).status).toBe(404);
  });

  it('lists a model tree: direct children, or everything with recursive=true', async () => {
    const top = (await (await fetch(`${hub.url}/api/models/org-a/model-x/tree/main`)).json()) as { type: string; path: string }[];
    expect(top.map((e) => `${e.type}:${e.path}`)).toEqual(['file:README.md', 'file:config.json', 'directory:odd dir', 'directory:onnx', 'file:weights.bin']);
    const onnx = await (await fetch(`${hub.url}/api/models/org-a/model-x/tree/main/onnx?recursive=true`)).json();
    expect(onnx).toEqual([{ type: 'file', path: 'onnx/model.onnx', size: 300, lfs: { size: 300 } }]);
    expect((await fetch(`${hub.url}/api/models/org-a/model-x/tree/main/nope`)).status).toBe(404);
    expect((await fetch(`${hub.url}/api/models/org-a/model-x/tree/main/config.json`)).status).toBe(404);
  });

  it('serves a dataset to models/retrieval/hub.ts: tree, license, and files', async () => {
    const d = { hub: hub.url, repo: 'org-a/dpo' };
    const files = await listDatasetFiles(d, 'data');
    expect(files.map((f) => [f.path, f.size])).toEqual([
      ['data/sub/notes.txt', 5],
      ['data/train-00000-of-00001.parquet', parquet.byteLength],
    ]);
    expect(await (await fetch(files[0]!.url)).text()).toBe('notes');
    const tree = (await (await fetch(`${hub.url}/api/datasets/org-a/dpo/tree/main/data`)).json()) as { type: string; path: string }[];
    expect(tree.map((e) => `${e.type}:${e.path}`)).toEqual(['directory:data/sub', 'file:data/train-00000-of-00001.parquet']);
    expect(await datasetLicense(d)).toBe('mit');
    const nocard = (await (await fetch(`${hub.url}/api/datasets/org-a/nocard`)).json()) as { cardData: object };
    expect(nocard.cardData).toEqual({});
    expect(await datasetLicense({ hub: hub.url, repo: 'org-a/nocard' })).toBeNull();
    await expect(listDatasetFiles({ hub: hub.url, repo: 'org-a/nocard' }, 'data')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('lets the FineMed-DPO loader read a dataset from it by range', async () => {
    const r = await loadFineMedDpo({ hub: hub.url, repo: 'org-a/dpo' });
    expect(r.records).toHaveLength(rows.length);
    expect(r.license).toBe('mit');
    expect(r.records[3]!.question).toMatch(/\(case 3\)$/);
    expect(r.files).toEqual(['data/train-00000-of-00001.parquet']);
    await hub.settled();
    const ranged = hub.requests.filter((e) => e.path.endsWith('.parquet') && e.method === 'GET');
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.every((e) => e.status === 206 && e.range !== undefined)).toBe(true);
  });

  it('reads license lists and ignores cards without front matter', () => {
    expect(frontMatterLicense('---\nlicense: [mit, "apache-2.0"]\n---\n')).toEqual(['mit', 'apache-2.0']);
    expect(frontMatterLicense('---\nlicense:\n  - cc-by-4.0\n  - mit\nother: 1\n---\n')).toEqual(['cc-by-4.0', 'mit']);
    expect(frontMatterLicense('---\ntags:\n  license: nested\n---\n')).toBeUndefined();
    expect(frontMatterLicense('# license: mit\n')).toBeUndefined();
  });
});

describe('request log and fault injection', () => {
  it('logs method, path, range, status and bytes', async () => {
    await (await fetch(file('org-a/model-x', 'weights.bin'), { headers: { Range: 'bytes=100-199' } })).arrayBuffer();
    await fetch(file('org-a/model-x', 'weights.bin'), { method: 'HEAD' });
    await (await fetch(file('org-a/model-x', 'nope'))).text();
    await hub.settled();
    expect(hub.requests.filter((e) => e.path.startsWith('/hub/org-a/model-x/'))).toEqual([
      { method: 'GET', path: '/hub/org-a/model-x/resolve/main/weights.bin', range: 'bytes=100-199', status: 206, bytes: 100, complete: true },
      { method: 'HEAD', path: '/hub/org-a/model-x/resolve/main/weights.bin', status: 200, bytes: 0, complete: true },
      expect.objectContaining({ method: 'GET', status: 404, complete: true }),
    ]);
  });

  it('drops the connection after N body bytes, once; fetch sees a failed read', async () => {
    hub.setFaults({ dropAfterBytes: { path: 'weights.bin', bytes: 1000 } });
    const res = await fetch(file('org-a/model-x', 'weights.bin'));
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
    expect(hub.faults.pending).toBe(0);
    const again = new Uint8Array(await (await fetch(file('org-a/model-x', 'weights.bin'))).arrayBuffer());
    expect(again).toEqual(weights);
    await hub.settled();
    expect(hub.requests.filter((e) => e.path.endsWith('/weights.bin')).map((e) => [e.bytes, e.complete])).toEqual([[1000, false], [5000, true]]);
  });

  it('a cut reaches UrlModelSource as a typed error or a resumed, correct read', async () => {
    hub.setFaults({ dropAfterBytes: { path: /weights\.bin$/, bytes: 64 } });
    const f = await new UrlModelSource(hub.modelBase('org-a/model-x'), { idleTimeoutMs: 5000 }).open('weights.bin');
    // Whether the source retries is its own policy; either way it must not return wrong bytes.
    const got = await f.read(0, 4096).catch((e: unknown) => e);
    if (got instanceof Uint8Array) expect(got).toEqual(weights.subarray(0, 4096));
    else expect(got).toMatchObject({ code: expect.stringMatching(/^(network|weights-format)$/) });
    expect(await f.read(0, 4096)).toEqual(weights.subarray(0, 4096));
    await hub.settled();
    const gets = hub.requests.filter((e) => e.method === 'GET' && e.path.endsWith('/weights.bin'));
    expect(gets[0]).toMatchObject({ range: 'bytes=0-4095', status: 206, bytes: 64, complete: false });
    expect(gets.slice(1).every((e) => e.complete)).toBe(true);
  });

  it('answers an injected 5xx `times` times, then succeeds', async () => {
    hub.setFaults({ status: { path: 'config.json', status: 503, times: 2 } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(file('org-a/model-x', 'config.json'))).status);
    expect(statuses).toEqual([503, 503, 200]);
    expect((await fetch(file('org-a/model-x', 'weights.bin'), { method: 'HEAD' })).status).toBe(200);
  });

  it('stalls a body for the given time, then finishes it', async () => {
    hub.setFaults({ stall: { path: 'weights.bin', afterBytes: 100, ms: 300 } });
    const t0 = performance.now();
    const body = new Uint8Array(await (await fetch(file('org-a/model-x', 'weights.bin'))).arrayBuffer());
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(body).toEqual(weights);
  });
});

describe('startup without a folder', () => {
  it('startHubServer refuses a missing folder', async () => {
    await expect(startHubServer(join(tmp, 'absent'))).rejects.toThrow(/does not exist/);
  });

  it('makeTestHub returns null without ../shared', async () => {
    expect(await makeTestHub(join(tmp, 'no-hub'), join(tmp, 'no-shared'))).toBeNull();
  });

  /** Runs the plugin's dev-server hook and mounts what it installs on a plain server. */
  async function pluginServer(plugin: Plugin, logger: Partial<Logger>): Promise<{ url: string; server: Server }> {
    let mw: Middleware | undefined;
    const fake = { middlewares: { use: (m: Middleware) => (mw = m) }, config: { logger } };
    (plugin.configureServer as (s: unknown) => void)(fake);
    const server = createServer((req, res) => mw!(req, res, () => res.writeHead(418).end()));
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
  }

  it('the Vite plugin says how to configure a hub, warns once about a missing folder, and serves a real one', async () => {
    const warnings: string[] = [];
    const logger = { warn: (m: string) => void warnings.push(m), info: () => {} };
    const none = await pluginServer(localHub(undefined), logger);
    const missing = await pluginServer(localHub(join(tmp, 'absent')), logger);
    const real = await pluginServer(localHub(dir), logger);
    try {
      const a = await fetch(`${none.url}/hub/org-a/model-x/resolve/main/config.json`);
      expect(a.status).toBe(404);
      expect(await a.text()).toMatch(/no local hub configured \(set FINEMED_HUB_DIR\)/);
      const b = await fetch(`${missing.url}/hub/x`);
      expect(b.status).toBe(404);
      expect(await b.text()).toMatch(/FINEMED_HUB_DIR .*absent does not exist/);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/FINEMED_HUB_DIR/);
      expect(await (await fetch(`${real.url}/hub/org-a/model-x/resolve/main/config.json`)).json()).toEqual({ a: 1 });
      expect((await fetch(`${real.url}/elsewhere`)).status).toBe(418);
    } finally {
      for (const s of [none, missing, real]) s.server.close();
    }
  });
});

describe.skipIf(!HAS_SHARED)('the test hub built from ../shared', () => {
  let shared: HubServer;
  let sharedTmp: string;
  beforeAll(async () => {
    sharedTmp = mkdtempSync(join(tmpdir(), 'test-hub-'));
    const made = await makeTestHub(sharedTmp);
    expect(made).toBe(sharedTmp);
    shared = await startHubServer(made!);
  });
  afterAll(async () => {
    await shared?.close();
    rmSync(sharedTmp, { recursive: true, force: true });
  });

  it('UrlModelSource + openCheckpoint read stories260K from …/resolve/main/ like the local folder', async () => {
    const base = `${shared.url}/test-org/stories260K/resolve/main/`;
    expect(shared.modelBase(TEST_HUB_MODELS.llm)).toBe(base);
    const remote = await openCheckpoint(new UrlModelSource(base));
    const local = await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/f32')));
    expect(remote.config).toEqual(local.config);
    expect(remote.tensors.size).toBe(local.tensors.size);
    expect(remote.tensors.size).toBeGreaterThan(0);
    const name = [...local.tensors.keys()][0]!;
    const [a, b] = [await remote.readTensor(name), await local.readTensor(name)];
    expect(a.length).toBe(b.length);
    expect(a).toEqual(b);
    expect(shared.requests.some((e) => e.status === 206 && e.path.endsWith('/model.safetensors'))).toBe(true);
  });

  it('serves the sharded and bf16 checkpoints and the Llama-3.1-shaped model', async () => {
    for (const repo of [TEST_HUB_MODELS.llmSharded, TEST_HUB_MODELS.llmBf16, TEST_HUB_MODELS.tinyLlama31]) {
      const ckpt = await openCheckpoint(new UrlModelSource(shared.modelBase(repo)));
      expect(ckpt.totalBytes, repo).toBeGreaterThan(0);
    }
  });

  it('serves the traces dataset with its card licenses', async () => {
    const d = { hub: shared.url, repo: TEST_HUB_DATASETS.traces };
    const files = await listDatasetFiles(d, 'data');
    expect(files.map((f) => f.path)).toEqual([TEST_HUB_TRACES_FILE]);
    expect(files[0]!.size).toBe(statSync(sharedPath('data/traces.jsonl')).size);
    expect(await datasetLicense(d)).toBe('apache-2.0, cc-by-4.0, mit');
    const head = await (await fetch(files[0]!.url, { headers: { Range: 'bytes=0-99' } })).text();
    expect(head).toBe(readFileSync(sharedPath('data/traces.jsonl'), 'utf8').slice(0, 100));
  });

  it('transformers.js downloads Xenova/tiny-random-bert from it (remoteHost = hub base)', async () => {
    const cacheDir = join(sharedTmp, '..', `${sharedTmp.split('/').pop()}-cache`);
    try {
      const e = await loadNodeEmbedder(TEST_HUB_MODELS.embedder, { remoteHost: `${shared.url}/`, cacheDir });
      expect(e.info.dims).toBe(32);
      const v = await e.embed(['fever']);
      expect(v.length).toBe(32);
      await e.dispose();
      expect(shared.requests.some((r) => r.path === '/hub/Xenova/tiny-random-bert/resolve/main/onnx/model.onnx' && r.status === 200)).toBe(true);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
