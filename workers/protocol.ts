/**
 * The typed message protocol between the main thread (workers/client.ts) and the LLM worker
 * (workers/llm.worker.ts). Every message is structured-clone safe: no class instances, no GPU
 * objects, no functions. Requests carry a numeric `id`; every event the worker sends back carries
 * the `id` of the request it belongs to, and each request ends with exactly one `result` or `error`.
 */
import type { Backend, GenerateOptions, GenerateResult, LoadOptions, LoadProgress, MemoryReport, WeightFormat } from '../models/api.ts';
import type { LlamaConfig } from '../models/config.ts';
import type { SerializedError } from '../models/errors.ts';

// The UI imports its engine-facing types from here only, never from models/ directly.
export type { Backend, GenerateTimings, LoadProgress, Sampling, WeightFormat } from '../models/api.ts';
export type { EngineErrorCode } from '../models/errors.ts';

/**
 * Where the worker reads the model from. `files` are File objects (cloned by reference, not copied).
 * `paths[i]` is files[i]'s path inside the model folder. `webkitRelativePath` is not guaranteed to
 * survive postMessage, so LlmClient.load fills `paths` from it before sending (a File list
 * without relative paths falls back to file names).
 */
export type ModelSourceSpec =
  | { kind: 'url'; url: string }
  | { kind: 'files'; files: File[]; paths?: string[]; description?: string };

/** LoadOptions minus what cannot cross postMessage; the worker supplies gpu/signal/onProgress itself. */
export type WorkerLoadOptions = Omit<LoadOptions, 'gpu' | 'signal' | 'onProgress'>;
export type WorkerGenerateOptions = Omit<GenerateOptions, 'signal' | 'onToken'> & {
  /** Send the last prompt position's logits back (a vocab-sized number[]; off by default for size). */
  includeLogits?: boolean;
};

/** Either text (tokenized in the worker, optionally through the chat template) or raw token ids. */
export type GenerateInput = { prompt: string; chat: boolean; system?: string } | { ids: number[] };
export type GenerateRequestBody = GenerateInput & { options: WorkerGenerateOptions };

export type LoadRequest = { type: 'load'; id: number; source: ModelSourceSpec; options: WorkerLoadOptions };
export type GenerateRequest = { type: 'generate'; id: number } & GenerateRequestBody;
/** Aborts the request `targetId` (a load or generate); it then ends with an `aborted` error or result. */
export type CancelRequest = { type: 'cancel'; id: number; targetId: number };
export type UnloadRequest = { type: 'unload'; id: number };
export type InfoRequest = { type: 'info'; id: number };

export type WorkerRequest = LoadRequest | GenerateRequest | CancelRequest | UnloadRequest | InfoRequest;

/** What a loaded model looks like from the UI: plain data only. */
export interface ModelInfo {
  /** Human-readable origin (URL base or folder). */
  source: string;
  config: LlamaConfig;
  backend: Backend;
  weights: WeightFormat;
  precision: 'f16' | 'f32';
  hasTokenizer: boolean;
  /** tokenizer_config.json carries a chat_template. */
  hasChatTemplate: boolean;
  memory: MemoryReport;
  loadMs: number;
}

/** GenerateResult made serialisable: logits as a plain array, and only when asked for. */
export type WorkerGenerateResult = Omit<GenerateResult, 'lastLogits'> & { lastLogits?: number[]; promptTokens: number };

/** The `result` payload of each request type. */
export interface ResultByType {
  load: ModelInfo;
  generate: WorkerGenerateResult;
  cancel: { cancelled: boolean };
  unload: null;
  info: ModelInfo | null;
}

export type ProgressMessage = { type: 'progress'; id: number; progress: LoadProgress };
/** One generated token. `text` is the new text since the previous event (best effort when a
 *  multi-byte character completes late); `textSoFar` is authoritative. */
export type TokenMessage = { type: 'token'; id: number; tokenId: number; text: string; textSoFar: string };
export type ResultMessage = { type: 'result'; id: number; result: ResultByType[keyof ResultByType] };
/** `id` is NO_REQUEST when the failure belongs to no request (e.g. an unreadable message). */
export type ErrorMessage = { type: 'error'; id: number; error: SerializedError };

export type WorkerEvent = ProgressMessage | TokenMessage | ResultMessage | ErrorMessage;

export const NO_REQUEST = -1;
