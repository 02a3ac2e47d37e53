import type { LlamaConfig } from '../config.ts';
import type { LmHeadFormat, WeightFormat } from '../api.ts';
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import { cpuTensor, type CpuTensorReader } from '../cache/cpu-io.ts';
import type { LoraWeights } from '../lora/adapter.ts';
import { ropeInvFreq, ropeTables } from '../rope.ts';
import { embedFormat, layerWeightNames, lmHeadName, resolveLmHead, type MatrixFormat } from '../weights-plan.ts';
import { LayerWorkspace, layerForward } from './layer.ts';
import { embedding, matmul, rmsnorm } from './ops.ts';

export interface CpuLayer {
  inputNorm: Float32Array; // (C)
  q: Float32Array; k: Float32Array; v: Float32Array; o: Float32Array; // (H*D, C) (KV*D, C) x2 (C, H*D)
  postNorm: Float32Array; // (C)
  gate: Float32Array; up: Float32Array; down: Float32Array; // (F, C) x2, (C, F)
}

export interface CpuWeights {
  embed: Float32Array; // (V, C)
  layers: CpuLayer[];
  norm: Float32Array; // (C)
  lmHead: Float32Array; // (V, C)
}

/** Anything that yields whole f32 tensors by name (a Checkpoint does). */
export interface TensorReader {
  readTensor(name: string, signal?: AbortSignal): Promise<Float32Array>;
}

/** What the LoRA paths need from a CpuLlama (its frozen weights, config and context). */
export interface CpuBase {
  readonly config: LlamaConfig;
  readonly weights: CpuWeights;
  readonly maxContext: number;
}

/**
 * The CPU reference Llama: plain TypeScript, f32, with a KV cache. The oracle the WebGPU path is
 * tested against, and a slow fallback for tiny models. With `weights: 'q4'` the projections are
 * quantized and dequantized exactly as the GPU stores them, so it is also the 4-bit oracle; the
 * lm_head (and a tied embedding) likewise in its own format (`lmHead`, default resolveLmHead).
 * With a LoRA adapter (see withLora) the adapter is read live: training it in place changes the
 * next forward; projections whose B is exactly zero skip the LoRA term, so an untrained or reset
 * adapter gives logits bit-identical to the base model's.
 */
export class CpuLlama implements CpuBase {
  readonly config: LlamaConfig;
  readonly weights: CpuWeights;
  readonly maxContext: number;
  /** The attached adapter, or null for the base model. */
  readonly lora: LoraWeights | null;
  private readonly kCache: Float32Array[]; // per layer (S, KV, D)
  private readonly vCache: Float32Array[];
  private readonly invFreq: Float64Array;
  private pos = 0;

  constructor(config: LlamaConfig, weights: CpuWeights, maxContext: number, lora: LoraWeights | null = null) {
    if (lora && lora.layers.length !== config.numLayers) {
      throw new InvalidInputError(`The adapter has ${lora.layers.length} layers; the model has ${config.numLayers}.`);
    }
    this.config = config;
    this.weights = weights;
    this.maxContext = maxContext;
    this.lora = lora;
    const kvSize = maxContext * config.numKvHeads * config.headDim;
    this.kCache = weights.layers.map(() => new Float32Array(kvSize));
    this.vCache = weights.layers.map(() => new Float32Array(kvSize));
    this.invFreq = ropeInvFreq(config);
  }

  /**
   * Loads the weights from a checkpoint, or from a cache-aware reader (models/cache/cpu-io.ts):
   * cached tensors are taken as they are, others quantized here and written through to its sink.
   */
  static async load(config: LlamaConfig, reader: TensorReader | CpuTensorReader, opts: { weights: WeightFormat; lmHead?: LmHeadFormat; maxContext: number; signal?: AbortSignal; onTensor?: (name: string) => void }): Promise<CpuLlama> {
    const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = config;
    const head = resolveLmHead(opts.weights, opts.lmHead);
    const tensor = async (name: string, shape: [number, number] | null, format: MatrixFormat = opts.weights) => {
      throwIfAborted(opts.signal);
      opts.onTensor?.(name);
      return cpuTensor(reader, name, shape ? format : 'f32', shape, opts.signal);
    };
    const read = (name: string) => tensor(name, null);
    const proj = (name: string, N: number, K: number, format?: MatrixFormat) => tensor(name, [N, K], format);
    const layers: CpuLayer[] = [];
    for (let l = 0; l < config.numLayers; l++) {
      const n = layerWeightNames(l);
      layers.push({
        inputNorm: await read(n.inputNorm),
        q: await proj(n.q, H * D, C),
        k: await proj(n.k, KV * D, C),
        v: await proj(n.v, KV * D, C),
        o: await proj(n.o, C, H * D),
        postNorm: await read(n.postNorm),
        gate: await proj(n.gate, F, C),
        up: await proj(n.up, F, C),
        down: await proj(n.down, C, F),
      });
    }
    const embed = await proj('model.embed_tokens.weight', V, C, embedFormat(config, opts.weights, head));
    const lmHead = config.tieWordEmbeddings ? embed : await proj(lmHeadName(config), V, C, head);
    return new CpuLlama(config, { embed, layers, norm: await read('model.norm.weight'), lmHead }, opts.maxContext);
  }

  /** Number of tokens in the KV cache. */
  get position(): number {
    return this.pos;
  }

  /** Empties the KV cache (the next forward starts at position 0). */
  resetCache(): void {
    this.pos = 0;
  }

  /**
   * Runs `ids` at positions position..position+T-1, appending to the KV cache.
   * Returns logits (V) of the last token, or (T, V) of all tokens with `allLogits`.
   */
  forward(ids: number[], opts: { allLogits?: boolean } = {}): Float32Array {
    const cfg = this.config;
    const { hiddenSize: C, vocabSize: V } = cfg;
    const T = ids.length;
    if (T === 0) throw new InvalidInputError('forward: no tokens.');
    if (this.pos + T > this.maxContext) {
      throw new InvalidInputError(`Sequence of ${this.pos + T} tokens exceeds the context of ${this.maxContext}.`);
    }
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new InvalidInputError(`Token id ${id} is outside the vocabulary (0..${V - 1}).`);
    }
    const start = this.pos;
    const w = this.weights, lora = this.lora;
    const x = new Float32Array(T * C); // (T, C) residual stream
    embedding(x, w.embed, ids, C);
    const { cos, sin } = ropeTables(this.invFreq, start, T);
    const ws = new LayerWorkspace(cfg, T, { training: false, rank: lora?.config.rank ?? 0, targets: lora?.config.targets ?? [] });
    const ctx = { cfg, cos, sin, scale: lora?.scale ?? 0 };
    for (let l = 0; l < cfg.numLayers; l++) {
      layerForward(ctx, ws, w.layers[l], lora?.layers[l], x, start, T, this.kCache[l], this.vCache[l], false);
    }
    this.pos += T;
    const rows = opts.allLogits ? T : 1;
    const first = T - rows;
    const hidden = new Float32Array(rows * C); // (rows, C)
    rmsnorm(hidden, x.subarray(first * C), w.norm, rows, C, cfg.rmsNormEps);
    const logits = new Float32Array(rows * V); // (rows, V)
    matmul(logits, hidden, w.lmHead, rows, C, V);
    return logits;
  }
}

/**
 * The model `base` with a LoRA adapter attached, for generation: it shares the frozen weights and
 * runs its own KV cache (`base` is not modified). InvalidInputError when the adapter's layer count
 * is not the model's.
 * @example
 *   const model = withLora(cpu, lora);
 *   const logits = model.forward(promptIds); // (V) of the last token
 *   const next = model.forward([argmax(logits)]);
 */
export function withLora(base: CpuBase, lora: LoraWeights): CpuLlama {
  return new CpuLlama(base.config, base.weights, base.maxContext, lora);
}
