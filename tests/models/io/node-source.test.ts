import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, NotFoundError, WeightsFormatError } from '../../../models/errors.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';

let dir: string;
const data = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'node-src-'));
  await writeFile(join(dir, 'data.bin'), data);
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'a.txt'), 'héllo');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('NodeDirSource', () => {
  it('opens files with their size and reads exact ranges', async () => {
    const src = new NodeDirSource(dir);
    const f = await src.open('data.bin');
    expect(f.size).toBe(1000);
    expect(f.name).toBe('data.bin');
    expect(await f.read(0, 10)).toEqual(data.slice(0, 10));
    expect(await f.read(993, 7)).toEqual(data.slice(993));
    expect(await f.read(500, 0)).toEqual(new Uint8Array(0));
  });

  it('reads text and answers exists', async () => {
    const src = new NodeDirSource(dir);
    expect(await src.readText('sub/a.txt')).toBe('héllo');
    expect(await src.exists('sub/a.txt')).toBe(true);
    expect(await src.exists('sub')).toBe(false);
    expect(await src.exists('nope.json')).toBe(false);
    expect(await src.exists('../x')).toBe(false);
  });

  it('throws NotFoundError for missing files and paths outside the folder', async () => {
    const src = new NodeDirSource(dir);
    await expect(src.open('nope.safetensors')).rejects.toThrow(NotFoundError);
    await expect(src.open('nope.safetensors')).rejects.toThrow(/nope\.safetensors/);
    await expect(src.readText('nope.json')).rejects.toMatchObject({ code: 'not-found' });
    await expect(src.open('../../etc/passwd')).rejects.toThrow(NotFoundError);
    await expect(src.open('sub')).rejects.toThrow(NotFoundError);
  });

  it('rejects reads past the end with WeightsFormatError', async () => {
    const f = await new NodeDirSource(dir).open('data.bin');
    await expect(f.read(990, 20)).rejects.toThrow(WeightsFormatError);
  });

  it('honours an aborted signal', async () => {
    const src = new NodeDirSource(dir);
    const ac = new AbortController();
    ac.abort();
    await expect(src.open('data.bin', ac.signal)).rejects.toThrow(AbortError);
    await expect(src.readText('sub/a.txt', ac.signal)).rejects.toThrow(AbortError);
    const f = await src.open('data.bin');
    await expect(f.read(0, 4, ac.signal)).rejects.toThrow(AbortError);
  });
});
