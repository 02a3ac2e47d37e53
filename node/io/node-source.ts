/**
 * ModelSource over a local folder, for the CLI and tests. Node only: the browser bundle never
 * imports this file. Each read opens the file, reads at a position and closes it, so no file
 * handle outlives a call and a 5 GB shard is never loaded whole.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { NotFoundError, WeightsFormatError, throwIfAborted } from '../../models/errors.ts';
import type { ByteSource, ModelSource, SourceOrigin, SourceRevision } from '../../models/io/source.ts';

function isMissing(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

/** One file on disk, read by range. */
class NodeFile implements ByteSource {
  constructor(readonly name: string, readonly path: string, readonly size: number) {}

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new WeightsFormatError(`${this.name}: cannot read bytes ${offset}..${offset + length}; the file has ${this.size} bytes.`);
    }
    const out = new Uint8Array(length);
    const fh = await open(this.path, 'r');
    try {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) {
          throw new WeightsFormatError(`${this.name}: the file ended at byte ${offset + done} while reading ${length} bytes at ${offset}; it was truncated after it was opened.`);
        }
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
    throwIfAborted(signal);
    return out;
  }
}

/**
 * A model folder on disk.
 * @example
 *   const source = new NodeDirSource('../shared/golden/stories260K-hf/f32');
 *   const ckpt = await openCheckpoint(source);
 */
export class NodeDirSource implements ModelSource {
  readonly description: string;
  readonly origin: SourceOrigin;
  private readonly root: string;
  /** size-mtime stamps of the files opened, standing in for ETags (revision()). */
  private readonly stamps = new Map<string, string>();

  constructor(dir: string) {
    this.root = resolve(dir);
    this.description = this.root;
    this.origin = { kind: 'node-dir', location: this.root };
  }

  /** "ETags" of config.json and every file opened so far: `<size>-<mtime ms>`, so a rewritten file differs. */
  async revision(signal?: AbortSignal): Promise<SourceRevision> {
    throwIfAborted(signal);
    try {
      const st = await stat(this.resolvePath('config.json'));
      this.stamps.set('config.json', `${st.size}-${Math.round(st.mtimeMs)}`);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    return { etags: Object.fromEntries(this.stamps) };
  }

  /** Absolute path of `path`, refusing paths that climb out of the folder. */
  private resolvePath(path: string): string {
    const full = resolve(this.root, path);
    const rel = relative(this.root, full);
    if (rel === '' || rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel)) {
      throw new NotFoundError(`${path}: not a file inside ${this.root}.`);
    }
    return full;
  }

  async open(path: string, signal?: AbortSignal): Promise<ByteSource> {
    throwIfAborted(signal);
    const full = this.resolvePath(path);
    try {
      const st = await stat(full);
      if (!st.isFile()) throw new NotFoundError(`${full} is not a file.`);
      this.stamps.set(path, `${st.size}-${Math.round(st.mtimeMs)}`);
      return new NodeFile(path, full, st.size);
    } catch (e) {
      if (isMissing(e)) throw new NotFoundError(`File not found: ${full}`);
      throw e;
    }
  }

  async readText(path: string, signal?: AbortSignal): Promise<string> {
    throwIfAborted(signal);
    const full = this.resolvePath(path);
    try {
      return await readFile(full, { encoding: 'utf8', signal });
    } catch (e) {
      if (isMissing(e)) throw new NotFoundError(`File not found: ${full}`);
      if ((e as Error).name === 'AbortError') throwIfAborted(signal);
      throw e;
    }
  }

  async exists(path: string, signal?: AbortSignal): Promise<boolean> {
    throwIfAborted(signal);
    try {
      return (await stat(this.resolvePath(path))).isFile();
    } catch (e) {
      if (e instanceof NotFoundError || isMissing(e)) return false;
      throw e;
    }
  }
}
