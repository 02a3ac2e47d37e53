/**
 * Adam over a fixed list of f32 parameter tensors (the LoRA A/B matrices), as torch.optim.AdamW:
 * bias-corrected moments, DECOUPLED weight decay (p *= 1 - lr * wd before the Adam update; with
 * wd = 0 this is exactly torch.optim.Adam), and optional global gradient-norm clipping as
 * torch.nn.utils.clip_grad_norm_ (scale = maxNorm / (norm + 1e-6) when norm > maxNorm).
 * Moments are stored in f32 like the GPU buffers; each update is computed in f64.
 */

export interface AdamOptions {
  lr: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  /** Decoupled (AdamW) weight decay; default 0. */
  weightDecay?: number;
  /** Clip the global L2 norm of all gradients to this value; undefined = no clipping. */
  maxGradNorm?: number;
}

export interface AdamStepInfo {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** Factor the gradients were scaled by (1 when not clipped). */
  clipScale: number;
  /** Step count after this step (1 after the first). */
  step: number;
}

/** Global L2 norm over a list of tensors (f64 sum). */
export function globalNorm(tensors: readonly Float32Array[]): number {
  let ss = 0;
  for (const g of tensors) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  return Math.sqrt(ss);
}

/**
 * @example
 *   const adam = new Adam(loraParams(lora));
 *   adam.step(loraParams(grads), { lr: 1e-4 }); // updates the params in place
 *   adam.reset(); // moments and step count back to 0
 */
export class Adam {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private t = 0;

  constructor(private readonly params: readonly Float32Array[]) {
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }

  /** Steps taken since construction or the last reset. */
  get stepCount(): number {
    return this.t;
  }

  /** Zeroes both moments and the step count (the next step is a first step again). */
  reset(): void {
    for (const a of this.m) a.fill(0);
    for (const a of this.v) a.fill(0);
    this.t = 0;
  }

  /** One update of every parameter from `grads` (same order and sizes as the params; not modified). */
  step(grads: readonly Float32Array[], opts: AdamOptions): AdamStepInfo {
    const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, maxGradNorm } = opts;
    if (grads.length !== this.params.length || grads.some((g, i) => g.length !== this.params[i].length)) {
      throw new RangeError('Adam.step: gradients do not match the parameters.');
    }
    const gradNorm = globalNorm(grads);
    const clipScale = maxGradNorm !== undefined && gradNorm > maxGradNorm ? maxGradNorm / (gradNorm + 1e-6) : 1;
    this.t += 1;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    const decay = 1 - lr * weightDecay;
    for (let j = 0; j < this.params.length; j++) {
      const p = this.params[j], g = grads[j], m = this.m[j], v = this.v[j];
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * clipScale;
        const mi = beta1 * m[i] + (1 - beta1) * gi;
        const vi = beta2 * v[i] + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      }
    }
    return { gradNorm, clipScale, step: this.t };
  }
}
