/**
 * Main-thread side of the LLM worker: turns the request/event protocol of ./protocol.ts into
 * promises. Each call posts one request with a fresh id and settles when the worker answers that
 * id; rejections are typed EngineErrors of their own class. If the worker itself fails (script
 * error, unreadable message) every pending call is rejected and the next call starts a fresh
 * worker, so nothing ever waits forever on a dead worker (./worker-client.ts, shared with
 * RetrievalClient).
 *
 * Test-time training: attachAdapter, ttt (with per-step progress), lossAndGrads, getAdapter,
 * resetAdapter. Adapter and gradient bytes cross the thread boundary as transferred ArrayBuffers.
 */
import type { LoadProgress } from '../models/api.ts';
import { createLlmWorker } from './create-llm-worker.ts';
import { WorkerClient, type RequestBody } from './worker-client.ts';
import {
  type AdapterInfo,
  type AttachAdapterBody,
  type CachedModelInfo,
  type GenerateRequestBody,
  type LossAndGradsBody,
  type LossAndGradsResult,
  type ModelInfo,
  type ModelSourceSpec,
  type ResultByType,
  type TokenMessage,
  type TttRequestBody,
  type TttResult,
  type TttStepMessage,
  type WorkerEvent,
  type WorkerGenerateResult,
  type WorkerLoadOptions,
  type WorkerRequest,
  type WorkerTttConfig,
  type PreparedPrompt,
  type PromptRequest,
} from './protocol.ts';

export type WorkerFactory = () => Worker;
export type TokenCallback = (token: Omit<TokenMessage, 'type' | 'id'>) => void;
export type ProgressCallback = (progress: LoadProgress) => void;
export type TttStepCallback = (step: Omit<TttStepMessage, 'type' | 'id'>) => void;

type RequestType = Exclude<WorkerRequest['type'], 'cancel'>;
/** Requests that cancel() aborts: the long ones (loss-and-grads only while still queued). */
const CANCELLABLE: ReadonlySet<string> = new Set<WorkerRequest['type']>(['load', 'generate', 'ttt', 'loss-and-grads']);
type RequestFields<T extends RequestType> = Omit<Extract<WorkerRequest, { type: T }>, 'id' | 'type'>;

interface Handlers {
  onProgress?: ProgressCallback;
  onToken?: TokenCallback;
  onStep?: TttStepCallback;
  /** ArrayBuffers to transfer with the request (detached on this side). */
  transfer?: Transferable[];
}

export class LlmClient extends WorkerClient<WorkerRequest, WorkerEvent> {
  /** @param createWorker makes the worker; tests inject their own (a fake, or a counting wrapper). */
  constructor(createWorker: WorkerFactory = createLlmWorker) {
    super(createWorker, 'model worker');
  }

  /** Loads a model, replacing (and disposing) any loaded one. */
  load(source: ModelSourceSpec, options: WorkerLoadOptions, onProgress?: ProgressCallback): Promise<ModelInfo> {
    return this.request('load', { source: prepareSource(source), options }, { onProgress });
  }

  /** Generates from a text prompt or from token ids, streaming tokens to `onToken`. */
  generate(req: GenerateRequestBody, onToken?: TokenCallback): Promise<WorkerGenerateResult> {
    return this.request('generate', req, { onToken });
  }

  /**
   * Attaches a LoRA adapter (see AttachAdapterBody). `loraInit` is transferred: the caller's
   * ArrayBuffer is detached afterwards (pass `bytes.slice().buffer` to keep a copy).
   * @example
   *   const bytes = await (await fetch('/adapters/point.safetensors')).arrayBuffer();
   *   await client.attachAdapter({ config: { rank: 4, alpha: 8 }, loraInit: bytes, zeroB: true });
   */
  attachAdapter(req: AttachAdapterBody = {}): Promise<AdapterInfo> {
    return this.request('attach-adapter', req, { transfer: req.loraInit ? [req.loraInit] : [] });
  }

  /**
   * Test-time training on the attached adapter; `onStep` after each step. cancel() makes it reject
   * with an `aborted` EngineError between steps (the steps done stay applied until resetAdapter).
   * @example
   *   const r = await client.ttt({ trace, options: { steps: 3 } }, (s) => console.log(s.step, s.loss));
   */
  ttt(req: TttRequestBody, onStep?: TttStepCallback): Promise<TttResult> {
    return this.request('ttt', req, { onStep });
  }

  /** Loss and LoRA gradients (safetensors bytes, '.grad' names) at the current adapter. */
  lossAndGrads(req: LossAndGradsBody): Promise<LossAndGradsResult> {
    return this.request('loss-and-grads', req, {});
  }

  /** The current adapter as PEFT safetensors bytes (decode with models/lora/adapter.ts loadLora). */
  getAdapter(): Promise<ArrayBuffer> {
    return this.request('get-adapter', {}, {});
  }

  /** B = 0, A as attached, optimizer cleared: generation is the base model's again. */
  async resetAdapter(): Promise<void> {
    await this.request('reset-adapter', {}, {});
  }

  /** A fresh adapter of this shape, reusing (and resetting) an attached one of the same shape. */
  ensureAdapter(config: WorkerTttConfig): Promise<ResultByType['ensure-adapter']> {
    return this.request('ensure-adapter', { config }, {});
  }

  /** Removes the adapter and frees its memory. */
  async detachAdapter(): Promise<void> {
    await this.request('detach-adapter', {}, {});
  }

  /** The answer prompt for a question (system prompt fitted to the context; see models/ask/prompt-plan.ts). */
  preparePrompt(question: string, request: PromptRequest): Promise<PreparedPrompt> {
    return this.request('prepare-prompt', { question, request }, {});
  }

  /** Aborts every load, generation and TTT run in flight; each then settles as the engine reports
   *  the abort (an `aborted` EngineError, or a generate result with stopReason 'aborted'). */
  cancel(): void {
    for (const [id, type] of this.pendingRequests()) if (CANCELLABLE.has(type)) this.cancelRequest(id);
  }

  /** Disposes the loaded model (frees its GPU memory); the worker stays up. */
  async unload(): Promise<void> {
    await this.request('unload', {}, {});
  }

  /** The loaded model, or null. */
  info(): Promise<ModelInfo | null> {
    return this.request('info', {}, {});
  }

  /**
   * The entries of the worker's OPFS weight cache (empty where the browser has no OPFS).
   * @example for (const e of await client.listCachedModels()) console.log(e.repo ?? e.source, e.bytes, e.complete);
   */
  listCachedModels(): Promise<CachedModelInfo[]> {
    return this.request('list-cached-models', {}, {});
  }

  /**
   * Deletes one cache entry and frees its storage; the loaded model (already on the GPU) stays usable.
   * @example const { freedBytes } = await client.deleteCachedModel(info.cacheKey!);
   */
  deleteCachedModel(key: string): Promise<{ deleted: boolean; freedBytes: number }> {
    return this.request('delete-cached-model', { key }, {});
  }

  /**
   * Test only: destroys the loaded model's GPU device in the worker, as a driver reset would;
   * answered at once, even mid-generation (the pending call then rejects with DeviceLostError).
   * The app never calls it; the worker refuses it outside development builds.
   * @example await client.debugLoseDevice(); // then: load again
   */
  debugLoseDevice(): Promise<{ lost: boolean }> {
    return this.request('debug-lose-device', {}, {});
  }

  /** True while a load, a generation or a TTT run is in flight. */
  get busy(): boolean {
    for (const [, type] of this.pendingRequests()) if (CANCELLABLE.has(type)) return true;
    return false;
  }

  private request<T extends RequestType>(type: T, fields: RequestFields<T>, handlers: Handlers): Promise<ResultByType[T]> {
    const { transfer = [], onProgress, onToken, onStep } = handlers;
    const onEvent = (event: WorkerEvent): void => {
      if (event.type === 'progress') onProgress?.(event.progress);
      else if (event.type === 'token') onToken?.({ tokenId: event.tokenId, text: event.text });
      else if (event.type === 'ttt-step') onStep?.({ step: event.step, steps: event.steps, loss: event.loss, ms: event.ms });
    };
    return this.send<ResultByType[T]>({ ...fields, type } as RequestBody<WorkerRequest>, onEvent, transfer).promise;
  }
}

/** Makes a source spec mean the same on the worker side of postMessage. */
function prepareSource(source: ModelSourceSpec): ModelSourceSpec {
  if (source.kind === 'url') {
    // Resolve relative URLs against the page, not against the worker script's URL.
    return typeof location !== 'undefined' ? { kind: 'url', url: new URL(source.url, location.href).href } : source;
  }
  if (source.paths) return source;
  // A folder pick names files "<picked folder>/<path>" in webkitRelativePath, which the spec's File
  // serialisation does not cover (Chromium keeps it today); send the paths explicitly instead.
  const relative = source.files.map((f) => f.webkitRelativePath || '');
  if (relative.some((r) => !r.includes('/'))) return source;
  const folder = relative[0]!.slice(0, relative[0]!.indexOf('/'));
  return { ...source, paths: relative.map((r) => r.slice(r.indexOf('/') + 1)), description: source.description ?? folder };
}
