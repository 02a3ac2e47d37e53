/**
 * The weight cache in a folder on disk (the CLI's --cache-dir, tests). Node only: the browser
 * bundle never imports this file. Every file is written under a temporary name and renamed when
 * complete (after fsync), so a crash, or two processes filling the same entry at once, never
 * leaves a half-written file under its real name. An entry is written (or deleted) only under
 * its lock file (./lock-file.ts).
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { CacheFileReader, CacheFileWriter, CacheLock, CacheStore } from '../../models/cache/store.ts';
import { checkKey, quotaError, splitPath, writeWhole } from '../../models/cache/store.ts';
import { tryLockFile } from './lock-file.ts';

function isMissing(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

let tmpCounter = 0;
const tmpName = (path: string) => `${path}.partial-${process.pid}-${++tmpCounter}`;

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  let items;
  try {
    items = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (isMissing(e)) return 0;
    throw e;
  }
  for (const it of items) {
    const p = join(dir, it.name);
    if (it.isDirectory()) n += await folderBytes(p);
    else if (it.isFile()) n += await stat(p).then((st) => st.size, (e: unknown) => {
      // Renamed or removed since readdir (a writer's .partial file becoming the real one): not here.
      if (isMissing(e)) return 0;
      throw e;
    });
  }
  return n;
}

/**
 * @example
 *   const store = new NodeCacheStore(join(homedir(), '.cache', 'finemed-ttt', 'weights'));
 *   const model = await LlamaModel.load(source, { backend: 'cpu', cache: { store } });
 */
export class NodeCacheStore implements CacheStore {
  readonly description: string;
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.description = this.root;
  }

  private path(key: string, path?: string): string {
    checkKey(key);
    if (path === undefined) return join(this.root, key);
    const { dirs, name } = splitPath(path);
    return join(this.root, key, ...dirs, name);
  }

  async entries(): Promise<string[]> {
    try {
      const items = await readdir(this.root, { withFileTypes: true });
      return items.filter((d) => d.isDirectory()).map((d) => d.name).sort();
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  entryBytes(key: string): Promise<number> {
    return folderBytes(this.path(key));
  }

  async deleteEntry(key: string): Promise<number> {
    const n = await this.entryBytes(key);
    await rm(this.path(key), { recursive: true, force: true });
    return n;
  }

  async size(key: string, path: string): Promise<number | null> {
    try {
      const st = await stat(this.path(key, path));
      return st.isFile() ? st.size : null;
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async readFile(key: string, path: string): Promise<Uint8Array | null> {
    try {
      const b = await readFile(this.path(key, path));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  writeFile(key: string, path: string, bytes: Uint8Array): Promise<void> {
    return writeWhole(this.openWrite(key, path), bytes);
  }

  async openRead(key: string, path: string): Promise<CacheFileReader | null> {
    let fh: FileHandle;
    try {
      fh = await open(this.path(key, path), 'r');
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
    const size = (await fh.stat()).size;
    return {
      size,
      read: async (offset, length) => {
        const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
        let done = 0;
        while (done < out.byteLength) {
          const { bytesRead } = await fh.read(out, done, out.byteLength - done, offset + done);
          if (bytesRead === 0) return out.subarray(0, done); // shrank meanwhile: the caller sees a short read
          done += bytesRead;
        }
        return out;
      },
      close: () => fh.close(),
    };
  }

  async openWrite(key: string, path: string): Promise<CacheFileWriter> {
    const final = this.path(key, path);
    const tmp = tmpName(final);
    const what = final;
    let fh: FileHandle;
    try {
      await mkdir(dirname(final), { recursive: true });
      fh = await open(tmp, 'w');
    } catch (e) {
      throw quotaError(e, what, { available: await this.available() });
    }
    let closed = false;
    return {
      write: async (bytes) => {
        try {
          let done = 0;
          while (done < bytes.byteLength) done += (await fh.write(bytes, done, bytes.byteLength - done)).bytesWritten;
        } catch (e) {
          throw quotaError(e, what, { needed: bytes.byteLength, available: await this.available() });
        }
      },
      close: async () => {
        try {
          await fh.datasync();
          await fh.close();
          closed = true;
          await rename(tmp, final);
        } catch (e) {
          throw quotaError(e, what, { available: await this.available() });
        }
      },
      abort: async () => {
        if (!closed) await fh.close().catch(() => {});
        closed = true;
        await unlink(tmp).catch(() => {});
      },
    };
  }

  async available(): Promise<number | null> {
    // The root may not exist yet: ask about the nearest existing folder above it.
    for (let dir = this.root; ; dir = dirname(dir)) {
      try {
        const s = await statfs(dir);
        return s.bavail * s.bsize;
      } catch (e) {
        if (!isMissing(e) || dirname(dir) === dir) return null;
      }
    }
  }

  /** `<root>/<key>.lock`, beside the entry folder (entries() lists folders only). */
  async tryLock(key: string): Promise<CacheLock | null> {
    checkKey(key);
    await mkdir(this.root, { recursive: true });
    return tryLockFile(join(this.root, `${key}.lock`));
  }
}
