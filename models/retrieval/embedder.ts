/**
 * The bge embedder on transformers.js feature-extraction: CLS pooling, L2-normalised, batched with
 * progress. The same code runs in the retrieval worker (WebGPU, else WASM) and in Node (CPU).
 * Only the question is ever embedded (no system prompt), for the corpus and for the user alike.
 */
import { env, ModelRegistry, pipeline, type FeatureExtractionPipeline, type Tensor } from '@huggingface/transformers';
import { AbortError, InvalidInputError, NotFoundError, NetworkError, throwIfAborted } from '../errors.ts';
import { DEFAULT_EMBEDDER } from './catalog.ts';
import type { EmbedderSource } from './embedder-source.ts';
import type { EmbedOptions, Embedder, EmbedderInfo } from './embedder-types.ts';

export { BGE_BASE, BGE_LARGE, BGE_SMALL } from './catalog.ts';

export type EmbedDevice = 'auto' | 'webgpu' | 'wasm' | 'cpu';

export interface EmbedderOptions {
  /** Hub repo id or a folder name under the configured localModelPath; default bge-base-en-v1.5. */
  model?: string;
  /** Hub revision (branch, tag or commit); default 'main'. */
  revision?: string;
  /** Recorded on the embedder (and so in the index manifests it builds). */
  source?: EmbedderSource;
  /**
   * Default true: when every file of the model is in the cache, load with downloads switched off,
   * so a cached model loads with no request at all (offline, or with the hub down); if that load
   * fails, load again as configured.
   */
  cacheFirst?: boolean;
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
  // No Node types here (models/ is browser-side); read `process` off globalThis.
  const isNode = typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === 'string';
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
    readonly source: EmbedderSource | undefined,
    readonly fromCache: boolean,
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
  const model = options.model ?? DEFAULT_EMBEDDER;
  const dtype = options.dtype ?? 'fp32';
  const revision = options.revision ?? 'main';
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidInputError(`batchSize must be a positive integer, got ${batchSize}.`);
  throwIfAborted(signal);
  let device = await pickDevice(options.device ?? 'auto');
  const progress_callback = (p: { status: string; file?: string; loaded?: number; total?: number }): void => {
    if (p.status === 'progress' && options.onDownload) options.onDownload({ file: p.file ?? '', loaded: p.loaded ?? 0, total: p.total ?? 0 });
  };
  const load = (d: Device): Promise<FeatureExtractionPipeline> =>
    pipeline('feature-extraction', model, { dtype, device: d, revision, progress_callback }) as Promise<FeatureExtractionPipeline>;
  const loadOnDevice = async (): Promise<FeatureExtractionPipeline> => {
    try {
      return await load(device);
    } catch (e) {
      if (device !== 'webgpu') throw e;
      // A WebGPU adapter that cannot run the model (limits, driver): WASM still can.
      device = 'wasm';
      return load(device);
    }
  };
  let pipe: FeatureExtractionPipeline | null = null;
  let fromCache = false;
  if ((options.cacheFirst ?? true) && env.allowRemoteModels && (await isCached(model, dtype, device, revision))) {
    // transformers.js refuses to load with both sources off, though the cache is read first:
    // local files stay on (a cache hit never reaches them).
    const allowLocal = env.allowLocalModels;
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    try {
      pipe = await loadOnDevice();
      fromCache = true;
    } catch {
      pipe = null; // an entry the check missed: load again as configured, below
    } finally {
      env.allowRemoteModels = true;
      env.allowLocalModels = allowLocal;
    }
  }
  if (!pipe) {
    try {
      pipe = await loadOnDevice();
    } catch (e) {
      throw loadError(model, e);
    }
    // Downloads off (a reopened index's embedder): say whether it was the cache that served.
    if (!env.allowRemoteModels) fromCache = await isCached(model, dtype, device, revision);
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
  return new TransformersEmbedder(info, device, pipe, batchSize, options.source, fromCache);
}

/** Every file the feature-extraction pipeline would read is in transformers.js' cache (no request when config.json is not). */
async function isCached(model: string, dtype: string, device: Device, revision: string): Promise<boolean> {
  try {
    return await ModelRegistry.is_pipeline_cached('feature-extraction', model, { dtype, device, revision } as never);
  } catch {
    return false;
  }
}
