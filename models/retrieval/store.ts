/**
 * Where a persisted index lives: a flat set of named files. Implementations: a folder on disk
 * (node/retrieval/node-store.ts, CLI), OPFS and IndexedDB (opfs-store.ts, idb-store.ts: worker), HTTP (url-store.ts,
 * read-only) and memory (tests).
 */

export interface IndexStore {
  /** Human-readable location, for messages. */
  readonly description: string;
  /** The file's bytes, or null when it does not exist. */
  read(name: string): Promise<Uint8Array | null>;
  /** Creates or replaces the file; StorageQuotaError when the quota is exceeded. */
  write(name: string, data: Uint8Array): Promise<void>;
  /** Deletes one file; nothing happens when it does not exist. */
  remove(name: string): Promise<void>;
  /** Deletes every file of this index. */
  clear(): Promise<void>;
}

/**
 * An index held in a Map (tests, and a last resort where the browser has no storage).
 * @example const store = new MemoryStore(); await saveIndex(store, built);
 */
export class MemoryStore implements IndexStore {
  readonly description = 'memory';
  readonly files = new Map<string, Uint8Array>();

  async read(name: string): Promise<Uint8Array | null> {
    return this.files.get(name) ?? null;
  }

  async write(name: string, data: Uint8Array): Promise<void> {
    this.files.set(name, data.slice());
  }

  async remove(name: string): Promise<void> {
    this.files.delete(name);
  }

  async clear(): Promise<void> {
    this.files.clear();
  }
}
