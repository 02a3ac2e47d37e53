/** The embedder as the index sees it: texts in, unit vectors out, plus what identifies its vectors. */
import type { EmbedderSource } from './embedder-source.ts';

/** Everything that changes the vectors: an index built with other values is stale. */
export interface EmbedderInfo {
  /** Model id as given (hub repo such as 'Xenova/bge-small-en-v1.5', or a local folder name). */
  model: string;
  dims: number;
  /** ONNX weight variant ('fp32', 'q8', 'fp16', ...). */
  dtype: string;
  pooling: 'cls';
  normalize: true;
}

export interface EmbedProgress {
  done: number;
  total: number;
}

export interface EmbedOptions {
  signal?: AbortSignal;
  onProgress?: (p: EmbedProgress) => void;
}

export interface Embedder {
  readonly info: EmbedderInfo;
  /** Where its files came from; recorded in the index manifest so the index can reopen it. */
  readonly source?: EmbedderSource;
  /** True when every file was read from the cache (Cache API or the Node cache folder), with no request. */
  readonly fromCache?: boolean;
  /** Where it runs ('webgpu', 'wasm', 'cpu'); not part of the identity: all give the same vectors to ~1e-5. */
  readonly device: string;
  /** Row-major [texts.length, dims] unit vectors, in input order. */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array>;
  dispose(): Promise<void>;
}
