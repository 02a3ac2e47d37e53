/**
 * The LLM worker: hosts at most one LlamaModel and serves the requests of workers/protocol.ts.
 * Requests run one at a time in arrival order (a load must not race a generate on the same GPU
 * device); `cancel` is handled immediately and aborts its target through an AbortController,
 * whether the target is running or still queued. Every request ends with one `result` or one
 * typed `error` event: nothing is left to hang or to surface as an unhandled rejection (the
 * queue, cancel and error plumbing is ./worker-host.ts, shared with the retrieval worker).
 *
 * Test-time training: `attach-adapter` puts a LoRA adapter on the loaded model, `ttt` trains it
 * (a `ttt-step` event per step; `cancel` aborts between steps, the model stays usable and keeps
 * the steps already applied until `reset-adapter`), `loss-and-grads` and `get-adapter` read it out
 * as safetensors bytes, which are transferred to the main thread rather than copied.
 */
import { LlamaModel } from '../models/llama-model.ts';
import { deleteCachedModel, listCachedModels, loadCacheOptions, verifyBeforeReplacing } from './llm-cache.ts';
import { UrlModelSource, type RetryEvent } from '../models/io/url-source.ts';
import { BlobModelSource } from '../models/io/blob-source.ts';
import type { ModelSource } from '../models/io/source.ts';
import type { LoadProgress } from '../models/api.ts';
import { PROJECTIONS, type Projection } from '../models/config.ts';
import { AbortError, GpuUnavailableError, InvalidInputError, TokenizerError, WeightsMismatchError, throwIfAborted } from '../models/errors.ts';
import { inspectLora, isBZero, loadLora, loraPairs, projectionShape, saveLora, zeroB, type LoraWeights } from '../models/lora/adapter.ts';
import { resolveTttConfig, TTT_DEFAULTS, type TttConfig } from '../models/ttt/config.ts';
import { safeJson, serveRequests, type Emit } from './worker-host.ts';
import {
  type AdapterInfo,
  type AttachAdapterRequest,
  type GenerateRequest,
  type LossAndGradsRequest,
  type LossAndGradsResult,
  type TrainingInput,
  type TrainingSequenceInfo,
  type TttOptions,
  type TttRequest,
  type TttResult,
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

/** Progress events are throttled so a 16 GB download does not flood the main thread. */
const PROGRESS_INTERVAL_MS = 50;

type Served = Exclude<WorkerRequest, { type: 'cancel' }>;
type EmitEvent = Emit<WorkerEvent>;

serveRequests<WorkerRequest, WorkerEvent>({
  label: 'model worker', handle: serve, transfer: transferables,
  // Device loss must be provokable mid-generation, so this test request skips the queue.
  immediate: (req) => req.type === 'debug-lose-device',
});

async function serve(req: Served, signal: AbortSignal, emit: EmitEvent): Promise<ResultByType[keyof ResultByType]> {
  switch (req.type) {
    case 'load':
      return load(req, signal, emit);
    case 'generate':
      return generate(req, signal, emit);
    case 'unload':
      disposeModel();
      return null;
    case 'list-cached-models':
      return listCachedModels();
    case 'delete-cached-model':
      return deleteCachedModel(req.key);
    case 'info':
      return describe();
    case 'attach-adapter':
      return attachAdapter(req);
    case 'ttt':
      return ttt(req, signal, emit);
    case 'loss-and-grads':
      return lossAndGrads(req);
    case 'get-adapter':
      return toArrayBuffer(saveLora(await requireModel().adapter()));
    case 'reset-adapter':
      requireModel().resetAdapter();
      return null;
    case 'ensure-adapter':
      return ensureAdapter(req.config);
    case 'detach-adapter':
      await requireModel().detachAdapter();
      return null;
    case 'prepare-prompt':
      return requireModel().answerPrompt(req.question, req.request);
    case 'debug-lose-device':
      return debugLoseDevice();
    default:
      throw new InvalidInputError(`Unknown request type ${JSON.stringify((req as { type: unknown }).type)}.`);
  }
}

async function load(req: LoadRequest, signal: AbortSignal, emit: EmitEvent): Promise<ModelInfo> {
  let last: LoadProgress = { phase: 'config', loadedBytes: 0, totalBytes: 0 };
  // A dropped connection or a 5xx is retried inside the source: say so, where the load stands.
  const source = openSource(req.source, (r) => emit({ type: 'progress', progress: { ...last, retry: { attempt: r.attempt, tries: r.tries, delayMs: r.delayMs, reason: r.reason } } }));
  const { cache: cacheMode, ...options } = req.options;
  const cache = await loadCacheOptions(cacheMode);
  // A corrupt cached copy must fail while the loaded model still works: check it before disposing.
  if (model) await verifyBeforeReplacing(source, options.weights ?? 'q4', cache, signal);
  // Free the old model's GPU memory before the new one allocates: two 8B models never fit.
  disposeModel();
  const gpu = req.options.backend === 'webgpu' ? requireGpu() : undefined;
  const started = performance.now();
  let lastPost = 0;
  const onProgress = (progress: LoadProgress): void => {
    const now = performance.now();
    const phaseEnd = progress.phase !== 'weights' || progress.loadedBytes >= progress.totalBytes;
    last = progress;
    if (!phaseEnd && now - lastPost < PROGRESS_INTERVAL_MS) return;
    lastPost = now;
    emit({ type: 'progress', progress });
  };
  const loaded = await LlamaModel.load(source, { ...options, gpu, signal, onProgress, cache });
  if (signal.aborted) {
    // The engine finished despite the cancel: honour the cancel anyway.
    loaded.dispose();
    throw new AbortError();
  }
  // From the tokenizer, not the source: a cached load makes no request to the source at all.
  const hasChatTemplate = loaded.tokenizer?.hasChatTemplate ?? false;
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
    loadedFrom: loaded.loadedFrom,
    cacheKey: loaded.cacheEntry?.key ?? null,
  };
  // The prefill's kernels compile in the background while the user types the first question
  // (a failure there shows up, typed, where a request needs them).
  void loaded.warmUp().catch(() => {});
  return { ...info, memory: loaded.memory() };
}

async function generate(req: GenerateRequest, signal: AbortSignal, emit: EmitEvent): Promise<WorkerGenerateResult> {
  const m = requireModel();
  const { includeLogits, ...options } = req.options;
  let ids: number[];
  if ('ids' in req) {
    ids = req.ids;
  } else {
    if (!m.tokenizer) throw new TokenizerError('This model has no tokenizer.json, so it cannot take a text prompt; send token ids instead.');
    ids = m.encodePrompt(req.prompt, { chat: req.chat, system: req.system });
  }
  // Each event carries only the token's new text (never the text so far: that would copy O(n^2)
  // characters across postMessage over a long answer); the result carries the full text.
  const result = await m.generate(ids, { ...options, signal, onToken: (tokenId: number, text: string) => emit({ type: 'token', tokenId, text }) });
  const { lastLogits, ...rest } = result;
  return { ...rest, promptTokens: ids.length, ...(includeLogits ? { lastLogits: Array.from(lastLogits) } : {}) };
}

async function attachAdapter(req: AttachAdapterRequest): Promise<AdapterInfo> {
  const m = requireModel();
  const config = req.config ?? {};
  if (typeof config !== 'object' || config === null) throw new InvalidInputError('attach-adapter: config must be an object.');
  let lora: LoraWeights | undefined;
  let cfg: TttConfig;
  if (req.loraInit !== undefined) {
    if (!(req.loraInit instanceof ArrayBuffer)) throw new InvalidInputError('attach-adapter: loraInit must be an ArrayBuffer of safetensors bytes.');
    const bytes = new Uint8Array(req.loraInit);
    const name = 'loraInit (adapter.safetensors)';
    const file = inspectLora(bytes, name);
    if (file.rank === null) throw new WeightsMismatchError(`${name}: no LoRA tensors (<weight name>.lora_A) in the file.`);
    const rank = config.rank ?? file.rank;
    const fileAlpha = Number(file.metadata.alpha);
    const alpha = config.alpha ?? (fileAlpha > 0 ? fileAlpha : (rank * TTT_DEFAULTS.alpha) / TTT_DEFAULTS.rank);
    cfg = resolveTttConfig({ ...config, rank, alpha, targets: config.targets ?? file.targets });
    lora = loadLora(bytes, m.config, { rank: cfg.rank, alpha: cfg.alpha, targets: cfg.targets }, { name, allowMissingB: true });
    if (req.zeroB) zeroB(lora);
  } else {
    cfg = resolveTttConfig(config);
  }
  const { preset, ...rest } = config;
  await m.attachAdapter({ ...rest, ...(preset ? { preset } : {}), rank: cfg.rank, alpha: cfg.alpha, targets: cfg.targets, ...(lora ? { lora } : {}) });
  return {
    config: { ...cfg, targets: PROJECTIONS.filter((p) => cfg.targets.includes(p)), maxTokens: Math.min(cfg.maxTokens, m.engine.maxContext) },
    parameters: countParameters(m.config, cfg.rank, cfg.targets),
    fromFile: lora !== undefined,
    bZero: !lora || [...loraPairs(lora)].every(({ pair }) => isBZero(pair)),
  };
}

async function ensureAdapter(config: unknown): Promise<{ reused: boolean; adapter: AdapterInfo }> {
  if (typeof config !== 'object' || config === null) throw new InvalidInputError('ensure-adapter: config must be an object.');
  const m = requireModel();
  const reused = await m.ensureAdapter(config as Partial<TttConfig>);
  const cfg = m.adapterConfig!;
  return {
    reused,
    adapter: { config: cfg, parameters: countParameters(m.config, cfg.rank, cfg.targets), fromFile: false, bZero: true },
  };
}

function countParameters(config: LlamaModel['config'], rank: number, targets: readonly Projection[]): number {
  let perLayer = 0;
  for (const p of new Set(targets)) {
    const { inDim, outDim } = projectionShape(config, p);
    perLayer += rank * (inDim + outDim);
  }
  return perLayer * config.numLayers;
}

/** The ids and mask of a request, checked for shape here (the engine checks vocabulary, length, mask). */
function trainingInput(m: LlamaModel, input: TrainingInput): { ids: number[]; mask: number[]; sequence: TrainingSequenceInfo } {
  if ('trace' in input) {
    const t = input.trace as Partial<Record<keyof typeof input.trace, unknown>> | null;
    if (typeof t !== 'object' || t === null || typeof t.question !== 'string' || typeof t.reasoning !== 'string' || typeof t.answer !== 'string') {
      throw new InvalidInputError('trace must be { question, reasoning, answer } strings.');
    }
    if (!m.tokenizer) throw new TokenizerError('This model has no tokenizer.json, so it cannot train on a text trace; send ids and mask instead.');
    const seq = m.trainingSequence(input.trace, { format: input.format });
    return { ids: seq.ids, mask: seq.lossMask, sequence: { tokens: seq.ids.length, promptTokens: seq.promptTokens, truncated: seq.truncated } };
  }
  const { ids, mask } = input as { ids: unknown; mask: unknown };
  if (!isNumberArray(ids) || !isNumberArray(mask)) throw new InvalidInputError('Training input needs ids and mask as arrays of numbers, or a trace.');
  let promptTokens = 0;
  while (promptTokens < mask.length && mask[promptTokens] === 0) promptTokens++;
  return { ids, mask, sequence: { tokens: ids.length, promptTokens, truncated: false } };
}

function isNumberArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number');
}

/** Only the optimizer fields; anything else in `options` (rank, targets...) is refused, not ignored. */
const TTT_OPTION_KEYS = ['steps', 'lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'maxGradNorm'] as const satisfies readonly (keyof TttOptions)[];

function tttOptions(options: unknown): TttOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new InvalidInputError('ttt options must be an object.');
  const out: TttOptions = {};
  for (const [k, v] of Object.entries(options)) {
    if (!(TTT_OPTION_KEYS as readonly string[]).includes(k)) {
      throw new InvalidInputError(`Unknown ttt option "${k}"; expected some of ${TTT_OPTION_KEYS.join(', ')} (adapter shape is set by attach-adapter).`);
    }
    if (v === undefined) continue;
    if (k === 'maxGradNorm' && v === null) out.maxGradNorm = null;
    else if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidInputError(`ttt option ${k} must be a finite number, got ${safeJson(v)}.`);
    else out[k as keyof TttOptions] = v;
  }
  return out;
}

async function ttt(req: TttRequest, signal: AbortSignal, emit: EmitEvent): Promise<TttResult> {
  const m = requireModel();
  const options = tttOptions(req.options);
  const { ids, mask, sequence } = trainingInput(m, req);
  const r = await m.train(
    ids,
    mask,
    (s) => emit({ type: 'ttt-step', step: s.step, steps: s.steps, loss: s.loss, ms: s.ms }),
    { ...options, signal },
  );
  // A cancel that landed after the last step still cancels: the caller asked to stop.
  throwIfAborted(signal);
  return { lossAtStart: r.lossAtStart, losses: r.losses, finalLoss: r.finalLoss, tokensTrained: r.tokensTrained, timings: r.timings, sequence };
}

async function lossAndGrads(req: LossAndGradsRequest): Promise<LossAndGradsResult> {
  const m = requireModel();
  const { ids, mask } = trainingInput(m, req);
  const { loss, grads } = await m.lossAndGrads(ids, mask);
  let tokensTrained = 0;
  for (let t = 1; t < mask.length; t++) if (mask[t] === 1) tokensTrained++;
  return { loss, tokensTrained, ...(req.returnGrads === false ? {} : { grads: toArrayBuffer(saveLora(grads, { suffix: '.grad' })) }) };
}

/** The bytes as a whole ArrayBuffer of their own, so it can be transferred. */
function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.slice().buffer;
}

/** ArrayBuffers at the top level of a result (get-adapter's bytes, loss-and-grads' grads). */
function transferables(result: unknown): ArrayBuffer[] {
  if (result instanceof ArrayBuffer) return [result];
  if (typeof result !== 'object' || result === null) return [];
  return Object.values(result).filter((v): v is ArrayBuffer => v instanceof ArrayBuffer);
}

function openSource(spec: ModelSourceSpec, onRetry?: (e: RetryEvent) => void): ModelSource {
  if (spec.kind === 'url') {
    // Relative URLs ("/shared/...") resolve against the page origin; a folder URL needs its slash.
    const url = new URL(spec.url, scope.location.href).href;
    return new UrlModelSource(url.endsWith('/') ? url : url + '/', { onRetry });
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

/** Test only (protocol.ts DebugLoseDeviceRequest): the model's GPU device destroyed, as a driver reset would. */
function debugLoseDevice(): { lost: boolean } {
  if (!import.meta.env.DEV) throw new InvalidInputError('debug-lose-device is a test request; only development builds serve it.');
  const engine = model?.engine;
  if (!engine || !('ctx' in engine)) return { lost: false };
  engine.ctx.device.destroy();
  return { lost: true };
}

/** The loaded model; after device loss it is kept, and its calls reject with DeviceLostError until a new load. */
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

