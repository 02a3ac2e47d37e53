/**
 * Main-thread side of the LLM worker: turns the request/event protocol of ./protocol.ts into
 * promises. Each call posts one request with a fresh id and settles when the worker answers that
 * id; rejections are typed EngineErrors. If the worker itself fails (script error, unreadable
 * message) every pending call is rejected and the next call starts a fresh worker, so nothing
 * ever waits forever on a dead worker.
 *
 * Test-time training: attachAdapter, ttt (with per-step progress), lossAndGrads, getAdapter,
 * resetAdapter. Adapter and gradient bytes cross the thread boundary as transferred ArrayBuffers.
 */
import type { LoadProgress } from '../models/api.ts';
import { AbortError, EngineError, deserializeError } from '../models/errors.ts';
import { createLlmWorker } from './create-llm-worker.ts';
import {
  NO_REQUEST,
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
const CANCELLABLE: ReadonlySet<WorkerRequest['type']> = new Set<WorkerRequest['type']>(['load', 'generate', 'ttt', 'loss-and-grads']);
type RequestBody<T extends WorkerRequest['type']> = Omit<Extract<WorkerRequest, { type: T }>, 'id'>;

interface Pending {
  type: WorkerRequest['type'];
  resolve: (result: unknown) => void;
  reject: (error: EngineError) => void;
  onProgress?: ProgressCallback;
  onToken?: TokenCallback;
  onStep?: TttStepCallback;
}

interface Handlers {
  onProgress?: ProgressCallback;
  onToken?: TokenCallback;
  onStep?: TttStepCallback;
  /** ArrayBuffers to transfer with the request (detached on this side). */
  transfer?: Transferable[];
}

export class LlmClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** @param createWorker makes the worker; tests inject their own (a fake, or a counting wrapper). */
  constructor(private readonly createWorker: WorkerFactory = createLlmWorker) {}

  /** Loads a model, replacing (and disposing) any loaded one. */
  load(source: ModelSourceSpec, options: WorkerLoadOptions, onProgress?: ProgressCallback): Promise<ModelInfo> {
    return this.request('load', { type: 'load', source: prepareSource(source), options }, { onProgress });
  }

  /** Generates from a text prompt or from token ids, streaming tokens to `onToken`. */
  generate(req: GenerateRequestBody, onToken?: TokenCallback): Promise<WorkerGenerateResult> {
    return this.request('generate', { type: 'generate', ...req }, { onToken });
  }

  /**
   * Attaches a LoRA adapter (see AttachAdapterBody). `loraInit` is transferred: the caller's
   * ArrayBuffer is detached afterwards (pass `bytes.slice().buffer` to keep a copy).
   * @example
   *   const bytes = await (await fetch('/adapters/point.safetensors')).arrayBuffer();
   *   await client.attachAdapter({ config: { rank: 4, alpha: 8 }, loraInit: bytes, zeroB: true });
   */
  attachAdapter(req: AttachAdapterBody = {}): Promise<AdapterInfo> {
    return this.request('attach-adapter', { type: 'attach-adapter', ...req }, { transfer: req.loraInit ? [req.loraInit] : [] });
  }

  /**
   * Test-time training on the attached adapter; `onStep` after each step. cancel() makes it reject
   * with an `aborted` EngineError between steps (the steps done stay applied until resetAdapter).
   * @example
   *   const r = await client.ttt({ trace, options: { steps: 3 } }, (s) => console.log(s.step, s.loss));
   */
  ttt(req: TttRequestBody, onStep?: TttStepCallback): Promise<TttResult> {
    return this.request('ttt', { type: 'ttt', ...req }, { onStep });
  }

  /** Loss and LoRA gradients (safetensors bytes, '.grad' names) at the current adapter. */
  lossAndGrads(req: LossAndGradsBody): Promise<LossAndGradsResult> {
    return this.request('loss-and-grads', { type: 'loss-and-grads', ...req }, {});
  }

  /** The current adapter as PEFT safetensors bytes (decode with models/lora/adapter.ts loadLora). */
  getAdapter(): Promise<ArrayBuffer> {
    return this.request('get-adapter', { type: 'get-adapter' }, {});
  }

  /** B = 0, A as attached, optimizer cleared: generation is the base model's again. */
  async resetAdapter(): Promise<void> {
    await this.request('reset-adapter', { type: 'reset-adapter' }, {});
  }

  /** A fresh adapter of this shape, reusing (and resetting) an attached one of the same shape. */
  ensureAdapter(config: WorkerTttConfig): Promise<ResultByType['ensure-adapter']> {
    return this.request('ensure-adapter', { type: 'ensure-adapter', config }, {});
  }

  /** Removes the adapter and frees its memory. */
  async detachAdapter(): Promise<void> {
    await this.request('detach-adapter', { type: 'detach-adapter' }, {});
  }

  /** The answer prompt for a question (system prompt fitted to the context; see models/ask/prompt-plan.ts). */
  preparePrompt(question: string, request: PromptRequest): Promise<PreparedPrompt> {
    return this.request('prepare-prompt', { type: 'prepare-prompt', question, request }, {});
  }

  /** Aborts every load, generation and TTT run in flight; each then settles as the engine reports
   *  the abort (an `aborted` EngineError, or a generate result with stopReason 'aborted'). */
  cancel(): void {
    for (const [targetId, p] of this.pending) {
      if (!CANCELLABLE.has(p.type)) continue;
      // The acknowledgement carries nothing the caller needs.
      this.request('cancel', { type: 'cancel', targetId }, {}).catch(() => undefined);
    }
  }

  /** Disposes the loaded model (frees its GPU memory); the worker stays up. */
  async unload(): Promise<void> {
    await this.request('unload', { type: 'unload' }, {});
  }

  /** The loaded model, or null. */
  info(): Promise<ModelInfo | null> {
    return this.request('info', { type: 'info' }, {});
  }

  /**
   * The entries of the worker's OPFS weight cache (empty where the browser has no OPFS).
   * @example for (const e of await client.listCachedModels()) console.log(e.repo ?? e.source, e.bytes, e.complete);
   */
  listCachedModels(): Promise<CachedModelInfo[]> {
    return this.request('list-cached-models', { type: 'list-cached-models' }, {});
  }

  /**
   * Deletes one cache entry and frees its storage; the loaded model (already on the GPU) stays usable.
   * @example const { freedBytes } = await client.deleteCachedModel(info.cacheKey!);
   */
  deleteCachedModel(key: string): Promise<{ deleted: boolean; freedBytes: number }> {
    return this.request('delete-cached-model', { type: 'delete-cached-model', key }, {});
  }

  /** True while a load, a generation or a TTT run is in flight. */
  get busy(): boolean {
    for (const p of this.pending.values()) if (CANCELLABLE.has(p.type)) return true;
    return false;
  }

  /** Kills the worker (and the model in it); pending calls reject with an `aborted` error. */
  terminate(): void {
    this.fail(new AbortError('The model worker was stopped.'));
  }

  private request<T extends RequestType | 'cancel'>(
    _type: T,
    body: RequestBody<T>,
    handlers: Handlers,
  ): Promise<T extends RequestType ? ResultByType[T] : ResultByType['cancel']> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    const { transfer = [], ...callbacks } = handlers;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { type: body.type, resolve: resolve as (r: unknown) => void, reject, ...callbacks });
      try {
        worker.postMessage({ ...body, id } as WorkerRequest, transfer);
      } catch (e) {
        // DataCloneError and the like: the request never left this thread.
        this.pending.delete(id);
        reject(new EngineError('invalid-input', `Could not send the ${body.type} request to the model worker: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = this.createWorker();
    worker.addEventListener('message', (ev: MessageEvent<WorkerEvent>) => this.onEvent(ev.data));
    worker.addEventListener('error', (ev: Event) => {
      // Duck-typed: ErrorEvent is not a global in Node, where tests run this with fake workers.
      const message = (ev as { message?: unknown }).message;
      const detail = typeof message === 'string' && message ? message : 'it failed to start or crashed (see the browser console)';
      this.fail(new EngineError('internal', `The model worker stopped working: ${detail}.`));
    });
    worker.addEventListener('messageerror', () => {
      this.fail(new EngineError('internal', 'A message from the model worker could not be read.'));
    });
    this.worker = worker;
    return worker;
  }

  private onEvent(event: WorkerEvent): void {
    if (event.type === 'error' && event.id === NO_REQUEST) {
      // Not tied to a request: the worker's state is unknown, so nobody should keep waiting.
      this.rejectAll(deserializeError(event.error));
      return;
    }
    const p = this.pending.get(event.id);
    if (!p) return; // a late event for a call that already settled
    switch (event.type) {
      case 'progress':
        p.onProgress?.(event.progress);
        break;
      case 'token':
        p.onToken?.({ tokenId: event.tokenId, text: event.text, textSoFar: event.textSoFar });
        break;
      case 'ttt-step':
        p.onStep?.({ step: event.step, steps: event.steps, loss: event.loss, ms: event.ms });
        break;
      case 'result':
        this.pending.delete(event.id);
        p.resolve(event.result);
        break;
      case 'error':
        this.pending.delete(event.id);
        p.reject(deserializeError(event.error));
        break;
    }
  }

  /** Terminates the worker and rejects everything pending; the next call starts a new worker. */
  private fail(error: EngineError): void {
    this.worker?.terminate();
    this.worker = null;
    this.rejectAll(error);
  }

  private rejectAll(error: EngineError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(error);
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
