/**
 * An index in a folder on disk (CLI, tests, benchmark). Node only. Files are written to a temporary
 * name and renamed, so a crash never leaves a half-written file under its real name.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StorageQuotaError } from '../../models/errors.ts';
import { MANIFEST_FILE, RECORDS_FILE, VECTORS_FILE } from '../../models/retrieval/manifest.ts';
import { PARTIAL_PREFIX } from '../../models/retrieval/partial-build.ts';
import type { IndexStore } from '../../models/retrieval/store.ts';

/**
 * @example
 *   const store = new NodeDirStore('out/traces-index');
 *   await saveIndex(store, built);
 */
export class NodeDirStore implements IndexStore {
  readonly description: string;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.description = this.dir;
  }

  async read(name: string): Promise<Uint8Array | null> {
    try {
      const b = await readFile(join(this.dir, name));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return null;
      throw e;
    }
  }

  async write(name: string, data: Uint8Array): Promise<void> {
    const path = join(this.dir, name);
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFile(`${path}.tmp`, data);
      await rename(`${path}.tmp`, path);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOSPC') throw new StorageQuotaError(`No space left on the disk to write ${path}.`);
      throw e;
    }
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.dir, name), { force: true });
  }

  /** Removes only this index's own files (and a partial build's): the folder may hold other things. */
  async clear(): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const own = names.filter((n) => n.startsWith(PARTIAL_PREFIX));
    for (const name of [MANIFEST_FILE, VECTORS_FILE, RECORDS_FILE, ...own]) await rm(join(this.dir, name), { force: true });
  }
}
