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

/** A folder of model files (config.json, tokenizer.json, *.safetensors, ...). */
export interface ModelSource {
  /** Human-readable origin, e.g. the URL base or folder path, used in error messages. */
  readonly description: string;
  /** Opens a file; throws NotFoundError if it does not exist, NetworkError if it cannot be reached. */
  open(path: string, signal?: AbortSignal): Promise<ByteSource>;
  /** Reads a whole (small) text file; same errors as `open`. */
  readText(path: string, signal?: AbortSignal): Promise<string>;
  /** True if the file exists; NetworkError if that cannot be determined. */
  exists(path: string, signal?: AbortSignal): Promise<boolean>;
}
