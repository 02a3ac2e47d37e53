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

/** The CPU reference as a ForwardBackend (its forward is synchronous). */
class CpuBackend implements ForwardBackend {
  constructor(readonly model: CpuLlama) {}
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
  private readonly fwd: ForwardBackend;
  private busy = false;

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
