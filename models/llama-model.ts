import type { Backend, ChatMessage, GenerateOptions, GenerateResult, LmHeadFormat, LoadOptions, MemoryReport, WeightFormat } from './api.ts';
import { resolveLmHead } from './weights-plan.ts';
import { openWeights, type CacheEntryInfo } from './cache/open-weights.ts';
import type { LlamaConfig } from './config.ts';
import { CpuLlama } from './cpu/cpu-llama.ts';
import { EngineError, InvalidInputError, throwIfAborted, TokenizerError } from './errors.ts';
import { generate, type ForwardBackend } from './generate.ts';
import { acquireGpu, type GpuContext } from './gpu/device.ts';
import type { GpuErrorScopes } from './gpu/error-scope.ts';
import { GpuLlama, type GpuCounters } from './gpu/gpu-llama.ts';
import type { ModelSource } from './io/source.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';
import { CpuTrainer, type TrainResult } from './cpu/cpu-trainer.ts';
import { GpuTrainer } from './gpu/gpu-trainer.ts';
import { initLora, type LoraWeights } from './lora/adapter.ts';
import { cpuAdapterTrainer, gpuAdapterTrainer, type AdapterTrainer, type TrainStepInfo } from './ttt/adapter-trainer.ts';
import { resolveTttConfig, type TttConfig, type TttPreset } from './ttt/config.ts';
import { buildTrainingSequence, type Trace, type TrainingSequence } from './ttt/training-text.ts';
import { planPrompt, type PreparedPrompt, type PromptRequest } from './ask/prompt-plan.ts';
import { assertPlanFits, planMemory } from './memory-plan.ts';
import type { PromptFormat } from './prompt-format.ts';

/** A CPU model (the reference, or it with a LoRA adapter) as a ForwardBackend; its forward is synchronous. */
class CpuBackend implements ForwardBackend {
  constructor(readonly model: Pick<CpuLlama, 'maxContext' | 'forward' | 'resetCache'>) {}
  get maxContext(): number { return this.model.maxContext; }
  forward(ids: number[], opts?: { allLogits?: boolean }): Float32Array { return this.model.forward(ids, opts); }
  resetCache(): void { this.model.resetCache(); }
}

/** The WebGPU model as a ForwardBackend: each prefill and decode step in its own error scopes. */
class GpuBackend implements ForwardBackend {
  constructor(readonly model: GpuLlama) {}
  get maxContext(): number { return this.model.maxContext; }
  forward(ids: number[], opts?: { allLogits?: boolean }): Promise<Float32Array> {
    return this.model.ctx.errors.run(ids.length > 1 ? `the prefill of ${ids.length} tokens` : 'a decode step', () => this.model.forward(ids, opts));
  }
  forwardArgmax(ids: number[]): Promise<number> {
    return this.model.ctx.errors.run('a greedy decode step', () => this.model.forwardArgmax(ids));
  }
  resetCache(): void { this.model.resetCache(); }
}

/**
 * A Llama model ready to generate: weights on the chosen backend plus the model's own tokenizer.
 * @example
 *   const model = await LlamaModel.load(new UrlModelSource('/shared/golden/stories260K-hf/f32/'),
 *     { backend: 'webgpu', gpu: navigator.gpu, weights: 'f32' });
 *   const r = await model.generate(model.encodePrompt('Once upon a time'), { maxNewTokens: 32 });
 */
export class LlamaModel {
  readonly config: LlamaConfig;
  readonly tokenizer: Tokenizer | null;
  readonly backend: Backend;
  readonly weights: WeightFormat;
  /** The lm_head's format (LoadOptions.lmHead, default resolveLmHead(weights)). */
  readonly lmHead: LmHeadFormat;
  readonly engine: GpuLlama | CpuLlama;
  private fwd: ForwardBackend;
  private busy = false;
  private trainer: AdapterTrainer | null = null;
  private tttConfig: TttConfig | null = null;
  private from: 'cache' | 'source' = 'source';
  private entry: CacheEntryInfo | null = null;
  private disposed = false;

  private constructor(config: LlamaConfig, tokenizer: Tokenizer | null, backend: Backend, weights: WeightFormat, lmHead: LmHeadFormat, engine: GpuLlama | CpuLlama) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.backend = backend;
    this.weights = weights;
    this.lmHead = lmHead;
    this.engine = engine;
    this.fwd = engine instanceof GpuLlama ? new GpuBackend(engine) : new CpuBackend(engine);
  }

  /** The GPU's error scopes and loss state; null on the CPU. */
  private get gpuErrors(): GpuErrorScopes | null {
    return this.engine instanceof GpuLlama ? this.engine.ctx.errors : null;
  }

  /**
   * False once the GPU device is lost (or the model disposed): every call then rejects at once
   * (DeviceLostError); load the model again, which gets a new device.
   */
  get usable(): boolean {
    return !this.disposed && !(this.gpuErrors?.isLost ?? false);
  }

  /** Throws when the model can no longer run: disposed, or its GPU device lost. */
  private throwIfUnusable(): void {
    if (this.disposed) throw new InvalidInputError('This model was disposed; load it again.');
    this.gpuErrors?.throwIfLost();
  }

  get precision(): 'f16' | 'f32' {
    return this.engine instanceof GpuLlama ? this.engine.precision : 'f32';
  }

  /** Token ids that end generation: the config's eos ids plus the tokenizer's end-of-turn ids. */
  get eosIds(): number[] {
    return [...new Set([...this.config.eosTokenIds, ...(this.tokenizer?.eosTokenIds ?? [])])];
  }

  /**
   * Loads a model. With `options.cache`, a complete cache entry for the source is loaded with no
   * source reads; otherwise the weights come from the source and are written to the cache.
   */
  static async load(source: ModelSource, options: LoadOptions): Promise<LlamaModel> {
    const { signal, onProgress } = options;
    const weights = options.weights ?? 'q4';
    const lmHead = resolveLmHead(weights, options.lmHead);
    const maxContext = options.maxContext;
    if (maxContext !== undefined && (!Number.isInteger(maxContext) || maxContext < 1)) throw new InvalidInputError(`maxContext must be a positive integer, got ${maxContext}.`);
    const contextOf = (config: LlamaConfig) => maxContext ?? Math.min(config.maxPositionEmbeddings, 4096);
    onProgress?.({ phase: 'config', loadedBytes: 0, totalBytes: 0 });
    // The GPU first: its limits decide, from config.json alone, whether the model can run at all,
    // before any weight is read, downloaded or written to the cache.
    const ctx = options.backend === 'webgpu' ? await LlamaModel.gpu(options) : null;
    let w: Awaited<ReturnType<typeof openWeights>>;
    try {
      w = await openWeights(source, {
        weights, lmHead, backend: options.backend, cache: options.cache, signal,
        check: ctx ? (config) => assertPlanFits(planMemory(config, { weights, lmHead, precision: ctx.f16 ? 'f16' : 'f32', maxContext: contextOf(config), limits: ctx.limits }), ctx.limits) : undefined,
      });
    } catch (e) {
      ctx?.device.destroy();
      throw e;
    }
    const { config, totalBytes, from } = w;
    let engine: GpuLlama | CpuLlama | null = null;
    try {
      onProgress?.({ phase: 'tokenizer', loadedBytes: 0, totalBytes, from });
      const tokenizer = (await w.files.exists('tokenizer.json', signal)) ? await loadTokenizer(w.files, signal) : null;
      let loaded = 0;
      const onBytes = (tensor: string, bytes: number) => {
        loaded += bytes;
        onProgress?.({ phase: 'weights', loadedBytes: loaded, totalBytes, tensor, ...w.where(tensor) });
      };
      if (ctx) {
        engine = await ctx.errors.run('the load', () => GpuLlama.load(w.tensors, ctx, { weights, lmHead, maxContext: contextOf(config), signal, onBytes }));
      } else {
        engine = await CpuLlama.load(config, w.tensors, { weights, lmHead, maxContext: contextOf(config), signal, onTensor: (name) => onBytes(name, w.bytesOf(name)) });
      }
      throwIfAborted(signal);
      await w.finish(signal);
      onProgress?.({ phase: 'ready', loadedBytes: totalBytes, totalBytes, from });
      const model = new LlamaModel(config, tokenizer, options.backend, weights, lmHead, engine);
      model.from = from;
      model.entry = w.entry;
      return model;
    } catch (e) {
      if (engine instanceof GpuLlama) engine.dispose();
      ctx?.device.destroy();
      await w.fail(e);
      throw e;
    }
  }

  /** The WebGPU device for a load, with f16 when asked and available. */
  private static async gpu(options: LoadOptions): Promise<GpuContext> {
    const ctx = await acquireGpu(options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu, { f16: options.precision !== 'f32', limits: options.gpuLimits });
    if (options.precision === 'f16' && !ctx.f16) {
      ctx.device.destroy();
      throw new EngineError('gpu-unavailable', 'f16 precision was requested but this GPU has no shader-f16 support; use precision "auto" or "f32".');
    }
    return ctx;
  }

  /** Where the weights came from: the weight cache, or the source (downloaded / read and converted). */
  get loadedFrom(): 'cache' | 'source' {
    return this.from;
  }

  /** The weight-cache entry the model was loaded from or written to; null without a cache. */
  get cacheEntry(): CacheEntryInfo | null {
    return this.entry;
  }

  private requireTokenizer(): Tokenizer {
    if (!this.tokenizer) throw new TokenizerError('This model folder has no tokenizer.json; pass token ids instead of text.');
    return this.tokenizer;
  }

  /** Tokenizes a prompt; with `chat`, as one user turn (plus optional system turn) in the model's chat template. */
  encodePrompt(text: string, opts: { chat?: boolean; system?: string } = {}): number[] {
    const tok = this.requireTokenizer();
    if (!opts.chat) return tok.encode(text);
    const messages: ChatMessage[] = [];
    if (opts.system) messages.push({ role: 'system', content: opts.system });
    messages.push({ role: 'user', content: text });
    return tok.encodeChat(messages, { addGenerationPrompt: true });
  }

  /** Logits of a sequence from an empty cache: last position (V), or every position (T, V). */
  async logits(ids: number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    return this.exclusive('reading logits', async () => {
      this.fwd.resetCache();
      return this.fwd.forward(ids, opts);
    });
  }

  /** Rejects, never returns tokens, when a GPU error occurs during the call (typed, see models/gpu/error-scope.ts). */
  async generate(promptIds: number[], options: GenerateOptions): Promise<GenerateResult> {
    return this.exclusive('the generation', () => generate(this.fwd, this.tokenizer, promptIds, this.eosIds, options));
  }

  /**
   * One operation at a time: the KV cache and activation buffers are shared. On the GPU the
   * operation runs in error scopes and is raced against device loss (GpuErrorScopes.run).
   */
  private async exclusive<R>(what: string, fn: () => Promise<R>): Promise<R> {
    this.throwIfUnusable();
    if (this.busy) throw new InvalidInputError('The model is busy with another request; cancel it or wait.');
    this.busy = true;
    try {
      const errors = this.gpuErrors;
      return await (errors ? errors.run(what, fn) : fn());
    } finally {
      this.busy = false;
    }
  }

  /**
   * Attaches a LoRA adapter for test-time training, replacing any attached one: `lora` as given
   * (e.g. loaded from a PEFT safetensors file), or initialised from the config (A uniform from
   * the seed, B = 0, so the model is unchanged until trained).
   * @example
   *   await model.attachAdapter({ preset: 'paper' });
   *   const seq = model.trainingSequence(trace);
   *   await model.train(seq.ids, seq.lossMask, (s) => console.log(s.loss));
   */
  async attachAdapter(opts: Partial<TttConfig> & { preset?: TttPreset; lora?: LoraWeights } = {}): Promise<void> {
    return this.exclusive('attaching the adapter', async () => {
      const cfg = resolveTttConfig(opts);
      const lora = opts.lora ?? initLora(this.config, { rank: cfg.rank, alpha: cfg.alpha, targets: cfg.targets }, cfg.seed);
      await this.removeAdapter();
      if (this.engine instanceof GpuLlama) {
        const e = this.engine;
        // The trainer's buffers must fit this GPU's limits too (the attention probabilities grow with maxTokens squared).
        const ttt = { rank: cfg.rank, alpha: cfg.alpha, targets: cfg.targets, maxTokens: Math.min(cfg.maxTokens, e.maxContext) };
        assertPlanFits(planMemory(this.config, { weights: this.weights, lmHead: this.lmHead, precision: e.precision, maxContext: e.maxContext, maxBatch: e.maxBatch, ttt, limits: e.ctx.limits }), e.ctx.limits);
        this.trainer = gpuAdapterTrainer(await GpuTrainer.create(this.engine, lora, { maxTokens: cfg.maxTokens }), lora);
      } else {
        const t = new CpuTrainer(this.engine, lora);
        this.trainer = cpuAdapterTrainer(t);
        this.fwd = new CpuBackend(t.generator());
      }
      this.tttConfig = { ...cfg, maxTokens: Math.min(cfg.maxTokens, this.fwd.maxContext) };
    });
  }

  /**
   * A fresh adapter of this shape: a newly attached one, or, when one of the same shape (rank,
   * alpha, targets, maxTokens, seed) is attached already, that one reset (B = 0, A as attached,
   * optimizer cleared), which costs no allocation. Either way the optimizer defaults become
   * `opts`'. Returns true when the attached adapter was kept.
   * @example if (!(await model.ensureAdapter({ rank: 8, steps: 3 }))) console.log('new adapter');
   */
  async ensureAdapter(opts: Partial<TttConfig> & { preset?: TttPreset } = {}): Promise<boolean> {
    this.throwIfUnusable();
    const cfg = resolveTttConfig(opts);
    const have = this.tttConfig;
    const maxTokens = Math.min(cfg.maxTokens, this.fwd.maxContext);
    const same = have !== null && this.trainer !== null && have.rank === cfg.rank && have.alpha === cfg.alpha && have.seed === cfg.seed
      && have.maxTokens === maxTokens && have.targets.length === cfg.targets.length && cfg.targets.every((t) => have.targets.includes(t));
    if (!same) {
      await this.attachAdapter(cfg);
      return false;
    }
    this.resetAdapter();
    this.tttConfig = { ...cfg, maxTokens };
    return true;
  }

  /** The attached adapter's settings (maxTokens capped at the context), or null. */
  get adapterConfig(): TttConfig | null {
    return this.tttConfig ? { ...this.tttConfig, targets: [...this.tttConfig.targets] } : null;
  }

  /** Removes the adapter and frees its memory: the model is the base model, as loaded. */
  async detachAdapter(): Promise<void> {
    return this.exclusive('detaching the adapter', () => this.removeAdapter());
  }

  private async removeAdapter(): Promise<void> {
    if (!this.trainer) return;
    await this.trainer.dispose();
    this.trainer = null;
    this.tttConfig = null;
    if (this.engine instanceof CpuLlama) this.fwd = new CpuBackend(this.engine);
  }

  private requireTrainer(): AdapterTrainer {
    if (!this.trainer) throw new InvalidInputError('No adapter is attached; call attachAdapter() first.');
    return this.trainer;
  }

  /**
   * The TTT sequence of a retrieved trace, in the answer prompt's format (see
   * models/ttt/training-text.ts); default FineMedLM-o1's system prompt in the chat template.
   */
  trainingSequence(trace: Trace, opts: { format?: PromptFormat } = {}): TrainingSequence {
    return buildTrainingSequence(this.requireTokenizer(), trace, { maxTokens: this.tttConfig?.maxTokens ?? 1024, format: opts.format });
  }

  /**
   * The answer prompt for a question: the requested system prompt if it fits this model's
   * context with room for the answer, else the next smaller format (see models/ask/prompt-plan.ts).
   * @example const p = model.answerPrompt('What causes gout?', { system: 'o1', maxNewTokens: 512 });
   */
  answerPrompt(question: string, request: PromptRequest): PreparedPrompt {
    return planPrompt(this.requireTokenizer(), question, request, this.fwd.maxContext);
  }

  /** TTT: Adam steps on the attached adapter; generation then uses the adapted model until resetAdapter(). */
  async train(ids: number[], lossMask: number[], onStep?: (s: TrainStepInfo) => void, opts: { signal?: AbortSignal } & Partial<TttConfig> = {}): Promise<TrainResult> {
    const trainer = this.requireTrainer();
    const c = { ...this.tttConfig!, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as TttConfig;
    return this.exclusive('the training', async () => {
      // On the GPU each step is checked before its event goes out; the first GPU error stops the run.
      const checks = this.gpuErrors?.stepChecks((s: TrainStepInfo) => `training step ${s.step}`, onStep, opts.signal);
      try {
        return await trainer.train(ids, lossMask, {
          steps: c.steps, lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay,
          maxGradNorm: c.maxGradNorm ?? undefined, signal: checks?.signal ?? opts.signal,
        }, checks?.onStep ?? onStep);
      } finally {
        await checks?.finish(); // a GPU error outranks what the run returned or threw (an abort it caused)
      }
    });
  }

  /** Loss and LoRA gradients at the current adapter. */
  async lossAndGrads(ids: number[], lossMask: number[]): Promise<{ loss: number; grads: LoraWeights }> {
    const trainer = this.requireTrainer();
    return this.exclusive('the loss and gradients', () => trainer.lossAndGrads(ids, lossMask));
  }

  /** B = 0 and the optimizer cleared: the next answer comes from the base model. */
  resetAdapter(): void {
    this.throwIfUnusable();
    if (this.busy) throw new InvalidInputError('Cannot reset the adapter while the model is busy; cancel first.');
    this.requireTrainer().reset();
  }

  /** The current adapter weights (PEFT layout; save with saveLora). */
  async adapter(): Promise<LoraWeights> {
    this.throwIfUnusable();
    const trainer = this.requireTrainer();
    return this.gpuErrors ? this.gpuErrors.run('reading the adapter', () => trainer.adapter()) : trainer.adapter();
  }

  /** GPU work issued so far (GpuLlama.counters); null on the CPU backend. */
  counters(): GpuCounters | null {
    return this.engine instanceof GpuLlama ? this.engine.counters() : null;
  }

  /**
   * Compiles the kernels the GPU engine leaves for first need (the prefill's: a load waits only
   * for what a decode step needs), so the first long prompt starts at once. It touches no buffer
   * and takes no lock, so it may run beside a request; nothing to do on the CPU.
   * @example const model = await LlamaModel.load(source, opts); void model.warmUp().catch(() => {});
   */
  async warmUp(): Promise<void> {
    if (this.engine instanceof GpuLlama && !this.disposed) await this.engine.warmUp();
  }

  memory(): MemoryReport {
    if (this.engine instanceof GpuLlama) return this.engine.memory();
    const w = this.engine.weights;
    let bytes = w.embed.byteLength + w.norm.byteLength + (w.lmHead === w.embed ? 0 : w.lmHead.byteLength);
    for (const l of w.layers) for (const a of Object.values(l)) bytes += (a as Float32Array).byteLength;
    const c = this.config;
    const kv = 2 * c.numLayers * this.engine.maxContext * c.numKvHeads * c.headDim * 4;
    return { weights: bytes, kvCache: kv, activations: 0, total: bytes + kv };
  }

  dispose(): void {
    this.disposed = true;
    if (this.engine instanceof GpuLlama) {
      this.engine.dispose();
      this.engine.ctx.device.destroy();
    }
  }
}
