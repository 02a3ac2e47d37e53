/**
 * An index in the origin-private file system (browser; OPFS works in dedicated workers):
 * `retrieval-indexes/<key>/<file>`. Large files stay out of IndexedDB and out of memory twice.
 */
import { StorageQuotaError } from '../errors.ts';
import type { IndexStore } from './store.ts';

const ROOT = 'retrieval-indexes';

function quota(e: unknown, what: string): never {
  if ((e as { name?: string }).name === 'QuotaExceededError') {
    throw new StorageQuotaError(`Browser storage is full while writing ${what}; free space (delete an index or model) and retry.`);
  }
  throw e;
}

/**
 * @example
 *   if (await OpfsStore.available()) store = await OpfsStore.open('demo__Xenova-bge-small-en-v1.5');
 */
export class OpfsStore implements IndexStore {
  readonly description: string;

  private constructor(private readonly dir: FileSystemDirectoryHandle, key: string) {
    this.description = `OPFS ${ROOT}/${key}`;
  }

  static async available(): Promise<boolean> {
    try {
      return typeof navigator !== 'undefined' && !!navigator.storage?.getDirectory && !!(await navigator.storage.getDirectory());
    } catch {
      return false;
    }
  }

  static async open(key: string): Promise<OpfsStore> {
    const root = await navigator.storage.getDirectory();
    const all = await root.getDirectoryHandle(ROOT, { create: true });
    return new OpfsStore(await all.getDirectoryHandle(key, { create: true }), key);
  }

  /** Keys of the stored indexes. */
  static async keys(): Promise<string[]> {
    const root = await navigator.storage.getDirectory();
    const all = await root.getDirectoryHandle(ROOT, { create: true });
    const keys: string[] = [];
    for await (const [name, handle] of (all as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
      if (handle.kind === 'directory') keys.push(name);
    }
    return keys.sort();
  }

  /** Deletes one stored index, folder and all. */
  static async removeKey(key: string): Promise<void> {
    const root = await navigator.storage.getDirectory();
    const all = await root.getDirectoryHandle(ROOT, { create: true });
    await all.removeEntry(key, { recursive: true }).catch((e: unknown) => {
      if ((e as { name?: string }).name !== 'NotFoundError') throw e;
    });
  }

  async read(name: string): Promise<Uint8Array | null> {
    try {
      const file = await (await this.dir.getFileHandle(name)).getFile();
      return new Uint8Array(await file.arrayBuffer());
    } catch (e) {
      if ((e as { name?: string }).name === 'NotFoundError') return null;
      throw e;
    }
  }

  async write(name: string, data: Uint8Array): Promise<void> {
    try {
      const handle = await this.dir.getFileHandle(name, { create: true });
      const writable = await handle.createWritable();
      await writable.write(data as Uint8Array<ArrayBuffer>);
      await writable.close();
    } catch (e) {
      quota(e, `${this.description}/${name}`);
    }
  }

  async remove(name: string): Promise<void> {
    await this.dir.removeEntry(name).catch((e: unknown) => {
      if ((e as { name?: string }).name !== 'NotFoundError') throw e;
    });
  }

  async clear(): Promise<void> {
    const names: string[] = [];
    for await (const name of (this.dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    for (const name of names) await this.dir.removeEntry(name, { recursive: true });
  }
}
