/**
 * A lock held as a file created exclusively (`O_EXCL`) holding the owner's pid: two CLI processes
 * loading the same model into one --cache-dir never write (or delete) its entry at once. A lock
 * whose process is gone (killed mid-download) is stale and taken over. Locks held by this process
 * are tracked in memory too, since its own pid in the file would look alive.
 */
import { open, readFile, stat, unlink } from 'node:fs/promises';
import type { CacheLock } from '../../models/cache/store.ts';

/** How long a lock file may stay empty (created, pid not yet written) before it counts as stale. */
const EMPTY_GRACE_MS = 10_000;

const heldHere = new Set<string>();

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // not in heldHere, so a leftover of a pid reused since
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM'; // alive, owned by someone else
  }
}

/** Whether the lock at `path` still has a live owner (false when the file is gone). */
async function ownerAlive(path: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return false;
    throw e;
  }
  const pid = Number.parseInt(text, 10);
  if (Number.isInteger(pid) && pid > 0) return processAlive(pid);
  // Empty: its owner is between creating and writing it, unless that was long ago.
  const st = await stat(path).catch(() => null);
  return st !== null && Date.now() - st.mtimeMs < EMPTY_GRACE_MS;
}

/**
 * The lock at `path`, or null when a live process (this one included) holds it.
 * @example const lock = await tryLockFile('/cache/weights/key.lock'); if (lock) try { ... } finally { await lock.release(); }
 */
export async function tryLockFile(path: string): Promise<CacheLock | null> {
  if (heldHere.has(path)) return null;
  heldHere.add(path); // before any await: a second call from this process sees it at once
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(String(process.pid));
        } finally {
          await fh.close();
        }
        let held = true;
        return {
          release: async () => {
            if (!held) return;
            held = false;
            await unlink(path).catch(() => {});
            heldHere.delete(path);
          },
        };
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') throw e;
      }
      if (await ownerAlive(path)) break;
      await unlink(path).catch(() => {}); // stale: its process is gone
    }
  } catch (e) {
    heldHere.delete(path);
    throw e;
  }
  heldHere.delete(path);
  return null;
}
