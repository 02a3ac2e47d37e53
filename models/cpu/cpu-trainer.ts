/**
 * Test-time training on the CPU reference path: LoRA gradients through the whole frozen model and
 * Adam on the adapters. The oracle for the WebGPU trainer.
 *
 * One step, in order (the GPU port must keep it):
 *   forward   x0 = embed(ids); for l: save x_l (T, C); x_{l+1} = layer_l(x_l)   (no activations kept)
 *   head      rows R = {t : mask[t+1] = 1}; h = rmsnorm(x_L[R]); logits = h lmHead^T (R, V);
 *             loss = mean CE(logits, ids[t+1]); dlogits; dh = dlogits lmHead; dx_L[R] = rmsnorm^T(dh)
 *   backward  for l = L-1..0: recompute layer_l from x_l saving (xn1, q, k after RoPE, v, probs,
 *             att, x1, xn2, gate, up, act, xa per target); then layerBackward: dx_l from dx_{l+1},
 *             LoRA dA/dB accumulate
 *   update    Adam on [A, B] of every (layer, target)
 * Peak activation memory: (L + 1) x (T, C) checkpoints + one layer's activations (incl. (H, T, T) probs).
 */
import { validateTrainingSequence } from '../ttt/validate.ts';
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import { loraPairs, loraParams, zeroB, zeroLora, type LoraWeights } from '../lora/adapter.ts';
import { Adam, type AdamOptions, type AdamStepInfo } from '../optim/adam.ts';
import { ropeInvFreq, ropeTables } from '../rope.ts';
import { withLora, type CpuBase, type CpuLlama } from './cpu-llama.ts';
import { LayerWorkspace, layerBackward, layerForward, type LayerContext } from './layer.ts';
import { crossEntropyForwardBackward, matmulBackwardInput, rmsnormBackward } from './ops-backward.ts';
import { embedding, matmul, rmsnorm } from './ops.ts';

export interface TrainOptions extends AdamOptions {
  /** Adam steps; 0 only measures the loss. */
  steps: number;
  signal?: AbortSignal;
}

export interface TrainStepEvent {
  /** 1-based step just applied. */
  step: number;
  steps: number;
  /** Loss before this step's update. */
  loss: number;
  gradNorm: number;
  clipScale: number;
  /** Wall time of this step (forward + recompute + backward + update), ms. */
  ms: number;
}

export interface TrainResult {
  /** Loss before any update (= losses[0] when steps > 0). */
  lossAtStart: number;
  /** Loss before each step. */
  losses: number[];
  /** Loss after the last step. */
  finalLoss: number;
  /** Number of predicted tokens in the loss (mask[t] = 1, t >= 1). */
  tokensTrained: number;
  timings: { totalMs: number; stepMs: number[] };
}

export interface LossAndGrads {
  loss: number;
  /** d loss / d A and d loss / d B, in the adapter's layout. */
  grads: LoraWeights;
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
/** A macrotask boundary, so an abort from a message or timer can land between steps. */
const yieldToEventLoop = () => new Promise<void>((r) => setTimeout(r, 0));

/**
 * @example
 *   const cpu = await CpuLlama.load(ckpt.config, ckpt, { weights: 'f32', maxContext: 1024 });
 *   const trainer = new CpuTrainer(cpu, initLora(cpu.config, DEFAULT_LORA, 0));
 *   const r = await trainer.train(ids, mask, { steps: 3, lr: 1e-4 }, (e) => console.log(e.loss));
 *   trainer.generator().forward(promptIds); // adapted model
 *   trainer.reset(); // back to the base model
 */
export class CpuTrainer {
  private readonly adam: Adam;
  private readonly grads: LoraWeights;
  private readonly invFreq: Float64Array;
  private ws: LayerWorkspace | null = null;
  /** A as attached, so reset() makes the next run independent of earlier ones. */
  private readonly initialA: Float32Array[];

  constructor(readonly base: CpuBase, readonly lora: LoraWeights) {
    if (lora.layers.length !== base.config.numLayers) {
      throw new InvalidInputError(`The adapter has ${lora.layers.length} layers; the model has ${base.config.numLayers}.`);
    }
    this.adam = new Adam(loraParams(lora));
    this.grads = zeroLora(base.config, lora.config);
    this.invFreq = ropeInvFreq(base.config);
    this.initialA = [...loraPairs(lora)].map(({ pair }) => pair.A.slice());
  }

  /** The adapted model for generation (reads the live adapter). */
  generator(): CpuLlama {
    return withLora(this.base, this.lora);
  }

  /**
   * B = 0 (the model is the base model again, bit for bit), Adam moments cleared, and A back to
   * its value when attached, so the next train() repeats a fresh run exactly.
   */
  reset(): void {
    zeroB(this.lora);
    [...loraPairs(this.lora)].forEach(({ pair }, i) => pair.A.set(this.initialA[i]));
    this.adam.reset();
  }

  /**
   * Checks a training sequence; returns the number of predicted tokens. InvalidInputError for an
   * empty or too long sequence, ids outside the vocabulary, a mask of another length or with
   * values other than 0/1, or a mask that selects no token to predict.
   */
  validate(ids: ArrayLike<number>, lossMask: ArrayLike<number>): number {
    return validateTrainingSequence(ids, lossMask, this.base.maxContext, this.base.config.vocabSize);
  }

  /** Loss only (one forward pass), at the current adapter or `lora`. */
  loss(ids: ArrayLike<number>, lossMask: ArrayLike<number>, lora: LoraWeights = this.lora): number {
    this.validate(ids, lossMask);
    return this.run(ids, lossMask, lora, null);
  }

  /**
   * Loss and LoRA gradients at `lora` (default: the trainer's adapter), in fresh arrays.
   * @example const { loss, grads } = trainer.lossAndGrads(ids, mask);
   */
  lossAndGrads(ids: ArrayLike<number>, lossMask: ArrayLike<number>, lora: LoraWeights = this.lora): LossAndGrads {
    this.validate(ids, lossMask);
    const grads = zeroLora(this.base.config, lora.config);
    const loss = this.run(ids, lossMask, lora, grads);
    return { loss, grads };
  }

  /**
   * `steps` Adam steps on the adapter. Cancellable through `opts.signal` between steps: AbortError,
   * with every started step either applied whole or not at all (the adapter stays consistent and
   * `reset()` clears it).
   */
  async train(ids: ArrayLike<number>, lossMask: ArrayLike<number>, opts: TrainOptions, onStep?: (e: TrainStepEvent) => void): Promise<TrainResult> {
    checkTrainOptions(opts);
    const tokensTrained = this.validate(ids, lossMask);
    const { signal } = opts;
    const t0 = now();
    const losses: number[] = [];
    const stepMs: number[] = [];
    const params = loraParams(this.grads);
    for (let step = 1; step <= opts.steps; step++) {
      throwIfAborted(signal);
      const s0 = now();
      for (const g of params) g.fill(0);
      const loss = this.run(ids, lossMask, this.lora, this.grads);
      throwIfAborted(signal); // cancelled during the pass: drop it, apply nothing
      const info: AdamStepInfo = this.adam.step(params, opts);
      losses.push(loss);
      stepMs.push(now() - s0);
      onStep?.({ step, steps: opts.steps, loss, gradNorm: info.gradNorm, clipScale: info.clipScale, ms: stepMs[stepMs.length - 1] });
      await yieldToEventLoop();
    }
    throwIfAborted(signal);
    const finalLoss = this.run(ids, lossMask, this.lora, null);
    return {
      lossAtStart: losses.length ? losses[0] : finalLoss,
      losses,
      finalLoss,
      tokensTrained,
      timings: { totalMs: now() - t0, stepMs },
    };
  }

  /** Forward (+ backward into `grads` when given) of a validated sequence; returns the loss. */
  private run(ids: ArrayLike<number>, lossMask: ArrayLike<number>, lora: LoraWeights, grads: LoraWeights | null): number {
    const cfg = this.base.config;
    const w = this.base.weights;
    const { hiddenSize: C, numLayers: NL } = cfg;
    const T = ids.length;
    const ws = this.workspace(T, lora);
    const { cos, sin } = ropeTables(this.invFreq, 0, T);
    const ctx: LayerContext = { cfg, cos, sin, scale: lora.scale };
    // Forward, keeping only each layer's input (gradient checkpointing).
    const xs: Float32Array[] = [];
    const x = new Float32Array(T * C); // (T, C)
    embedding(x, w.embed, ids, C);
    for (let l = 0; l < NL; l++) {
      if (grads) xs.push(x.slice());
      layerForward(ctx, ws, w.layers[l], lora.layers[l], x, 0, T, ws.k, ws.v, false);
    }
    const { loss, dx } = this.head(x, ids, lossMask, grads !== null);
    if (!grads || !dx) return loss;
    // Backward, layer by layer: recompute the layer from its input, then go back through it.
    for (let l = NL - 1; l >= 0; l--) {
      x.set(xs[l]);
      layerForward(ctx, ws, w.layers[l], lora.layers[l], x, 0, T, ws.k, ws.v, true);
      layerBackward(ctx, ws, w.layers[l], lora.layers[l], grads.layers[l], xs[l], dx, T);
    }
    return loss;
  }

  /**
   * Final norm, lm_head and masked cross-entropy over the rows that predict a masked token only
   * (the (T, V) logits of an 8B vocabulary are the largest activation otherwise).
   * Returns the loss and, with `backward`, dx (T, C) = d loss / d x_L.
   */
  private head(x: Float32Array, ids: ArrayLike<number>, lossMask: ArrayLike<number>, backward: boolean): { loss: number; dx: Float32Array | null } {
    const cfg = this.base.config;
    const w = this.base.weights;
    const { hiddenSize: C, vocabSize: V } = cfg;
    const T = ids.length;
    const rows: number[] = [];
    for (let t = 0; t + 1 < T; t++) if (lossMask[t + 1] === 1) rows.push(t);
    const R = rows.length;
    const xr = new Float32Array(R * C); // (R, C)
    rows.forEach((t, i) => xr.set(x.subarray(t * C, (t + 1) * C), i * C));
    const h = new Float32Array(R * C);
    rmsnorm(h, xr, w.norm, R, C, cfg.rmsNormEps);
    const logits = new Float32Array(R * V); // (R, V)
    matmul(logits, h, w.lmHead, R, C, V);
    const targets = rows.map((t) => ids[t + 1]);
    const dlogits = new Float32Array(R * V);
    const loss = crossEntropyForwardBackward(dlogits, logits, targets, new Float32Array(R).fill(1), R, V);
    if (!backward) return { loss, dx: null };
    const dh = new Float32Array(R * C);
    matmulBackwardInput(dh, dlogits, w.lmHead, R, C, V);
    const dxr = new Float32Array(R * C);
    rmsnormBackward(dxr, dh, xr, w.norm, R, C, cfg.rmsNormEps);
    const dx = new Float32Array(T * C);
    rows.forEach((t, i) => dx.set(dxr.subarray(i * C, (i + 1) * C), t * C));
    return { loss, dx };
  }

  private workspace(T: number, lora: LoraWeights): LayerWorkspace {
    const ok = this.ws && this.ws.T === T && lora.config.targets.every((p) => this.ws!.xa[p]?.length === T * lora.config.rank);
    if (!ok) this.ws = new LayerWorkspace(this.base.config, T, { training: true, rank: lora.config.rank, targets: lora.config.targets });
    return this.ws!;
  }
}

function checkTrainOptions(o: TrainOptions): void {
  const bad = (what: string) => { throw new InvalidInputError(`train: ${what}.`); };
  if (!Number.isInteger(o.steps) || o.steps < 0) bad(`steps must be a non-negative integer, got ${o.steps}`);
  if (!Number.isFinite(o.lr) || o.lr < 0) bad(`lr must be a non-negative number, got ${o.lr}`);
  for (const [k, v] of [['beta1', o.beta1], ['beta2', o.beta2]] as const) {
    if (v !== undefined && !(v >= 0 && v < 1)) bad(`${k} must be in [0, 1), got ${v}`);
  }
  if (o.eps !== undefined && !(o.eps > 0)) bad(`eps must be positive, got ${o.eps}`);
  if (o.weightDecay !== undefined && !(o.weightDecay >= 0)) bad(`weightDecay must be >= 0, got ${o.weightDecay}`);
  if (o.maxGradNorm !== undefined && !(o.maxGradNorm > 0)) bad(`maxGradNorm must be positive, got ${o.maxGradNorm}`);
}
