/**
 * Where model files come from. One interface for a Hugging Face repo URL (HTTP range requests),
 * files the user picked in the browser (File/Blob), the OPFS cache, and Node files (CLI, tests).
 * Readers only ever ask for byte ranges, so a 5 GB shard is never held whole in memory.
 */

/** One file, readable by byte range. */
export interface ByteSource {
  /** Path of the file inside its model source (for error messages). */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** Reads exactly `length` bytes at `offset`; throws WeightsFormatError if the file is shorter. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** What a source is, for weight-cache keys (models/cache/key.ts). */
export interface SourceOrigin {
  kind: 'url' | 'folder' | 'node-dir';
  /** URL base, absolute folder path, or a picked folder's name with its file count and size. */
  location: string;
}

/** The version of a source's files, to tell whether a partly cached copy is still the same model. */
export interface SourceRevision {
  /** The hub's commit (`X-Repo-Commit` of config.json's response), when the server sends one. */
  commit?: string;
  /** ETag (or a size-mtime stamp for local files) by file path, for the files seen so far. */
  etags: Record<string, string>;
}

/** A folder of model files (config.json, tokenizer.json, *.safetensors, ...). */
export interface ModelSource {
  /** Human-readable origin, e.g. the URL base or folder path, used in error messages. */
  readonly description: string;
  /** What the source is (cache keys); sources without it are keyed by `description`. */
  readonly origin?: SourceOrigin;
  /** The files' version (hub commit, ETags); may make one small request (config.json) if none was made yet. */
  revision?(signal?: AbortSignal): Promise<SourceRevision>;
  /** Opens a file; throws NotFoundError if it does not exist, NetworkError if it cannot be reached. */
  open(path: string, signal?: AbortSignal): Promise<ByteSource>;
  /** Reads a whole (small) text file; same errors as `open`. */
  readText(path: string, signal?: AbortSignal): Promise<string>;
  /** True if the file exists; NetworkError if that cannot be determined. */
  exists(path: string, signal?: AbortSignal): Promise<boolean>;
}
