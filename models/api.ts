/**
 * The engine's public types, shared by the worker, the CLI and the tests. The implementation is
 * `LlamaModel` in ./llama-model.ts; the worker exposes the same operations over postMessage.
 */
import type { LoadCacheOptions } from './cache/open-weights.ts';

export type Backend = 'webgpu' | 'cpu';
/** 'q4': projections + embeddings quantized to 4-bit groups of 32 on load; 'f32': weights kept as f32. */
export type WeightFormat = 'q4' | 'f32';
/**
 * The lm_head's format (and a tied embedding's, the same matrix): 'q8' = 8-bit groups of 32
 * (models/quant/q8.ts, like llama.cpp's Q8_0), the default with 4-bit weights (resolveLmHead).
 */
export type LmHeadFormat = 'q4' | 'q8' | 'f32';
/** Activation / KV-cache precision on the GPU. 'auto' = f16 when the adapter has shader-f16. */
export type Precision = 'auto' | 'f16' | 'f32';
/** Weight cache: 'use' a complete entry (else write one), 'refresh' (ignore and rewrite it), 'off'. */
export type CacheMode = 'use' | 'refresh' | 'off';

export interface LoadOptions {
  backend: Backend;
  weights?: WeightFormat; // default 'q4'
  /** The lm_head's format; default 'q8' with 4-bit weights, 'f32' with f32 ones (resolveLmHead in models/weights-plan.ts). */
  lmHead?: LmHeadFormat;
  precision?: Precision; // default 'auto'
  /** KV-cache capacity in tokens; default min(config.maxPositionEmbeddings, 4096). */
  maxContext?: number;
  /** WebGPU entry point: navigator.gpu in the browser, Dawn's `create([])` in Node. */
  gpu?: GPU;
  /**
   * Lower buffer limits than the device's for the engine to plan and split against (bytes): tests
   * exercise the row blocks with them; a device's own limits are never exceeded either way.
   */
  gpuLimits?: { maxBufferSize?: number; maxStorageBufferBindingSize?: number };
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
  /**
   * The weight cache (models/cache/): a complete entry for this source is loaded with no source
   * reads; otherwise the quantized tensors are written to it as they are produced. Default: none.
   */
  cache?: LoadCacheOptions;
}

export interface LoadProgress {
  phase: 'config' | 'tokenizer' | 'weights' | 'ready';
  /** Bytes of weights read so far / in total (0/0 before the weights phase). */
  loadedBytes: number;
  totalBytes: number;
  /** Tensor being loaded, when phase == 'weights'. */
  tensor?: string;
  /** Whether these bytes come from the weight cache or the source. */
  from?: 'source' | 'cache';
  /** The file the tensor is read from (a safetensors shard, or the cache file). */
  file?: string;
  /** Set while a failed download waits to try again (the read resumes where it stopped). */
  retry?: { attempt: number; tries: number; delayMs: number; reason: string };
}

export type Sampling =
  | { kind: 'greedy' }
  | { kind: 'sample'; temperature: number; topP: number; seed: number };

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: Sampling; // default greedy
  /** Extra stop ids; the config's eos ids always stop. */
  stopIds?: number[];
  signal?: AbortSignal;
  /**
   * Called once per generated token (stop token excluded) with the new text it completes ('' while
   * a multi-byte character is incomplete): the events' texts concatenate to the result's `text`,
   * less any held-back bytes flushed at the end. The result carries the full text.
   */
  onToken?: (id: number, text: string) => void;
}

export interface GenerateTimings {
  prefillTokens: number;
  prefillMs: number;
  decodeTokens: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

export interface GenerateResult {
  ids: number[];
  text: string;
  /** Logits at the last prompt position (vocab). */
  lastLogits: Float32Array;
  stopReason: 'eos' | 'max-tokens' | 'aborted';
  timings: GenerateTimings;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Accounted memory, in bytes. */
export interface MemoryReport {
  weights: number;
  kvCache: number;
  activations: number;
  total: number;
}
