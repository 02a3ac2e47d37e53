import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCacheStore } from '../../../models/cache/memory-store.ts';
import { NodeCacheStore } from '../../../node/cache/node-store.ts';
import { isQuotaError, quotaError, type CacheStore } from '../../../models/cache/store.ts';
import { StorageQuotaError } from '../../../models/errors.ts';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'cache-store-')); });
afterAll(() => rm(dir, { recursive: true, force: true }));

const stores: [string, () => CacheStore][] = [
  ['NodeCacheStore', () => new NodeCacheStore(join(dir, `root-${Math.random().toString(36).slice(2)}`))],
  ['MemoryCacheStore', () => new MemoryCacheStore()],
];

describe.each(stores)('%s', (_name, make) => {
  it('writes, lists, sizes and reads files by range', async () => {
    const s = make();
    expect(await s.entries()).toEqual([]);
    expect(await s.readFile('a', 'manifest.json')).toBeNull();
    expect(await s.openRead('a', 'tensors/x.bin')).toBeNull();
    await s.writeFile('a', 'manifest.json', new TextEncoder().encode('{"x":1}'));
    const w = await s.openWrite('a', 'tensors/x.bin');
    const data = Uint8Array.from({ length: 1000 }, (_, i) => i & 255);
    await w.write(data.subarray(0, 300));
    await w.write(data.subarray(300));
    await w.close();
    await s.writeFile('b', 'files/config.json', new Uint8Array(5));
    expect(await s.entries()).toEqual(['a', 'b']);
    expect(await s.size('a', 'tensors/x.bin')).toBe(1000);
    expect(await s.size('a', 'tensors/none.bin')).toBeNull();
    expect(new TextDecoder().decode((await s.readFile('a', 'manifest.json'))!)).toBe('{"x":1}');
    const r = (await s.openRead('a', 'tensors/x.bin'))!;
    expect(r.size).toBe(1000);
    expect(await r.read(10, 20)).toEqual(data.slice(10, 30));
    expect(await r.read(990, 100)).toEqual(data.slice(990)); // short at the end
    await r.close();
    expect(await s.entryBytes('a')).toBe(1000 + 7);
    expect(await s.entryBytes('none')).toBe(0);
  });

  it('replaces a file on rewrite, and delete frees exactly the entry', async () => {
    const s = make();
    await s.writeFile('a', 'f', new Uint8Array(100));
    await s.writeFile('a', 'f', new Uint8Array(40));
    expect(await s.size('a', 'f')).toBe(40);
    await s.writeFile('b', 'g', new Uint8Array(9));
    expect(await s.deleteEntry('a')).toBe(40);
    expect(await s.entries()).toEqual(['b']);
    expect(await s.deleteEntry('a')).toBe(0);
  });

  it('refuses keys and paths that could leave the entry', async () => {
    const s = make();
    await expect(s.writeFile('a', '../escape', new Uint8Array(1))).rejects.toThrow(/Bad cache path/);
    await expect(s.writeFile('a', 'x//y', new Uint8Array(1))).rejects.toThrow(/Bad cache path/);
    await expect(s.size('..', 'f')).rejects.toThrow();
  });
});

describe('NodeCacheStore specifics', () => {
  it('publishes a streamed file only on close; abort leaves nothing under the name', async () => {
    const s = new NodeCacheStore(join(dir, 'publish'));
    const w = await s.openWrite('e', 'tensors/t.bin');
    await w.write(new Uint8Array(64));
    expect(await s.size('e', 'tensors/t.bin')).toBeNull(); // still a temporary file
    await w.abort();
    expect(await s.size('e', 'tensors/t.bin')).toBeNull();
    expect(await readdir(join(dir, 'publish', 'e', 'tensors'))).toEqual([]);
    const ok = await s.openWrite('e', 'tensors/t.bin');
    await ok.write(new Uint8Array(64));
    await ok.close();
    expect(await s.size('e', 'tensors/t.bin')).toBe(64);
    expect(await s.available()).toBeGreaterThan(0);
  });

  it('sizes an entry while another writer publishes files into it (a .partial file renamed between listing and stat)', async () => {
    const s = new NodeCacheStore(join(dir, 'busy'));
    const writer = (async () => {
      for (let i = 0; i < 300; i++) await s.writeFile('e', `f${i % 10}`, new Uint8Array(16));
    })();
    let sized = 0, done = false;
    void writer.finally(() => { done = true; });
    while (!done) {
      const n = await s.entryBytes('e'); // used to throw ENOENT on a vanished .partial file
      expect(n % 16).toBe(0);
      sized++;
    }
    await writer;
    expect(sized).toBeGreaterThan(0);
    expect(await s.entryBytes('e')).toBe(10 * 16);
  });

  it('ignores stray files in the root when listing entries', async () => {
    const root = join(dir, 'stray');
    const s = new NodeCacheStore(root);
    await s.writeFile('e', 'f', new Uint8Array(1));
    await writeFile(join(root, 'README'), 'x');
    expect(await s.entries()).toEqual(['e']);
  });
});

describe('quota', () => {
  it('maps QuotaExceededError and ENOSPC to StorageQuotaError with sizes', () => {
    const dom = quotaError(Object.assign(new Error('x'), { name: 'QuotaExceededError' }), 'tensors/a.bin', { needed: 3 * 2 ** 30, available: 2 ** 29 });
    expect(dom).toBeInstanceOf(StorageQuotaError);
    expect((dom as Error).message).toMatch(/tensors\/a\.bin.*needs 3\.0 GB.*512 MB is available/);
    const node = quotaError(Object.assign(new Error('no space'), { code: 'ENOSPC' }), '/c/x');
    expect(node).toBeInstanceOf(StorageQuotaError);
    expect((node as StorageQuotaError).code).toBe('storage-quota');
    const other = new Error('EACCES');
    expect(quotaError(other, 'x')).toBe(other);
    expect(isQuotaError({ code: 'EDQUOT' })).toBe(true);
  });

  it('a memory store with a limit fails writes past it, mid-stream, like a full disk', async () => {
    const s = new MemoryCacheStore({ limitBytes: 1000 });
    expect(await s.available()).toBe(1000);
    const w = await s.openWrite('e', 'big');
    await w.write(new Uint8Array(600));
    await expect(w.write(new Uint8Array(600))).rejects.toBeInstanceOf(StorageQuotaError);
    await expect(s.writeFile('e', 'other', new Uint8Array(1001))).rejects.toThrow(/Storage is full/);
    await s.writeFile('e', 'small', new Uint8Array(100));
    expect(await s.available()).toBe(900);
  });
});
