/**
 * A weight cache held in a Map (tests; a last resort where nothing persists). `limitBytes` makes
 * it behave like a full disk: a write that would pass the limit throws a QuotaExceededError, as
 * OPFS does, so quota handling can be tested anywhere.
 */
import type { CacheFileReader, CacheFileWriter, CacheLock, CacheStore } from './store.ts';
import { checkKey, InProcessLocks, quotaError, splitPath } from './store.ts';

/**
 * @example
 *   const store = new MemoryCacheStore({ limitBytes: 1e6 }); // writes past 1 MB fail with StorageQuotaError
 */
export class MemoryCacheStore implements CacheStore {
  readonly description = 'memory';
  /** key -> path -> bytes */
  readonly data = new Map<string, Map<string, Uint8Array>>();
  private readonly limit: number;
  private readonly locks = new InProcessLocks();

  constructor(opts: { limitBytes?: number } = {}) {
    this.limit = opts.limitBytes ?? Infinity;
  }

  private used(): number {
    let n = 0;
    for (const files of this.data.values()) for (const b of files.values()) n += b.byteLength;
    return n;
  }

  private files(key: string, create = false): Map<string, Uint8Array> | undefined {
    checkKey(key);
    let f = this.data.get(key);
    if (!f && create) this.data.set(key, (f = new Map()));
    return f;
  }

  /** Throws a quota error unless `key/path` may grow to `size` bytes (its old bytes are freed). */
  private room(key: string, path: string, size: number): void {
    const old = this.files(key)?.get(path)?.byteLength ?? 0;
    if (this.used() - old + size > this.limit) {
      throw quotaError(Object.assign(new Error('quota exceeded'), { name: 'QuotaExceededError' }), `${key}/${path} (memory store)`, {
        needed: size, available: Math.max(0, this.limit - this.used() + old),
      });
    }
  }

  private put(key: string, path: string, bytes: Uint8Array): void {
    splitPath(path);
    this.room(key, path, bytes.byteLength);
    this.files(key, true)!.set(path, bytes);
  }

  async entries(): Promise<string[]> {
    return [...this.data.keys()].sort();
  }

  async entryBytes(key: string): Promise<number> {
    let n = 0;
    for (const b of this.files(key)?.values() ?? []) n += b.byteLength;
    return n;
  }

  async deleteEntry(key: string): Promise<number> {
    const n = await this.entryBytes(key);
    this.data.delete(key);
    return n;
  }

  async size(key: string, path: string): Promise<number | null> {
    return this.files(key)?.get(path)?.byteLength ?? null;
  }

  async readFile(key: string, path: string): Promise<Uint8Array | null> {
    return this.files(key)?.get(path)?.slice() ?? null;
  }

  async writeFile(key: string, path: string, bytes: Uint8Array): Promise<void> {
    this.put(key, path, bytes.slice());
  }

  async openRead(key: string, path: string): Promise<CacheFileReader | null> {
    const b = this.files(key)?.get(path);
    if (!b) return null;
    return {
      size: b.byteLength,
      read: async (offset, length) => b.slice(offset, offset + length),
      close: async () => {},
    };
  }

  async openWrite(key: string, path: string): Promise<CacheFileWriter> {
    const parts: Uint8Array[] = [];
    let n = 0;
    this.put(key, path, new Uint8Array(0)); // visible (empty) at once, like a real file
    return {
      write: async (bytes) => {
        // Check the limit as bytes arrive, so a quota error comes mid-tensor as on a real disk.
        this.room(key, path, n + bytes.byteLength);
        parts.push(bytes.slice());
        n += bytes.byteLength;
      },
      close: async () => {
        const out = new Uint8Array(n);
        let at = 0;
        for (const p of parts) { out.set(p, at); at += p.byteLength; }
        this.put(key, path, out);
      },
      abort: async () => {},
    };
  }

  async available(): Promise<number | null> {
    return Number.isFinite(this.limit) ? Math.max(0, this.limit - this.used()) : null;
  }

  tryLock(key: string): Promise<CacheLock | null> {
    return this.locks.tryLock(checkKey(key));
  }
}
