import type { Backend, ChatMessage, GenerateOptions, GenerateResult, LoadOptions, MemoryReport, WeightFormat } from './api.ts';
import { type Checkpoint, openCheckpoint } from './checkpoint.ts';
import type { LlamaConfig } from './config.ts';
import { CpuLlama } from './cpu/cpu-llama.ts';
import { EngineError, InvalidInputError, throwIfAborted, TokenizerError } from './errors.ts';
import { generate, type ForwardBackend } from './generate.ts';
import { acquireGpu } from './gpu/device.ts';
import { GpuLlama } from './gpu/gpu-llama.ts';
import type { ModelSource } from './io/source.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';
import { CpuTrainer, type TrainResult } from './cpu/cpu-trainer.ts';
import { GpuTrainer } from './gpu/gpu-trainer.ts';
import { initLora, type LoraWeights } from './lora/adapter.ts';
import { cpuAdapterTrainer, gpuAdapterTrainer, type AdapterTrainer, type TrainStepInfo } from './ttt/adapter-trainer.ts';
import { resolveTttConfig, type TttConfig, type TttPreset } from './ttt/config.ts';
import { buildTrainingSequence, type Trace, type TrainingSequence } from './ttt/training-text.ts';

/** A CPU model (the reference, or it with a LoRA adapter) as a ForwardBackend; its forward is synchronous. */
class CpuBackend implements ForwardBackend {
  constructor(readonly model: Pick<CpuLlama, 'maxContext' | 'forward' | 'resetCache'>) {}
  get maxContext(): number { return this.model.maxContext; }
  forward(ids: number[], opts?: { allLogits?: boolean }): Float32Array { return this.model.forward(ids, opts); }
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
  readonly engine: GpuLlama | CpuLlama;
  private fwd: ForwardBackend;
  private busy = false;
  private trainer: AdapterTrainer | null = null;
  private tttConfig: TttConfig | null = null;

  private constructor(config: LlamaConfig, tokenizer: Tokenizer | null, backend: Backend, weights: WeightFormat, engine: GpuLlama | CpuLlama) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.backend = backend;
    this.weights = weights;
    this.engine = engine;
    this.fwd = engine instanceof GpuLlama ? engine : new CpuBackend(engine);
  }

  get precision(): 'f16' | 'f32' {
    return this.engine instanceof GpuLlama ? this.engine.precision : 'f32';
  }

  /** Token ids that end generation: the config's eos ids plus the tokenizer's end-of-turn ids. */
  get eosIds(): number[] {
    return [...new Set([...this.config.eosTokenIds, ...(this.tokenizer?.eosTokenIds ?? [])])];
  }

  static async load(source: ModelSource, options: LoadOptions): Promise<LlamaModel> {
    const { signal, onProgress } = options;
    const weights = options.weights ?? 'q4';
    onProgress?.({ phase: 'config', loadedBytes: 0, totalBytes: 0 });
    const ckpt: Checkpoint = await openCheckpoint(source, signal);
    const config = ckpt.config;
    onProgress?.({ phase: 'tokenizer', loadedBytes: 0, totalBytes: ckpt.totalBytes });
    const tokenizer = (await source.exists('tokenizer.json', signal)) ? await loadTokenizer(source, signal) : null;
    const maxContext = options.maxContext ?? Math.min(config.maxPositionEmbeddings, 4096);
    if (!Number.isInteger(maxContext) || maxContext < 1) throw new InvalidInputError(`maxContext must be a positive integer, got ${maxContext}.`);
    let loaded = 0;
    const onBytes = (tensor: string, bytes: number) => {
      loaded += bytes;
      onProgress?.({ phase: 'weights', loadedBytes: loaded, totalBytes: ckpt.totalBytes, tensor });
    };
    let engine: GpuLlama | CpuLlama;
    if (options.backend === 'webgpu') {
      const ctx = await acquireGpu(options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu, { f16: options.precision !== 'f32' });
      if (options.precision === 'f16' && !ctx.f16) {
        ctx.device.destroy();
        throw new EngineError('gpu-unavailable', 'f16 precision was requested but this GPU has no shader-f16 support; use precision "auto" or "f32".');
      }
      try {
        engine = await GpuLlama.load(ckpt, ctx, { weights, maxContext, signal, onBytes });
      } catch (e) {
        ctx.device.destroy();
        throw e;
      }
    } else {
      engine = await CpuLlama.load(config, ckpt, { weights, maxContext, signal, onTensor: (name) => onBytes(name, ckpt.tensors.get(name)!.end - ckpt.tensors.get(name)!.begin) });
    }
    throwIfAborted(signal);
    onProgress?.({ phase: 'ready', loadedBytes: ckpt.totalBytes, totalBytes: ckpt.totalBytes });
    return new LlamaModel(config, tokenizer, options.backend, weights, engine);
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
    return this.exclusive(async () => {
      this.fwd.resetCache();
      return this.fwd.forward(ids, opts);
    });
  }

  async generate(promptIds: number[], options: GenerateOptions): Promise<GenerateResult> {
    return this.exclusive(() => generate(this.fwd, this.tokenizer, promptIds, this.eosIds, options));
  }

  /** One operation at a time: the KV cache and activation buffers are shared. */
  private async exclusive<R>(fn: () => Promise<R>): Promise<R> {
    if (this.busy) throw new InvalidInputError('The model is busy with another request; cancel it or wait.');
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  /**
   * Attaches a LoRA adapter for test-time training: `lora` as given (e.g. loaded from a PEFT
   * safetensors file), or initialised from the config (A uniform from the seed, B = 0, so the
   * model is unchanged until trained).
   * @example
   *   await model.attachAdapter({ preset: 'paper' });
   *   const seq = model.trainingSequence(trace);
   *   await model.train(seq.ids, seq.lossMask, (s) => console.log(s.loss));
   */
  async attachAdapter(opts: Partial<TttConfig> & { preset?: TttPreset; lora?: LoraWeights } = {}): Promise<void> {
    return this.exclusive(async () => {
      const cfg = resolveTttConfig(opts);
      const lora = opts.lora ?? initLora(this.config, { rank: cfg.rank, alpha: cfg.alpha, targets: cfg.targets }, cfg.seed);
      if (this.engine instanceof GpuLlama) {
        if (this.trainer) throw new InvalidInputError('An adapter is attached already; this engine supports one per model load.');
        this.trainer = gpuAdapterTrainer(await GpuTrainer.create(this.engine, lora, { maxTokens: cfg.maxTokens }), lora);
      } else {
        const t = new CpuTrainer(this.engine, lora);
        this.trainer = cpuAdapterTrainer(t);
        const gen = t.generator();
        this.fwd = new CpuBackend({ maxContext: this.engine.maxContext, forward: (ids, o) => gen.forward(ids, o), resetCache: () => gen.resetCache() });
      }
      this.tttConfig = { ...cfg, maxTokens: Math.min(cfg.maxTokens, this.fwd.maxContext) };
    });
  }

  private requireTrainer(): AdapterTrainer {
    if (!this.trainer) throw new InvalidInputError('No adapter is attached; call attachAdapter() first.');
    return this.trainer;
  }

  /** The TTT sequence of a retrieved trace in this model's chat template (see models/ttt/training-text.ts). */
  trainingSequence(trace: Trace, opts: { style?: 'card' | 'o1' } = {}): TrainingSequence {
    return buildTrainingSequence(this.requireTokenizer(), trace, { maxTokens: this.tttConfig?.maxTokens ?? 1024, style: opts.style });
  }

  /** TTT: Adam steps on the attached adapter; generation then uses the adapted model until resetAdapter(). */
  async train(ids: number[], lossMask: number[], onStep?: (s: TrainStepInfo) => void, opts: { signal?: AbortSignal } & Partial<TttConfig> = {}): Promise<TrainResult> {
    const trainer = this.requireTrainer();
    const c = { ...this.tttConfig!, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as TttConfig;
    return this.exclusive(() => trainer.train(ids, lossMask, {
      steps: c.steps, lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay,
      maxGradNorm: c.maxGradNorm ?? undefined, signal: opts.signal,
    }, onStep));
  }

  /** Loss and LoRA gradients at the current adapter. */
  async lossAndGrads(ids: number[], lossMask: number[]): Promise<{ loss: number; grads: LoraWeights }> {
    const trainer = this.requireTrainer();
    return this.exclusive(() => trainer.lossAndGrads(ids, lossMask));
  }

  /** B = 0 and the optimizer cleared: the next answer comes from the base model. */
  resetAdapter(): void {
    if (this.busy) throw new InvalidInputError('Cannot reset the adapter while the model is busy; cancel first.');
    this.requireTrainer().reset();
  }

  /** The current adapter weights (PEFT layout; save with saveLora). */
  async adapter(): Promise<LoraWeights> {
    return this.requireTrainer().adapter();
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
    if (this.engine instanceof GpuLlama) {
      this.engine.dispose();
      this.engine.ctx.device.destroy();
    }
  }
}
