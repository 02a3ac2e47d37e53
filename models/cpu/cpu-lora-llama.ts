/**
 * Generation-side forward of a CpuLlama with LoRA adapters attached, with its own KV cache. The
 * base CpuLlama is not modified: it shares the frozen weights and runs its own cache. Projections
 * whose B is exactly zero skip the LoRA term, so an untrained or reset adapter gives logits
 * bit-identical to CpuLlama.forward.
 */
import type { LlamaConfig } from '../config.ts';
import { InvalidInputError } from '../errors.ts';
import type { LoraWeights } from '../lora/adapter.ts';
import { ropeInvFreq, ropeTables } from '../rope.ts';
import type { CpuWeights } from './cpu-llama.ts';
import { LayerWorkspace, layerForward } from './lora-layer.ts';
import { matmul, rmsnorm } from './ops.ts';

/** What the LoRA paths need from a CpuLlama (its frozen weights, config and context). */
export interface CpuBase {
  readonly config: LlamaConfig;
  readonly weights: CpuWeights;
  readonly maxContext: number;
}

/** The ids must be integers in the vocabulary; throws InvalidInputError otherwise. */
export function checkIds(ids: readonly number[], V: number): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new InvalidInputError(`Token id ${id} is outside the vocabulary (0..${V - 1}).`);
  }
}

/**
 * A CpuLlama-compatible forward (same `forward`, `position`, `resetCache`) with LoRA. The
 * adapter is read live: training it in place changes the next forward.
 * @example
 *   const model = withLora(cpu, lora);
 *   const logits = model.forward(promptIds); // (V) of the last token
 *   const next = model.forward([argmax(logits)]);
 */
export class CpuLoraLlama {
  readonly config: LlamaConfig;
  private readonly kCache: Float32Array[];
  private readonly vCache: Float32Array[];
  private readonly invFreq: Float64Array;
  private pos = 0;

  constructor(readonly base: CpuBase, readonly lora: LoraWeights) {
    this.config = base.config;
    if (lora.layers.length !== base.config.numLayers) {
      throw new InvalidInputError(`The adapter has ${lora.layers.length} layers; the model has ${base.config.numLayers}.`);
    }
    const kvSize = base.maxContext * base.config.numKvHeads * base.config.headDim;
    this.kCache = base.weights.layers.map(() => new Float32Array(kvSize));
    this.vCache = base.weights.layers.map(() => new Float32Array(kvSize));
    this.invFreq = ropeInvFreq(base.config);
  }

  get position(): number {
    return this.pos;
  }

  resetCache(): void {
    this.pos = 0;
  }

  /** As CpuLlama.forward: logits (V) of the last token, or (T, V) with `allLogits`. */
  forward(ids: number[], opts: { allLogits?: boolean } = {}): Float32Array {
    const cfg = this.config;
    const { hiddenSize: C, vocabSize: V } = cfg;
    const T = ids.length;
    if (T === 0) throw new InvalidInputError('forward: no tokens.');
    if (this.pos + T > this.base.maxContext) {
      throw new InvalidInputError(`Sequence of ${this.pos + T} tokens exceeds the context of ${this.base.maxContext}.`);
    }
    checkIds(ids, V);
    const start = this.pos;
    const w = this.base.weights;
    const x = new Float32Array(T * C); // (T, C) residual stream
    for (let t = 0; t < T; t++) x.set(w.embed.subarray(ids[t] * C, (ids[t] + 1) * C), t * C);
    const { cos, sin } = ropeTables(this.invFreq, start, T);
    const ws = new LayerWorkspace(cfg, T, { training: false, rank: this.lora.config.rank, targets: this.lora.config.targets });
    const ctx = { cfg, cos, sin, scale: this.lora.scale };
    for (let l = 0; l < cfg.numLayers; l++) {
      layerForward(ctx, ws, w.layers[l], this.lora.layers[l], x, start, T, this.kCache[l], this.vCache[l], false);
    }
    this.pos += T;
    const rows = opts.allLogits ? T : 1;
    const first = T - rows;
    const hidden = new Float32Array(rows * C);
    rmsnorm(hidden, x.subarray(first * C), w.norm, rows, C, cfg.rmsNormEps);
    const logits = new Float32Array(rows * V);
    matmul(logits, hidden, w.lmHead, rows, C, V);
    return logits;
  }
}

/**
 * Attaches adapters to a CpuLlama for generation (see CpuLoraLlama).
 * @example const logits = withLora(cpu, lora).forward(ids, { allLogits: true });
 */
export function withLora(base: CpuBase, lora: LoraWeights): CpuLoraLlama {
  return new CpuLoraLlama(base, lora);
}
