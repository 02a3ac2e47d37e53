/**
 * The typed message protocol between the main thread (workers/client.ts) and the LLM worker
 * (workers/llm.worker.ts). Every message is structured-clone safe: no class instances, no GPU
 * objects, no functions. Requests carry a numeric `id`; every event the worker sends back carries
 * the `id` of the request it belongs to, and each request ends with exactly one `result` or `error`.
 */
import type { Backend, CacheMode, GenerateOptions, GenerateResult, LoadOptions, LoadProgress, MemoryReport, WeightFormat } from '../models/api.ts';
import type { LlamaConfig } from '../models/config.ts';
import type { SerializedError } from '../models/errors.ts';
import type { CachedModelInfo } from '../models/cache/weight-cache.ts';
import type { TttConfig, TttPreset } from '../models/ttt/config.ts';
import type { Trace } from '../models/ttt/training-text.ts';
import type { PreparedPrompt, PromptRequest } from '../models/ask/prompt-plan.ts';
import type { PromptFormat } from '../models/prompt-format.ts';

// The UI imports its engine-facing types from here only, never from models/ directly.
export type { Backend, CacheMode, GenerateTimings, LoadProgress, Sampling, WeightFormat } from '../models/api.ts';
export type { CachedModelInfo } from '../models/cache/weight-cache.ts';
export type { EngineErrorCode } from '../models/errors.ts';
export type { TttConfig, TttPreset } from '../models/ttt/config.ts';
export type { Trace } from '../models/ttt/training-text.ts';
export type { PreparedPrompt, PromptRequest } from '../models/ask/prompt-plan.ts';
export type { PromptFormat } from '../models/prompt-format.ts';

/**
 * Where the worker reads the model from. `files` are File objects (cloned by reference, not copied).
 * `paths[i]` is files[i]'s path inside the model folder. `webkitRelativePath` is not guaranteed to
 * survive postMessage, so LlmClient.load fills `paths` from it before sending (a File list
 * without relative paths falls back to file names).
 */
export type ModelSourceSpec =
  | { kind: 'url'; url: string }
  | { kind: 'files'; files: File[]; paths?: string[]; description?: string };

/**
 * LoadOptions minus what cannot cross postMessage; the worker supplies gpu/signal/onProgress and
 * its OPFS weight cache itself. `cache`: 'use' (default: a complete cached copy loads with no
 * request to the source, else the download is cached), 'refresh' (download and re-cache), 'off'.
 */
export type WorkerLoadOptions = Omit<LoadOptions, 'gpu' | 'signal' | 'onProgress' | 'cache'> & { cache?: CacheMode };
export type WorkerGenerateOptions = Omit<GenerateOptions, 'signal' | 'onToken'> & {
  /** Send the last prompt position's logits back (a vocab-sized number[]; off by default for size). */
  includeLogits?: boolean;
};

/** Either text (tokenized in the worker, optionally through the chat template) or raw token ids. */
export type GenerateInput = { prompt: string; chat: boolean; system?: string } | { ids: number[] };
export type GenerateRequestBody = GenerateInput & { options: WorkerGenerateOptions };

export type LoadRequest = { type: 'load'; id: number; source: ModelSourceSpec; options: WorkerLoadOptions };
export type GenerateRequest = { type: 'generate'; id: number } & GenerateRequestBody;
/**
 * Aborts the request `targetId` (a load, generate or ttt, or any request still queued); it then
 * ends with an `aborted` error (a generate: a result with stopReason 'aborted').
 */
export type CancelRequest = { type: 'cancel'; id: number; targetId: number };
export type UnloadRequest = { type: 'unload'; id: number };
/** The weight cache's entries (OPFS): what is stored, how big, complete or partial. */
export type ListCachedModelsRequest = { type: 'list-cached-models'; id: number };
/** Deletes one cache entry (by its key from list-cached-models), freeing its storage. */
export type DeleteCachedModelRequest = { type: 'delete-cached-model'; id: number; key: string };
export type InfoRequest = { type: 'info'; id: number };

// ---- Test-time training (LoRA) -------------------------------------------------------------

/** Adapter and default optimizer settings: any TttConfig field over a preset (models/ttt/config.ts). */
export type WorkerTttConfig = Partial<TttConfig> & { preset?: TttPreset };

/**
 * Attaches a LoRA adapter to the loaded model, replacing (and freeing) any attached one;
 * reset-adapter is the cheap way back to the start of the same one. Without `loraInit`: A uniform from
 * `config.seed`, B = 0. With `loraInit` (PEFT safetensors bytes, `<weight>.lora_A` / `.lora_B`;
 * transferred, so the sender's buffer is detached): A, and B where the file has it. Rank and
 * targets not given in `config` are taken from the file, alpha from its metadata (else alpha/rank
 * as in the defaults). `zeroB` sets B = 0 after loading (the model then equals the base model).
 */
export type AttachAdapterBody = { config?: WorkerTttConfig; loraInit?: ArrayBuffer; zeroB?: boolean };
export type AttachAdapterRequest = { type: 'attach-adapter'; id: number } & AttachAdapterBody;

/** Optimizer settings of one ttt call; unset fields come from attach-adapter's config. null maxGradNorm = no clipping. */
export type TttOptions = Partial<Pick<TttConfig, 'steps' | 'lr' | 'beta1' | 'beta2' | 'eps' | 'weightDecay' | 'maxGradNorm'>>;

/**
 * What to train on: token ids with a loss mask (mask[t] = 1: token t is a target, as in the golden
 * files), or a retrieved trace rendered in a prompt format (default FineMedLM-o1's system prompt
 * in the chat template; pass the answer prompt's format so the adapter is trained in the context
 * it answers in; needs the model's tokenizer).
 */
export type TrainingInput = { ids: number[]; mask: number[] } | { trace: Trace; format?: PromptFormat };

/**
 * A fresh adapter of this shape: attached anew, or, when one of the same shape (rank, alpha,
 * targets, maxTokens, seed) is attached already, that one reset (`reused`: no allocation). The
 * optimizer defaults of later ttt calls become `config`'s either way.
 */
export type EnsureAdapterRequest = { type: 'ensure-adapter'; id: number; config: WorkerTttConfig };
/** Removes the attached adapter and frees its memory. */
export type DetachAdapterRequest = { type: 'detach-adapter'; id: number };
/** The answer prompt of a question in this model (models/ask/prompt-plan.ts). */
export type PreparePromptRequest = { type: 'prepare-prompt'; id: number; question: string; request: PromptRequest };

export type TttRequestBody = TrainingInput & { options?: TttOptions };
/** Adam steps on the attached adapter, with a `ttt-step` event after each; cancellable. */
export type TttRequest = { type: 'ttt'; id: number } & TttRequestBody;

/** `returnGrads` false: the loss only (the gradients are still computed). Default true. */
export type LossAndGradsBody = TrainingInput & { returnGrads?: boolean };
/** Loss and LoRA gradients at the current adapter; the adapter is not changed. */
export type LossAndGradsRequest = { type: 'loss-and-grads'; id: number } & LossAndGradsBody;
/** The current adapter as PEFT safetensors bytes. */
export type GetAdapterRequest = { type: 'get-adapter'; id: number };
/** B = 0, A back to its attached value, optimizer state cleared: the base model again. */
export type ResetAdapterRequest = { type: 'reset-adapter'; id: number };

/**
 * Test only: destroys the loaded model's GPU device, as a driver reset or a GPU process crash
 * would, so tests can see device loss give DeviceLostError and a new load work afterwards.
 * Answered at once (not queued behind a running generate or ttt). The app never sends it, and
 * the worker refuses it outside development builds (import.meta.env.DEV).
 */
export type DebugLoseDeviceRequest = { type: 'debug-lose-device'; id: number };

export type WorkerRequest =
  | LoadRequest
  | GenerateRequest
  | CancelRequest
  | UnloadRequest
  | ListCachedModelsRequest
  | DeleteCachedModelRequest
  | InfoRequest
  | AttachAdapterRequest
  | TttRequest
  | LossAndGradsRequest
  | GetAdapterRequest
  | ResetAdapterRequest
  | EnsureAdapterRequest
  | DetachAdapterRequest
  | PreparePromptRequest
  | DebugLoseDeviceRequest;

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
  /** The weights came from the OPFS weight cache, or from the source (and were cached). */
  loadedFrom: 'cache' | 'source';
  /** The cache entry of this model (null with cache 'off' or where OPFS is unavailable). */
  cacheKey: string | null;
}

/** GenerateResult made serialisable: logits as a plain array, and only when asked for. */
export type WorkerGenerateResult = Omit<GenerateResult, 'lastLogits'> & { lastLogits?: number[]; promptTokens: number };

/** The attached adapter: its resolved settings (the defaults of later ttt calls) and size. */
export interface AdapterInfo {
  /** maxTokens is already capped at the model's context. */
  config: TttConfig;
  /** Trainable parameters (all A and B entries). */
  parameters: number;
  /** A (and B) came from `loraInit`, not from the seed. */
  fromFile: boolean;
  /** B started at zero (fresh init, zeroB, or a file without B), i.e. the model was unchanged. */
  bZero: boolean;
}

/** The training sequence a request used: its length, and for a trace how it was cut. */
export interface TrainingSequenceInfo {
  tokens: number;
  /** Tokens of the prompt part (mask 0); for ids input, the leading zeros of the mask. */
  promptTokens: number;
  /** A trace longer than maxTokens lost the end of its reasoning. */
  truncated: boolean;
}

export interface TttResult {
  /** Loss before any update (= losses[0] when steps > 0). */
  lossAtStart: number;
  /** Loss before each step. */
  losses: number[];
  /** Loss after the last step. */
  finalLoss: number;
  /** Predicted tokens the loss covers (mask[t] = 1, t >= 1). */
  tokensTrained: number;
  timings: { totalMs: number; stepMs: number[] };
  sequence: TrainingSequenceInfo;
}

export interface LossAndGradsResult {
  loss: number;
  tokensTrained: number;
  /** safetensors, F32, names `<weight name>.lora_A.grad` / `.lora_B.grad` (absent with returnGrads false). */
  grads?: ArrayBuffer;
}

/** The `result` payload of each request type. */
export interface ResultByType {
  load: ModelInfo;
  generate: WorkerGenerateResult;
  cancel: { cancelled: boolean };
  unload: null;
  'list-cached-models': CachedModelInfo[];
  'delete-cached-model': { deleted: boolean; freedBytes: number };
  info: ModelInfo | null;
  'attach-adapter': AdapterInfo;
  ttt: TttResult;
  'loss-and-grads': LossAndGradsResult;
  /** PEFT safetensors bytes (F32 `<weight name>.lora_A` / `.lora_B`; metadata rank, alpha, targets). */
  'get-adapter': ArrayBuffer;
  'reset-adapter': null;
  'ensure-adapter': { reused: boolean; adapter: AdapterInfo };
  'detach-adapter': null;
  'prepare-prompt': PreparedPrompt;
  /** `lost`: a GPU model's device was destroyed (false: no model, or a CPU one). */
  'debug-lose-device': { lost: boolean };
}

export type ProgressMessage = { type: 'progress'; id: number; progress: LoadProgress };
/** One generated token. `text` is the new text it completes ('' while a multi-byte character is
 *  incomplete); the events' texts concatenate to the answer, and the result's `text` is the whole. */
export type TokenMessage = { type: 'token'; id: number; tokenId: number; text: string };
/** After each TTT step: the loss before that step, and the step's wall time. */
export type TttStepMessage = { type: 'ttt-step'; id: number; step: number; steps: number; loss: number; ms: number };
/** ArrayBuffers in a result (get-adapter, loss-and-grads) are transferred, not copied. */
export type ResultMessage = { type: 'result'; id: number; result: ResultByType[keyof ResultByType] };
/** `id` is NO_REQUEST when the failure belongs to no request (e.g. an unreadable message). */
export type ErrorMessage = { type: 'error'; id: number; error: SerializedError };

export type WorkerEvent = ProgressMessage | TokenMessage | TttStepMessage | ResultMessage | ErrorMessage;

// One constant for both protocols (./wire.ts).
export { NO_REQUEST } from './wire.ts';
