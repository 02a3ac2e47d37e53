/**
 * An index in IndexedDB, for browsers without OPFS: one object store, keyed `<key>/<file>`.
 */
import { StorageQuotaError } from '../errors.ts';
import type { IndexStore } from './store.ts';

const DB = 'finemed-retrieval';
const FILES = 'files';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

let db: Promise<IDBDatabase> | null = null;
function openDb(): Promise<IDBDatabase> {
  db ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(FILES);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  return db;
}

async function files(mode: IDBTransactionMode): Promise<IDBObjectStore> {
  return (await openDb()).transaction(FILES, mode).objectStore(FILES);
}

/**
 * @example const store = new IdbStore('demo__Xenova-bge-small-en-v1.5');
 */
export class IdbStore implements IndexStore {
  readonly description: string;

  constructor(private readonly key: string) {
    this.description = `IndexedDB ${DB}/${key}`;
  }

  static available(): boolean {
    return typeof indexedDB !== 'undefined';
  }

  /** Keys of the stored indexes. */
  static async keys(): Promise<string[]> {
    const all = (await request((await files('readonly')).getAllKeys())) as string[];
    return [...new Set(all.map((k) => k.slice(0, k.lastIndexOf('/'))))].sort();
  }

  async read(name: string): Promise<Uint8Array | null> {
    const v = (await request((await files('readonly')).get(`${this.key}/${name}`))) as Uint8Array | undefined;
    return v ?? null;
  }

  async write(name: string, data: Uint8Array): Promise<void> {
    try {
      await request((await files('readwrite')).put(data, `${this.key}/${name}`));
    } catch (e) {
      if ((e as { name?: string }).name === 'QuotaExceededError') {
        throw new StorageQuotaError(`Browser storage is full while writing ${this.description}/${name}; free space and retry.`);
      }
      throw e;
    }
  }

  async remove(name: string): Promise<void> {
    await request((await files('readwrite')).delete(`${this.key}/${name}`));
  }

  async clear(): Promise<void> {
    const store = await files('readwrite');
    await request(store.delete(IDBKeyRange.bound(`${this.key}/`, `${this.key}/\uffff`)));
  }
}
