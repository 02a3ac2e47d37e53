/**
 * Typed errors of the engine. Every failure the user can cause or meet (bad files, network, GPU)
 * is one of these, with a stable `code` so the worker can send it across `postMessage` and the
 * UI can react (e.g. offer "retry" on network errors, "reload" on device loss).
 */

export type EngineErrorCode =
  | 'config' // config.json missing fields, unknown architecture or rope type
  | 'weights-format' // truncated / corrupt safetensors, header larger than the file
  | 'weights-mismatch' // tensor missing or with the wrong shape for the config
  | 'unsupported-dtype' // a tensor in a dtype we cannot read
  | 'not-found' // a file or URL that does not exist (404)
  | 'network' // fetch failed (offline, CORS, 5xx)
  | 'gpu-unavailable' // no WebGPU adapter/device
  | 'gpu-oom' // GPU out of memory
  | 'device-lost' // GPU device lost
  | 'aborted' // cancelled through an AbortSignal
  | 'invalid-input' // ids out of vocabulary, sequence longer than the context, bad option
  | 'storage-quota' // OPFS / IndexedDB quota exceeded
  | 'device-limits' // a buffer or binding of the memory plan exceeds this GPU's limits
  | 'cache-corrupt' // a weight-cache entry failed its checks (size, checksum, format); it is deleted
  | 'tokenizer' // tokenizer files missing or unusable
  | 'internal';

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
  /** Plain object that survives structured clone (worker messages). */
  toJSON(): SerializedError {
    return { name: this.name, code: this.code, message: this.message };
  }
}

export class ConfigError extends EngineError {
  constructor(message: string) { super('config', message); }
}
export class WeightsFormatError extends EngineError {
  constructor(message: string) { super('weights-format', message); }
}
export class WeightsMismatchError extends EngineError {
  constructor(message: string) { super('weights-mismatch', message); }
}
export class UnsupportedDtypeError extends EngineError {
  constructor(message: string) { super('unsupported-dtype', message); }
}
export class NotFoundError extends EngineError {
  constructor(message: string) { super('not-found', message); }
}
export class NetworkError extends EngineError {
  constructor(message: string, options?: { cause?: unknown }) { super('network', message, options); }
}
export class GpuUnavailableError extends EngineError {
  constructor(message: string) { super('gpu-unavailable', message); }
}
export class GpuOutOfMemoryError extends EngineError {
  constructor(message: string) { super('gpu-oom', message); }
}
export class DeviceLostError extends EngineError {
  constructor(message: string) { super('device-lost', message); }
}
export class AbortError extends EngineError {
  constructor(message = 'The operation was cancelled.') { super('aborted', message); }
}
export class InvalidInputError extends EngineError {
  constructor(message: string) { super('invalid-input', message); }
}
export class StorageQuotaError extends EngineError {
  constructor(message: string) { super('storage-quota', message); }
}
/** A weight-cache entry is truncated, altered or of another format; it is never used. */
export class CacheCorruptError extends EngineError {
  constructor(message: string) { super('cache-corrupt', message); }
}
/** One buffer over one WebGPU limit (models/memory-plan.ts checkPlan). */
export interface DeviceLimitProblem {
  buffer: string;
  bytes: number;
  limit: string;
  limitBytes: number;
}
/** The model's memory plan does not fit this GPU's limits; the message names buffers and limits. */
export class DeviceLimitsError extends EngineError {
  readonly problems: readonly DeviceLimitProblem[];
  constructor(message: string, problems: readonly DeviceLimitProblem[] = []) {
    super('device-limits', message);
    this.problems = problems;
  }
}
export class TokenizerError extends EngineError {
  constructor(message: string) { super('tokenizer', message); }
}

export interface SerializedError {
  name: string;
  code: EngineErrorCode;
  message: string;
}

/** Turns anything thrown into a serialisable error; unknown errors become code 'internal'. */
export function serializeError(e: unknown): SerializedError {
  if (e instanceof EngineError) return e.toJSON();
  if (e instanceof Error && e.name === 'AbortError') return { name: 'AbortError', code: 'aborted', message: e.message };
  // A browser storage API (OPFS, IndexedDB, Cache API) out of room, wherever it surfaced.
  if (e instanceof Error && e.name === 'QuotaExceededError') {
    return { name: 'StorageQuotaError', code: 'storage-quota', message: `This site's storage quota is exhausted: ${e.message} Free space (delete cached models or indexes) and try again.` };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { name: 'EngineError', code: 'internal', message };
}

/** Rebuilds a typed error on the other side of the worker boundary. */
export function deserializeError(s: SerializedError): EngineError {
  const e = new EngineError(s.code, s.message);
  e.name = s.name;
  return e;
}

/** Throws AbortError if the signal is aborted; call at every await point of long work. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortError();
}
