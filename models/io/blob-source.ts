/**
 * ModelSource over files the user picked (`<input type=file webkitdirectory>`, drag and drop) or
 * any Blobs. Ranges are read with `blob.slice(a, b).arrayBuffer()`, so a File backed by disk is
 * never read whole.
 */
import { AbortError, NotFoundError, WeightsFormatError, throwIfAborted } from '../errors.ts';
import type { ByteSource, ModelSource, SourceOrigin } from './source.ts';

/** Strips "./" and leading slashes so "config.json", "./config.json" and "/config.json" agree. */
function normalize(path: string): string {
  return path.replace(/\\/g, '/').replace(/^(\.\/|\/)+/, '');
}

/**
 * Path of a picked file inside the model folder: `webkitRelativePath` minus its top folder
 * (the folder the user picked), else the bare file name.
 */
function pathOf(file: File): string {
  const rel = (file as { webkitRelativePath?: string }).webkitRelativePath;
  if (rel) {
    const slash = rel.indexOf('/');
    return slash >= 0 ? rel.slice(slash + 1) : rel;
  }
  return file.name;
}

/** A browser File can fail to read if it changed or moved on disk after it was picked. */
function readFailure(name: string, e: unknown): Error {
  if (e instanceof Error && e.name === 'AbortError') return new AbortError();
  return new NotFoundError(`${name} can no longer be read (was it moved or changed after it was picked?): ${(e as Error)?.message ?? e}`);
}

class BlobFile implements ByteSource {
  readonly size: number;
  constructor(readonly name: string, private readonly blob: Blob) {
    this.size = blob.size;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new WeightsFormatError(`${this.name}: cannot read bytes ${offset}..${offset + length}; the file has ${this.size} bytes.`);
    }
    let buf: ArrayBuffer;
    try {
      buf = await this.blob.slice(offset, offset + length).arrayBuffer();
    } catch (e) {
      throw readFailure(this.name, e);
    }
    throwIfAborted(signal); // arrayBuffer() cannot be cancelled; drop the result instead
    if (buf.byteLength !== length) {
      throw new WeightsFormatError(`${this.name}: read ${buf.byteLength} bytes at ${offset}, expected ${length}; the file changed after it was picked.`);
    }
    return new Uint8Array(buf);
  }
}

/**
 * A model folder made of Blobs: a Map from path to Blob, or the Files of a folder pick.
 * @example
 *   // <input type="file" webkitdirectory> picking "Llama-3.1-8B/"
 *   const source = new BlobModelSource(input.files!); // "Llama-3.1-8B/config.json" -> "config.json"
 *   const ckpt = await openCheckpoint(source);
 */
export class BlobModelSource implements ModelSource {
  readonly description: string;
  private readonly files = new Map<string, Blob>();
  /** Keyed by the folder's name, file count and bytes: picked files have no stable path. */
  get origin(): SourceOrigin {
    let bytes = 0;
    for (const b of this.files.values()) bytes += b.size;
    return { kind: 'folder', location: `${this.description} (${this.files.size} files, ${bytes} bytes)` };
  }

  constructor(files: Map<string, Blob> | Iterable<File> | ArrayLike<File>, description = 'selected files') {
    if (files instanceof Map) {
      for (const [path, blob] of files) this.files.set(normalize(path), blob);
    } else {
      const list = Symbol.iterator in Object(files) ? [...(files as Iterable<File>)] : Array.from(files as ArrayLike<File>);
      for (const f of list) this.files.set(normalize(pathOf(f)), f);
    }
    this.description = description;
  }

  /** Paths of all files, e.g. to show what was picked. */
  paths(): string[] {
    return [...this.files.keys()];
  }

  private get(path: string): Blob {
    const blob = this.files.get(normalize(path));
    if (!blob) throw new NotFoundError(`${path} is not among the ${this.description} (${this.files.size} files).`);
    return blob;
  }

  async open(path: string, signal?: AbortSignal): Promise<ByteSource> {
    throwIfAborted(signal);
    return new BlobFile(normalize(path), this.get(path));
  }

  async readText(path: string, signal?: AbortSignal): Promise<string> {
    throwIfAborted(signal);
    const blob = this.get(path);
    let text: string;
    try {
      text = await blob.text();
    } catch (e) {
      throw readFailure(path, e);
    }
    throwIfAborted(signal);
    return text;
  }

  async exists(path: string, signal?: AbortSignal): Promise<boolean> {
    throwIfAborted(signal);
    return this.files.has(normalize(path));
  }
}
