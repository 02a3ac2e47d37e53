/**
 * The weight cache in the origin-private file system: `finemed-weight-cache/<key>/...`. In a
 * dedicated worker (the LLM worker) files are read and written through synchronous access
 * handles, the fast path OPFS offers, each handle closed after its operation (OPFS locks a file
 * while one is open). Elsewhere (the main thread) it falls back to File reads and writable
 * streams, so listing or deleting from a page works too.
 */
import type { CacheFileReader, CacheFileWriter, CacheLock, CacheStore } from './store.ts';
import { checkKey, InProcessLocks, quotaError, splitPath, writeWhole } from './store.ts';

export const OPFS_CACHE_DIR = 'finemed-weight-cache';

type DirWithEntries = FileSystemDirectoryHandle & { entries(): AsyncIterable<[string, FileSystemHandle]> };
type SyncHandle = FileSystemSyncAccessHandle;
/** The part of the Web Locks API used here (typed locally: the engine's libs do not declare it). */
interface WebLocks {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: object | null) => Promise<void> | undefined): Promise<unknown>;
}

const isNotFound = (e: unknown) => (e as { name?: string }).name === 'NotFoundError' || (e as { name?: string }).name === 'TypeMismatchError';
const hasSyncHandles = () => typeof (globalThis as { FileSystemSyncAccessHandle?: unknown }).FileSystemSyncAccessHandle === 'function';

async function folderBytes(dir: FileSystemDirectoryHandle): Promise<number> {
  let n = 0;
  for await (const [, h] of (dir as DirWithEntries).entries()) {
    n += h.kind === 'file' ? (await (h as FileSystemFileHandle).getFile()).size : await folderBytes(h as FileSystemDirectoryHandle);
  }
  return n;
}

/**
 * @example
 *   const store = await OpfsCacheStore.open();
 *   const model = await LlamaModel.load(source, { backend: 'webgpu', cache: { store } });
 */
export class OpfsCacheStore implements CacheStore {
  readonly description = `OPFS ${OPFS_CACHE_DIR}`;

  private readonly fallbackLocks = new InProcessLocks();

  private constructor(private readonly root: FileSystemDirectoryHandle) {}

  /** True where OPFS exists (secure contexts of current browsers). */
  static async available(): Promise<boolean> {
    try {
      return typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function' && !!(await navigator.storage.getDirectory());
    } catch {
      return false;
    }
  }

  static async open(): Promise<OpfsCacheStore> {
    const top = await navigator.storage.getDirectory();
    return new OpfsCacheStore(await top.getDirectoryHandle(OPFS_CACHE_DIR, { create: true }));
  }

  private async entryDir(key: string, create: boolean): Promise<FileSystemDirectoryHandle | null> {
    checkKey(key);
    try {
      return await this.root.getDirectoryHandle(key, { create });
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** The file handle of `key/path`, or null when absent (and not `create`). */
  private async file(key: string, path: string, create: boolean): Promise<FileSystemFileHandle | null> {
    const { dirs, name } = splitPath(path);
    let dir = await this.entryDir(key, create);
    try {
      for (const d of dirs) dir = dir && (await dir.getDirectoryHandle(d, { create }));
      return dir && (await dir.getFileHandle(name, { create }));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async entries(): Promise<string[]> {
    const keys: string[] = [];
    for await (const [name, h] of (this.root as DirWithEntries).entries()) if (h.kind === 'directory') keys.push(name);
    return keys.sort();
  }

  async entryBytes(key: string): Promise<number> {
    const dir = await this.entryDir(key, false);
    return dir ? folderBytes(dir) : 0;
  }

  async deleteEntry(key: string): Promise<number> {
    const n = await this.entryBytes(key);
    try {
      await this.root.removeEntry(key, { recursive: true });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    return n;
  }

  async size(key: string, path: string): Promise<number | null> {
    const f = await this.file(key, path, false);
    return f ? (await f.getFile()).size : null;
  }

  async readFile(key: string, path: string): Promise<Uint8Array | null> {
    const f = await this.file(key, path, false);
    return f ? new Uint8Array(await (await f.getFile()).arrayBuffer()) : null;
  }

  writeFile(key: string, path: string, bytes: Uint8Array): Promise<void> {
    return writeWhole(this.openWrite(key, path), bytes);
  }

  async openRead(key: string, path: string): Promise<CacheFileReader | null> {
    const f = await this.file(key, path, false);
    if (!f) return null;
    if (!hasSyncHandles()) {
      const file = await f.getFile();
      return {
        size: file.size,
        read: async (offset, length) => new Uint8Array(await file.slice(offset, offset + length).arrayBuffer()),
        close: async () => {},
      };
    }
    const h: SyncHandle = await f.createSyncAccessHandle();
    const size = h.getSize();
    return {
      size,
      read: async (offset, length) => {
        const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
        let done = 0;
        while (done < out.byteLength) {
          const n = h.read(out.subarray(done), { at: offset + done });
          if (n === 0) return out.subarray(0, done);
          done += n;
        }
        return out;
      },
      close: async () => h.close(),
    };
  }

  async openWrite(key: string, path: string): Promise<CacheFileWriter> {
    const what = `${this.description}/${key}/${path}`;
    const room = async () => ({ available: await this.available() });
    let f: FileSystemFileHandle;
    try {
      f = (await this.file(key, path, true))!;
    } catch (e) {
      throw quotaError(e, what, await room());
    }
    if (!hasSyncHandles()) {
      const w = await f.createWritable();
      return {
        write: async (b) => { try { await w.write(b as Uint8Array<ArrayBuffer>); } catch (e) { throw quotaError(e, what, await room()); } },
        close: async () => { try { await w.close(); } catch (e) { throw quotaError(e, what, await room()); } },
        abort: async () => { await w.abort().catch(() => {}); },
      };
    }
    const h: SyncHandle = await f.createSyncAccessHandle();
    let at = 0, open = true;
    const release = () => { if (open) { open = false; h.close(); } };
    try {
      h.truncate(0);
    } catch (e) {
      release();
      throw quotaError(e, what, await room());
    }
    return {
      write: async (b) => {
        try {
          let done = 0;
          while (done < b.byteLength) done += h.write(b.subarray(done), { at: at + done });
          at += done;
        } catch (e) {
          throw quotaError(e, what, { needed: b.byteLength, ...(await room()) });
        }
      },
      close: async () => {
        try {
          h.flush(); // durable before the manifest may list the file
        } catch (e) {
          throw quotaError(e, what, await room());
        } finally {
          release();
        }
      },
      abort: async () => release(),
    };
  }

  async available(): Promise<number | null> {
    try {
      const { quota, usage } = await navigator.storage.estimate();
      return quota === undefined || usage === undefined ? null : Math.max(0, quota - usage);
    } catch {
      return null;
    }
  }

  /** A Web Lock named after the entry, so two tabs (or a tab and its worker) never write one entry at once. */
  tryLock(key: string): Promise<CacheLock | null> {
    checkKey(key);
    const locks = (globalThis.navigator as { locks?: WebLocks } | undefined)?.locks;
    if (!locks) return this.fallbackLocks.tryLock(key);
    return new Promise<CacheLock | null>((resolve, reject) => {
      locks.request(`${OPFS_CACHE_DIR}/${key}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(null);
          return undefined;
        }
        // The lock lasts as long as this promise is pending: release() settles it.
        return new Promise<void>((done) => resolve({ release: async () => done() }));
      }).catch(reject);
    });
  }
}
