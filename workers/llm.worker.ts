/**
 * The LLM worker: hosts at most one LlamaModel and serves the requests of workers/protocol.ts.
 * Requests run one at a time in arrival order (a load must not race a generate on the same GPU
 * device); `cancel` is handled immediately and aborts its target through an AbortController,
 * whether the target is running or still queued. Every request ends with one `result` or one
 * typed `error` event: nothing is left to hang or to surface as an unhandled rejection.
 */
import { LlamaModel } from '../models/llama-model.ts';
import { UrlModelSource } from '../models/io/url-source.ts';
import { BlobModelSource } from '../models/io/blob-source.ts';
import type { ModelSource } from '../models/io/source.ts';
import type { LoadProgress } from '../models/api.ts';
import { AbortError, EngineError, GpuUnavailableError, InvalidInputError, TokenizerError, serializeError, throwIfAborted } from '../models/errors.ts';
import {
  NO_REQUEST,
  type GenerateRequest,
  type LoadRequest,
  type ModelInfo,
  type ModelSourceSpec,
  type ResultByType,
  type WorkerEvent,
  type WorkerGenerateResult,
  type WorkerRequest,
} from './protocol.ts';

// tsconfig carries both DOM and WebWorker libs; `self` is typed as Window, so narrow it once.
const scope = self as unknown as DedicatedWorkerGlobalScope;

let model: LlamaModel | null = null;
let info: Omit<ModelInfo, 'memory'> | null = null;
const controllers = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();

/** Progress events are throttled so a 16 GB download does not flood the main thread. */
const PROGRESS_INTERVAL_MS = 50;

function post(event: WorkerEvent): void {
  scope.postMessage(event);
}

scope.addEventListener('message', (ev: MessageEvent<unknown>) => {
  const req = ev.data as WorkerRequest;
  if (typeof req !== 'object' || req === null || typeof req.id !== 'number' || typeof req.type !== 'string') {
    post({ type: 'error', id: NO_REQUEST, error: serializeError(new InvalidInputError(`Malformed request: ${safeJson(ev.data)}`)) });
    return;
  }
  if (req.type === 'cancel') {
    const target = controllers.get(req.targetId);
    target?.abort();
    post({ type: 'result', id: req.id, result: { cancelled: target !== undefined } });
    return;
  }
  const controller = new AbortController();
  controllers.set(req.id, controller);
  // The chain itself never rejects: each step reports its own outcome.
  queue = queue.then(async () => {
    try {
      const result = await serve(req, controller.signal);
      post({ type: 'result', id: req.id, result });
    } catch (e) {
      post({ type: 'error', id: req.id, error: serializeError(e) });
    } finally {
      controllers.delete(req.id);
    }
  });
});

scope.addEventListener('messageerror', () => {
  post({ type: 'error', id: NO_REQUEST, error: serializeError(new EngineError('internal', 'The model worker received a message it could not read.')) });
});

// Last line of defence: anything that escapes is still reported, never silently lost.
scope.addEventListener('unhandledrejection', (ev: PromiseRejectionEvent) => {
  ev.preventDefault();
  post({ type: 'error', id: NO_REQUEST, error: serializeError(ev.reason) });
});

async function serve(req: Exclude<WorkerRequest, { type: 'cancel' }>, signal: AbortSignal): Promise<ResultByType[keyof ResultByType]> {
  throwIfAborted(signal); // cancelled while queued
  switch (req.type) {
    case 'load':
      return load(req, signal);
    case 'generate':
      return generate(req, signal);
    case 'unload':
      disposeModel();
      return null;
    case 'info':
      return describe();
    default:
      throw new InvalidInputError(`Unknown request type ${JSON.stringify((req as { type: unknown }).type)}.`);
  }
}

async function load(req: LoadRequest, signal: AbortSignal): Promise<ModelInfo> {
  // Free the old model's GPU memory before the new one allocates: two 8B models never fit.
  disposeModel();
  const source = openSource(req.source);
  const gpu = req.options.backend === 'webgpu' ? requireGpu() : undefined;
  const started = performance.now();
  let lastPost = 0;
  const onProgress = (progress: LoadProgress): void => {
    const now = performance.now();
    const phaseEnd = progress.phase !== 'weights' || progress.loadedBytes >= progress.totalBytes;
    if (!phaseEnd && now - lastPost < PROGRESS_INTERVAL_MS) return;
    lastPost = now;
    post({ type: 'progress', id: req.id, progress });
  };
  const loaded = await LlamaModel.load(source, { ...req.options, gpu, signal, onProgress });
  if (signal.aborted) {
    // The engine finished despite the cancel: honour the cancel anyway.
    loaded.dispose();
    throw new AbortError();
  }
  const hasChatTemplate = await readHasChatTemplate(source, signal);
  model = loaded;
  info = {
    source: source.description,
    config: loaded.config,
    backend: loaded.backend,
    weights: loaded.weights,
    precision: loaded.precision,
    hasTokenizer: loaded.tokenizer !== null,
    hasChatTemplate,
    loadMs: performance.now() - started,
  };
  return { ...info, memory: loaded.memory() };
}

async function generate(req: GenerateRequest, signal: AbortSignal): Promise<WorkerGenerateResult> {
  const m = requireModel();
  const { includeLogits, ...options } = req.options;
  let ids: number[];
  if ('ids' in req) {
    ids = req.ids;
  } else {
    if (!m.tokenizer) throw new TokenizerError('This model has no tokenizer.json, so it cannot take a text prompt; send token ids instead.');
    ids = m.encodePrompt(req.prompt, { chat: req.chat, system: req.system });
  }
  let previous = '';
  const result = await m.generate(ids, {
    ...options,
    signal,
    onToken: (tokenId: number, textSoFar: string) => {
      const text = textSoFar.startsWith(previous) ? textSoFar.slice(previous.length) : textSoFar.slice(commonPrefix(previous, textSoFar));
      previous = textSoFar;
      post({ type: 'token', id: req.id, tokenId, text, textSoFar });
    },
  });
  const { lastLogits, ...rest } = result;
  return { ...rest, promptTokens: ids.length, ...(includeLogits ? { lastLogits: Array.from(lastLogits) } : {}) };
}

function openSource(spec: ModelSourceSpec): ModelSource {
  if (spec.kind === 'url') {
    // Relative URLs ("/shared/...") resolve against the page origin; a folder URL needs its slash.
    const url = new URL(spec.url, scope.location.href).href;
    return new UrlModelSource(url.endsWith('/') ? url : url + '/');
  }
  if (spec.kind === 'files') {
    if (!Array.isArray(spec.files) || spec.files.length === 0) throw new InvalidInputError('No model files were chosen.');
    if (spec.paths && spec.paths.length !== spec.files.length) throw new InvalidInputError('Model files and their paths do not match up.');
    const folder = spec.paths ? new Map(spec.paths.map((p, i) => [p, spec.files[i] as Blob])) : spec.files;
    return new BlobModelSource(folder, spec.description);
  }
  throw new InvalidInputError(`Unknown model source kind ${JSON.stringify((spec as { kind: unknown }).kind)}.`);
}

function requireGpu(): GPU {
  const gpu = (scope.navigator as WorkerNavigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    throw new GpuUnavailableError('WebGPU is not available in this browser (navigator.gpu is missing in the worker). Use a recent Chrome or Edge, or choose the CPU backend.');
  }
  return gpu;
}

function requireModel(): LlamaModel {
  if (!model) throw new InvalidInputError('No model is loaded; load one first.');
  return model;
}

function describe(): ModelInfo | null {
  return model && info ? { ...info, memory: model.memory() } : null;
}

function disposeModel(): void {
  const old = model;
  model = null;
  info = null;
  old?.dispose();
}

/** The chat checkbox follows the model; a missing or odd tokenizer_config.json just means "no". */
async function readHasChatTemplate(source: ModelSource, signal: AbortSignal): Promise<boolean> {
  try {
    if (!(await source.exists('tokenizer_config.json', signal))) return false;
    const cfg = JSON.parse(await source.readText('tokenizer_config.json', signal)) as { chat_template?: unknown };
    return typeof cfg.chat_template === 'string' || Array.isArray(cfg.chat_template);
  } catch {
    return false;
  }
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 200) ?? String(v);
  } catch {
    return String(v);
  }
}
