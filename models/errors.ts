/**
 * Typed errors of the engine. Every failure the user can cause or meet (bad files, network, GPU)
 * is one of these, with a stable `code` so the worker can send it across `postMessage` and the
 * UI can react (e.g. offer "retry" on network errors, "reload" on device loss).
 *
 * Across the worker boundary an error keeps its class: each module registers its classes under
 * stable names (registerErrorClasses, below for this file's), serializeError sends the name, code,
 * message and the class's extra fields, and deserializeError rebuilds the registered class, so
 * `instanceof DeviceLostError` holds on the main thread too.
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
  | 'gpu-validation' // WebGPU rejected a command (a bug, or a limit the plan missed); never garbage output
  | 'gpu-internal' // the GPU driver or browser failed a command for its own reasons (e.g. shader compilation)
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
    // The registered name: a minifier renames classes, differently in the page's and the worker's bundle.
    this.name = NAME_OF_CLASS.get(new.target) ?? new.target.name;
  }
  /**
   * Plain object that survives structured clone (worker messages): name, code, message, and in
   * `details` the subclass's own fields (DeviceLimitsError's problems, a corpus error's bad lines).
   */
  toJSON(): SerializedError {
    const details = Object.fromEntries(Object.entries(this).filter(([k]) => !RESERVED_FIELDS.has(k)));
    return { name: this.name, code: this.code, message: this.message, ...(Object.keys(details).length > 0 ? { details } : {}) };
  }
}

/** Fields every EngineError has; anything else an instance holds is sent as `details`. */
const RESERVED_FIELDS: ReadonlySet<string> = new Set(['name', 'code', 'message', 'stack', 'cause']);

/** Any EngineError subclass, whatever its constructor's arguments. */
export type EngineErrorClass = abstract new (...args: never[]) => EngineError;

const CLASS_OF_NAME = new Map<string, EngineErrorClass>();
const NAME_OF_CLASS = new Map<Function, string>();

/**
 * Registers error classes under the names of `classes`' keys (stable strings a minifier keeps), so
 * their instances carry that name and deserializeError rebuilds them. Each module that defines
 * EngineError subclasses registers its own, right after defining them; a module is registered on
 * the main thread as soon as something there imports it (workers/worker-client.ts imports them all).
 * @example registerErrorClasses({ CorpusFormatError, StaleIndexError });
 */
export function registerErrorClasses(classes: Record<string, EngineErrorClass>): void {
  for (const [name, cls] of Object.entries(classes)) {
    CLASS_OF_NAME.set(name, cls);
    NAME_OF_CLASS.set(cls, name);
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
/** WebGPU reported a validation error during a load, a generation or a training step (models/gpu/error-scope.ts). */
export class GpuValidationError extends EngineError {
  constructor(message: string) { super('gpu-validation', message); }
}
/** WebGPU reported an internal error (the driver or browser failed a valid command). */
export class GpuInternalError extends EngineError {
  constructor(message: string) { super('gpu-internal', message); }
}
/** The GPU device was lost (driver reset, another tab, destroy()): the model is unusable; load it again. */
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

registerErrorClasses({
  EngineError, ConfigError, WeightsFormatError, WeightsMismatchError, UnsupportedDtypeError, NotFoundError, NetworkError,
  GpuUnavailableError, GpuOutOfMemoryError, GpuValidationError, GpuInternalError, DeviceLostError, AbortError, InvalidInputError, StorageQuotaError, CacheCorruptError,
  DeviceLimitsError, TokenizerError,
});

export interface SerializedError {
  name: string;
  code: EngineErrorCode;
  message: string;
  /** The subclass's own fields (plain data), e.g. DeviceLimitsError's `problems`; absent when it has none. */
  details?: Record<string, unknown>;
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

/**
 * Rebuilds a typed error on the other side of the worker boundary: an instance of the class
 * registered under `s.name` (EngineError, keeping `s.name`, for a name not registered here), with
 * `s.code`, `s.message` and the fields in `s.details`.
 * @example
 *   const e = deserializeError(serializeError(new DeviceLostError('lost')));
 *   e instanceof DeviceLostError; // true
 */
export function deserializeError(s: SerializedError): EngineError {
  if (typeof s !== 'object' || s === null || typeof s.message !== 'string') {
    return new EngineError('internal', `An error without a readable description crossed the worker boundary: ${String(s)}.`);
  }
  const cls = CLASS_OF_NAME.get(s.name) ?? EngineError;
  // Subclass constructors take differing arguments (StaleIndexError writes its own message), so the
  // base constructor runs with the subclass as new.target: its prototype, with the code and message as sent.
  const e = Reflect.construct(EngineError, [s.code, s.message], cls) as EngineError;
  if (cls === EngineError) e.name = s.name;
  for (const [k, v] of Object.entries(s.details ?? {})) if (!RESERVED_FIELDS.has(k)) (e as unknown as Record<string, unknown>)[k] = v;
  return e;
}

/** Throws AbortError if the signal is aborted; call at every await point of long work. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortError();
}
