/**
 * Where weight-cache entries live. An entry is a folder named by its key holding a few files
 * (`manifest.json`, `files/<name>`, `tensors/<name>.bin`); a store only knows folders and files,
 * the format is in ./format.ts. Implementations: a folder on disk (node/cache/node-store.ts: CLI, tests),
 * the origin-private file system (opfs-store.ts: the browser worker) and memory (memory-store.ts).
 *
 * Errors: running out of space while writing is a StorageQuotaError (see `quotaError`); anything
 * else the platform throws passes through.
 */
import { StorageQuotaError } from '../errors.ts';

/** Reads one file by range; `close()` releases it (OPFS locks a file while a handle is open). */
export interface CacheFileReader {
  readonly size: number;
  /** Up to `length` bytes at `offset` (fewer only at the end of the file). */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Writes one file from its start, in order. Nothing is visible as complete before `close()`. */
export interface CacheFileWriter {
  write(bytes: Uint8Array): Promise<void>;
  /** Flushes to storage and publishes the file under its name. */
  close(): Promise<void>;
  /** Gives up: releases the handle; what was written may or may not stay (it is never listed). */
  abort(): Promise<void>;
}

/** The right to write or delete one entry: held by one load at a time, across tabs, workers and processes. */
export interface CacheLock {
  /** Gives the lock up (idempotent). */
  release(): Promise<void>;
}

export interface CacheStore {
  /** Human-readable location, for messages (a folder path, "OPFS finemed-weight-cache", "memory"). */
  readonly description: string;
  /** Names of the entry folders. */
  entries(): Promise<string[]>;
  /** Bytes the entry's files take (0 when it does not exist). */
  entryBytes(key: string): Promise<number>;
  /** Deletes the entry folder and everything in it; returns the bytes freed (0 when absent). */
  deleteEntry(key: string): Promise<number>;
  /** Size of `entry/path`, or null when it does not exist. */
  size(key: string, path: string): Promise<number | null>;
  /** Whole (small) file, or null when it does not exist. */
  readFile(key: string, path: string): Promise<Uint8Array | null>;
  /** Creates or replaces a small file in one go (the manifest): never left half-written under its name where the platform allows. */
  writeFile(key: string, path: string, bytes: Uint8Array): Promise<void>;
  /** Opens a file for ranged reads; null when it does not exist. */
  openRead(key: string, path: string): Promise<CacheFileReader | null>;
  /** Creates (or replaces) a file for streaming writes. */
  openWrite(key: string, path: string): Promise<CacheFileWriter>;
  /** Bytes that can still be written, when the platform says (quota - usage, free disk), else null. */
  available(): Promise<number | null>;
  /**
   * Takes the entry's lock, or resolves null at once when another holder (a load in this or
   * another tab, worker or process) has it. Writers and deleters hold it; readers of a complete
   * entry need not.
   */
  tryLock(key: string): Promise<CacheLock | null>;
}

/**
 * Locks within one JavaScript realm (the memory store; OPFS where the Web Locks API is missing).
 * @example const locks = new InProcessLocks(); const l = await locks.tryLock('k'); await locks.tryLock('k'); // null
 */
export class InProcessLocks {
  private readonly held = new Set<string>();

  async tryLock(key: string): Promise<CacheLock | null> {
    if (this.held.has(key)) return null;
    this.held.add(key);
    let held = true;
    return { release: async () => { if (held) { held = false; this.held.delete(key); } } };
  }
}

/**
 * writeFile through a store's own streaming writer: written whole and published on close, or
 * aborted (never published) on any failure.
 * @example writeFile = (key, path, bytes) => writeWhole(this.openWrite(key, path), bytes);
 */
export async function writeWhole(open: Promise<CacheFileWriter>, bytes: Uint8Array): Promise<void> {
  const w = await open;
  try {
    await w.write(bytes);
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

const MB = 2 ** 20;

/** "1.2 GB" / "340 MB": sizes in messages. */
export function formatBytes(n: number): string {
  return n >= 1024 * MB ? `${(n / (1024 * MB)).toFixed(1)} GB` : `${(n / MB).toFixed(n >= 10 * MB ? 0 : 1)} MB`;
}

/** True for the platforms' "no space" errors: DOMException QuotaExceededError, Node ENOSPC/EDQUOT. */
export function isQuotaError(e: unknown): boolean {
  const err = e as { name?: unknown; code?: unknown } | null;
  return err?.name === 'QuotaExceededError' || err?.code === 'ENOSPC' || err?.code === 'EDQUOT' || e instanceof StorageQuotaError;
}

/**
 * The typed error for running out of space while writing `what`, with the sizes when known;
 * any other error is returned unchanged.
 * @example throw quotaError(e, 'tensors/model.norm.weight.bin in OPFS', { needed: 4.5e9, available: 1e9 });
 */
export function quotaError(e: unknown, what: string, sizes: { needed?: number; available?: number | null } = {}): unknown {
  if (!isQuotaError(e)) return e;
  if (e instanceof StorageQuotaError) return e;
  const need = sizes.needed !== undefined ? ` The model needs ${formatBytes(sizes.needed)}` : '';
  const have = sizes.available != null ? `${need ? ';' : ''} ${formatBytes(sizes.available)} is available.` : need ? '.' : '';
  return new StorageQuotaError(`Storage is full while writing ${what}.${need}${have} Free space (delete cached models) or load without the cache.`);
}

/** Splits "a/b/c.bin" into folders and the file name, refusing empty parts and "..". */
export function splitPath(path: string): { dirs: string[]; name: string } {
  const parts = path.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`Bad cache path "${path}".`);
  return { dirs: parts.slice(0, -1), name: parts[parts.length - 1] };
}

/** Throws unless `key` is a single safe folder name. */
export function checkKey(key: string): string {
  if (splitPath(key).dirs.length) throw new Error(`Bad cache key "${key}".`);
  return key;
}
