/**
 * The bge embedder on transformers.js feature-extraction: CLS pooling, L2-normalised, batched with
 * progress. The same code runs in the retrieval worker (WebGPU, else WASM) and in Node (CPU).
 * Only the question is ever embedded (no system prompt), for the corpus and for the user alike.
 */
import { pipeline, type FeatureExtractionPipeline, type Tensor } from '@huggingface/transformers';
import { AbortError, InvalidInputError, NotFoundError, NetworkError, throwIfAborted } from '../errors.ts';
import type { EmbedOptions, Embedder, EmbedderInfo } from './embedder-types.ts';

export const BGE_SMALL = 'Xenova/bge-small-en-v1.5';
export const BGE_BASE = 'Xenova/bge-base-en-v1.5';

export type EmbedDevice = 'auto' | 'webgpu' | 'wasm' | 'cpu';

export interface EmbedderOptions {
  /** Hub repo id or a folder name under the configured localModelPath; default bge-small. */
  model?: string;
  /** ONNX variant: 'fp32' (default, onnx/model.onnx), 'q8' (model_quantized.onnx), 'fp16'. */
  dtype?: 'fp32' | 'fp16' | 'q8';
  /** 'auto': WebGPU when a hardware adapter exists, else WASM in browsers; CPU in Node. */
  device?: EmbedDevice;
  /** Texts per forward pass; default 16. */
  batchSize?: number;
  /** Model download progress (bytes of the file being fetched). */
  onDownload?: (p: { file: string; loaded: number; total: number }) => void;
}

type Device = Exclude<EmbedDevice, 'auto'>;

async function pickDevice(device: EmbedDevice): Promise<Device> {
  if (device !== 'auto') return device;
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (isNode) return 'cpu';
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  // A fallback adapter is a CPU rasteriser (SwiftShader): measured far slower than WASM for bge.
  const fallback = adapter && ((adapter.info as { isFallbackAdapter?: boolean }).isFallbackAdapter || (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  return adapter && !fallback ? 'webgpu' : 'wasm';
}

/** Turns transformers.js' loading failures into typed errors with the model named. */
function loadError(model: string, e: unknown): Error {
  const msg = (e instanceof Error ? e.message : String(e)).replace(/\.+$/, '');
  if (/failed to fetch|networkerror|fetch failed|ECONNREFUSED|ENOTFOUND|EAI_AGAIN/i.test(msg)) {
    return new NetworkError(`Embedder model "${model}" could not be downloaded (${msg}); check the connection or use local files.`, { cause: e });
  }
  // transformers.js reports a missing local folder as a bare TypeError.
  if (/not found|could not locate|404|ENOENT|local_files_only|allowRemoteModels/i.test(msg) || e instanceof TypeError) {
    return new NotFoundError(`Embedder model "${model}" could not be loaded: ${msg}. Check the model folder, or allow downloads from the hub.`);
  }
  return e instanceof Error ? e : new Error(msg);
}

class TransformersEmbedder implements Embedder {
  constructor(
    readonly info: EmbedderInfo,
    readonly device: Device,
    private readonly pipe: FeatureExtractionPipeline,
    private readonly batchSize: number,
  ) {}

  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array> {
    const dims = this.info.dims;
    const empty = texts.findIndex((t) => typeof t !== 'string' || t.trim() === '');
    if (empty !== -1) throw new InvalidInputError(`Text ${empty} to embed is empty.`);
    const out = new Float32Array(texts.length * dims);
    // Longest first, batched by similar length: less padding per batch. Results go back in input order.
    const order = texts.map((_, i) => i).sort((a, b) => texts[b].length - texts[a].length || a - b);
    for (let start = 0; start < order.length; start += this.batchSize) {
      // A macrotask boundary per batch: inference resolves through microtasks only, so without
      // it a worker would read no message (no cancel) until the whole corpus was embedded.
      if (start > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      throwIfAborted(options.signal);
      const rows = order.slice(start, start + this.batchSize);
      const tensor = (await this.pipe(rows.map((i) => texts[i]), { pooling: 'cls', normalize: true })) as Tensor;
      const data = tensor.data as Float32Array;
      if (data.length !== rows.length * dims) {
        throw new InvalidInputError(`The embedder returned ${data.length} values for ${rows.length} texts of ${dims} dims.`);
      }
      rows.forEach((row, j) => out.set(data.subarray(j * dims, (j + 1) * dims), row * dims));
      tensor.dispose?.();
      options.onProgress?.({ done: Math.min(texts.length, start + rows.length), total: texts.length });
    }
    throwIfAborted(options.signal);
    return out;
  }

  async dispose(): Promise<void> {
    await this.pipe.dispose();
  }
}

/**
 * Loads the embedder (configure transformers.js first, see configureTransformers).
 * @example
 *   configureTransformers({ allowRemoteModels: false, localModelPath: '../shared/models' });
 *   const embedder = await createEmbedder({ model: 'tiny-random-bert' });
 *   const v = await embedder.embed(['What causes gout?']); // Float32Array(dims), unit length
 */
export async function createEmbedder(options: EmbedderOptions = {}, signal?: AbortSignal): Promise<Embedder> {
  const model = options.model ?? BGE_SMALL;
  const dtype = options.dtype ?? 'fp32';
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidInputError(`batchSize must be a positive integer, got ${batchSize}.`);
  throwIfAborted(signal);
  let device = await pickDevice(options.device ?? 'auto');
  const progress_callback = (p: { status: string; file?: string; loaded?: number; total?: number }): void => {
    if (p.status === 'progress' && options.onDownload) options.onDownload({ file: p.file ?? '', loaded: p.loaded ?? 0, total: p.total ?? 0 });
  };
  let pipe: FeatureExtractionPipeline;
  try {
    pipe = await pipeline('feature-extraction', model, { dtype, device, progress_callback });
  } catch (e) {
    if (device !== 'webgpu') throw loadError(model, e);
    // A WebGPU adapter that cannot run the model (limits, driver): WASM still can.
    device = 'wasm';
    try {
      pipe = await pipeline('feature-extraction', model, { dtype, device, progress_callback });
    } catch (e2) {
      throw loadError(model, e2);
    }
  }
  if (signal?.aborted) {
    await pipe.dispose();
    throw new AbortError();
  }
  const dims = (pipe.model.config as unknown as { hidden_size?: number }).hidden_size;
  if (!Number.isInteger(dims) || (dims as number) <= 0) {
    await pipe.dispose();
    throw new InvalidInputError(`Embedder model "${model}" has no hidden_size in its config.json.`);
  }
  const info: EmbedderInfo = { model, dims: dims as number, dtype, pooling: 'cls', normalize: true };
  return new TransformersEmbedder(info, device, pipe, batchSize);
}
