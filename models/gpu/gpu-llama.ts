import type { LlamaConfig } from '../config.ts';
import type { Checkpoint } from '../checkpoint.ts';
import { checkpointTensors, isTensorSource, type TensorSource } from '../cache/tensor-source.ts';
import type { LmHeadFormat, MemoryReport, WeightFormat } from '../api.ts';
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import { ropeInvFreq, ropeTables } from '../rope.ts';
import { embedFormat, layerWeightNames, lmHeadName, resolveLmHead, type MatrixFormat } from '../weights-plan.ts';
import { GpuAllocator, usageOf } from './allocator.ts';
import { allLogitsBytes, allLogitsRows, defaultMaxBatch, forwardActivationBuffers, kvSlabs, loraScratchBytes, packUniform, qkvBufferName, qkvLayout, uniformKey, type QkvLayout } from './buffer-sizes.ts';
import type { GpuContext } from './device.ts';
import { type GpuMatrix, quantizerKernel, WeightUploader } from './gpu-weights.ts';
import { LayerEncoder } from './gpu-layer.ts';
import type { GpuLora, LoraSlot } from './gpu-lora.ts';
import { kernelStep, prepareSteps } from './deferred-step.ts';
import { grid1D, PipelineCache } from './pipelines.ts';
import { gemmGrid, gemmParams, gemmWgsl, pickGemmTile } from './wgsl/gemm.ts';
import type { ShaderOptions } from './wgsl/common.ts';
import { argmaxWgsl } from './wgsl/argmax.ts';
import { forwardPipelineSources } from './forward-pipelines.ts';
import { addWgsl, embedWgsl, rmsnormWgsl } from './wgsl/elementwise.ts';
import { matmulParams, matmulTiledWgsl, matvecLanes, matvecRows, matvecWgsl } from './wgsl/matmul.ts';
import { assertPlanFits, planMemory } from '../memory-plan.ts';

export interface GpuLayer {
  inputNorm: GPUBuffer; postNorm: GPUBuffer;
  q: GpuMatrix; k: GpuMatrix; v: GpuMatrix; o: GpuMatrix;
  /** q, k and v as one matrix (their buffers; q, k, v are ranges of it), read by decode's one qkv matvec; null where it would not fit one binding. */
  qkv: { W: GpuMatrix; layout: QkvLayout } | null;
  gate: GpuMatrix; up: GpuMatrix; down: GpuMatrix;
  kCache: GPUBufferBinding; vCache: GPUBufferBinding; // (S, KV, D), in a KV slab (kvSlabs)
}

/** GPU work issued so far (cumulative; GpuLlama.counters): what decode time goes to on small models. */
export interface GpuCounters {
  dispatches: number;
  passes: number;
  submits: number;
  /** Buffer maps awaited (each one a CPU wait for the GPU). */
  readbacks: number;
  /** Distinct pipelines compiled for this model. */
  pipelines: number;
}

export interface MatmulStepOptions {
  single?: boolean;
  out?: 'T' | 'f32';
  /** Row stride of y (default W.N): y (T, ldy) holds W's rows as columns. */
  ldy?: number;
  /** Run-parameter buffer to bind (the trainer has its own); default the forward's. */
  run?: GPUBuffer;
  /** y = x W^T + residual (T, N), the residual add folded in (each row block adds its own columns). */
  residual?: GPUBuffer | GPUBufferBinding;
  /** False: no matvec step (and no compile) for T = 1, where a fused step of the caller's takes over. */
  vec?: boolean;
  /** Compile the T > 1 kernels (tiled matmul, residual add) on first need (deferred-step.ts). */
  defer?: boolean;
}

/**
 * Prompts of up to this many tokens run one token at a time through the decode kernels (see
 * GpuLlama.run); longer ones through the tiled prefill kernels.
 */
export const DECODE_PROMPT_TOKENS = 8;

/** One dispatch of a forward pass; grid computed per call from T (tokens) and P (keys). */
export interface Step {
  label: string;
  pipeline: GPUComputePipeline;
  bind: GPUBindGroup;
  grid: (T: number, P: number) => [number, number, number];
  /** Present until a deferred pipeline is compiled (deferred-step.ts): run it before encoding. */
  prepare?: () => Promise<void>;
}

/** Activation buffers, sized for B = maxBatch tokens (a chunk of T <= B uses the first T rows). */
interface Activations {
  ids: GPUBuffer; // (B) u32 token ids
  run: GPUBuffer; // Run uniform: T, start, P = start + T
  x: GPUBuffer; // (B, C) residual stream: each layer's input and output
  xn: GPUBuffer; // (B, C) RMSNorm output (both norms of a layer; the final norm of all rows)
  q: GPUBuffer; // (B, H*D)
  k: GPUBuffer; // (B, KV*D) before RoPE
  v: GPUBuffer; // (B, KV*D)
  att: GPUBuffer; // (B, H*D)
  proj: GPUBuffer; // (B, C) residual after attention (x1 of the layer)
  gate: GPUBuffer; // (B, F), SwiGLU in place
  up: GPUBuffer; // (B, F)
  scores: GPUBuffer; // (H, T, P) f32 scores of a chunk, room for (H, B, S = maxContext)
  hidden: GPUBuffer; // (1, C) final norm of the last row
  logits: GPUBuffer; // (V) f32 logits of the last row
  argmax: GPUBuffer; // [index, max bits] of those logits (forwardArgmax)
  readback: GPUBuffer;
}

export interface GpuLoadOptions {
  weights: WeightFormat;
  /** The lm_head's format (and a tied embedding's, one shared buffer); default resolveLmHead(weights). */
  lmHead?: LmHeadFormat;
  maxContext: number;
  /** Tokens per prefill chunk; default from the attention-score budget (tests set it small). */
  maxBatch?: number;
  signal?: AbortSignal;
  onBytes?: (tensor: string, bytes: number) => void;
}

/**
 * The Llama forward pass on WebGPU: embeddings, per layer RMSNorm -> q/k/v (RoPE, KV cache) ->
 * causal GQA attention -> o -> residual -> RMSNorm -> SwiGLU MLP -> residual, final norm, lm_head.
 * All buffers and bind groups are made once at load; a call only writes ids and run params.
 */
export class GpuLlama {
  readonly config: LlamaConfig;
  readonly ctx: GpuContext;
  readonly alloc: GpuAllocator;
  readonly maxContext: number;
  readonly maxBatch: number;
  readonly weightFormat: WeightFormat;
  /** The lm_head's format (a tied embedding shares its buffer, so it is the embedding's too). */
  readonly lmHeadFormat: LmHeadFormat;
  /** @internal shared with GpuTrainer */
  readonly device: GPUDevice;
  /** @internal */
  readonly shader: ShaderOptions;
  private pos = 0;
  /** @internal the frozen weights, shared with GpuTrainer */
  layers: GpuLayer[] = [];
  private readonly kvSlabs: GPUBuffer[] = [];
  private readonly counted = { dispatches: 0, passes: 0, submits: 0, readbacks: 0 };
  embed!: GpuMatrix;
  lmHead!: GpuMatrix;
  norm!: GPUBuffer;
  private act!: Activations;
  /** @internal */
  ropeCos!: GPUBuffer;
  /** @internal */
  ropeSin!: GPUBuffer;
  private body: Step[] = [];
  private tailLast: Step[] = [];
  private argmaxSteps: Step[] = [];
  private tailAll: Step[] = [];
  private logitsAll: GPUBuffer | null = null;
  private readonly uniforms = new Map<string, GPUBuffer>();
  /** Attached LoRA adapter (its steps run only while `loraEnabled`). */
  lora: GpuLora | null = null;
  private xa: GPUBuffer | null = null; // (maxBatch, r) f32 scratch: x A^T
  /** When false the LoRA steps are skipped, so the logits are exactly the base model's. */
  loraEnabled = false;
  /** @internal */
  readonly pipelines: PipelineCache;
  private disposed = false;

  private constructor(config: LlamaConfig, ctx: GpuContext, opts: GpuLoadOptions) {
    this.config = config;
    this.ctx = ctx;
    this.device = ctx.device;
    this.alloc = new GpuAllocator(ctx.device);
    this.pipelines = new PipelineCache(ctx.device);
    this.maxContext = opts.maxContext;
    this.weightFormat = opts.weights;
    this.lmHeadFormat = resolveLmHead(opts.weights, opts.lmHead);
    this.shader = { f16: ctx.f16 };
    this.maxBatch = opts.maxBatch ?? defaultMaxBatch(config, opts.maxContext, ctx.limits);
  }

  get precision(): 'f16' | 'f32' {
    return this.shader.f16 ? 'f16' : 'f32';
  }

  /**
   * Loads weights onto the GPU and builds the pass: from a checkpoint (quantizing if asked), or
   * from a TensorSource (models/cache/tensor-source.ts: ready-made cached tensors, write-through).
   */
  static async load(ckpt: Checkpoint | TensorSource, ctx: GpuContext, opts: GpuLoadOptions): Promise<GpuLlama> {
    const src = isTensorSource(ckpt) ? ckpt : checkpointTensors(ckpt);
    const m = new GpuLlama(src.config, ctx, opts);
    // Refuse what cannot fit (DeviceLimitsError) before anything is allocated.
    assertPlanFits(planMemory(src.config, { weights: opts.weights, lmHead: m.lmHeadFormat, precision: m.precision, maxContext: m.maxContext, maxBatch: m.maxBatch, limits: ctx.limits }), ctx.limits);
    try {
      // Every decode kernel compiles while the weights load (buildSteps then finds them ready),
      // after the quantizers the upload needs at once (a device compiles one after another).
      const f = { layers: opts.weights, embed: embedFormat(src.config, opts.weights, m.lmHeadFormat), lmHead: src.config.tieWordEmbeddings ? embedFormat(src.config, opts.weights, m.lmHeadFormat) : m.lmHeadFormat };
      const fromSource = (name: string, fmt: MatrixFormat): fmt is 'q4' | 'q8' => fmt !== 'f32' && !src.ready?.(name);
      const quantized = [[layerWeightNames(0).q, f.layers], ['model.embed_tokens.weight', f.embed], [lmHeadName(src.config), f.lmHead]] as const;
      for (const [name, fmt] of quantized) if (fromSource(name, fmt)) { const k = quantizerKernel(fmt); m.pipelines.get(k.label, k.code).catch(() => {}); }
      for (const { label, code } of forwardPipelineSources(m.shader, f, src.config)) m.pipelines.get(label, code).catch(() => {}); // failures surface where buildSteps awaits them
      await m.upload(src, opts);
      await m.allocateActivations();
      await m.buildSteps();
      return m;
    } catch (e) {
      m.dispose(); // never leave a half-loaded model usable or its memory held
      throw e;
    }
  }

  private async upload(src: TensorSource, opts: GpuLoadOptions): Promise<void> {
    const c = this.config;
    const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = c;
    const up = new WeightUploader(this.device, this.alloc, this.pipelines, src, opts.onBytes ?? (() => {}), opts.signal, this.ctx.limits);
    const fmt = opts.weights;
    const actBytes = this.shader.f16 ? 2 : 4;
    const kv = kvSlabs(c, this.maxContext, actBytes, this.ctx.limits);
    const qkv = qkvLayout(c, fmt, this.ctx.limits);
    let slab: GPUBuffer | null = null;
    for (let l = 0; l < c.numLayers; l++) {
      const n = layerWeightNames(l);
      const si = kv.slabs.findIndex((x) => x.first === l);
      if (si >= 0) {
        slab = await this.alloc.guarded(`KV cache of layers ${l}..${l + kv.slabs[si].count - 1}`, () => this.alloc.create(`kv cache ${si}`, kv.slabs[si].bytes, 'kvCache'));
        this.kvSlabs.push(slab);
      }
      const i = l - kv.slabs[this.kvSlabs.length - 1].first, buffer = slab!;
      const inputNorm = await up.vector(n.inputNorm);
      const fused = qkv ? await up.qkv(qkvBufferName(l), [n.q, n.k, n.v], C, fmt, qkv) : null;
      const [q, k, v] = fused ? fused.parts : [await up.matrix(n.q, H * D, C, fmt), await up.matrix(n.k, KV * D, C, fmt), await up.matrix(n.v, KV * D, C, fmt)];
      const layer: GpuLayer = {
        inputNorm, q, k, v,
        qkv: fused && qkv ? { W: fused.fused, layout: qkv } : null,
        o: await up.matrix(n.o, C, H * D, fmt),
        postNorm: await up.vector(n.postNorm),
        gate: await up.matrix(n.gate, F, C, fmt),
        up: await up.matrix(n.up, F, C, fmt),
        down: await up.matrix(n.down, C, F, fmt),
        kCache: { buffer, offset: 2 * i * kv.stride, size: kv.bytes },
        vCache: { buffer, offset: (2 * i + 1) * kv.stride, size: kv.bytes },
      };
      this.layers.push(layer);
    }
    // A tied embedding is the lm_head: one buffer in the head's format serves the lookup and the
    // head (no second copy; only small models tie, the 8B model's head is its own matrix).
    this.embed = await up.matrix('model.embed_tokens.weight', V, C, embedFormat(c, fmt, this.lmHeadFormat));
    this.lmHead = c.tieWordEmbeddings ? this.embed : await up.matrix(lmHeadName(c), V, C, this.lmHeadFormat);
    this.norm = await up.vector('model.norm.weight');
    await up.finish();
    throwIfAborted(opts.signal);
  }

  private async allocateActivations(): Promise<void> {
    const c = this.config;
    // Sizes from buffer-sizes.ts, which the memory plan (models/memory-plan.ts) reads too.
    const sizes = forwardActivationBuffers(c, this.maxBatch, this.maxContext, this.shader.f16 ? 2 : 4);
    const a = (label: keyof typeof sizes) => this.alloc.create(label, sizes[label].bytes, 'activations', usageOf(sizes[label].kind));
    this.act = await this.alloc.guarded('activations', () => ({
      ids: a('ids'), run: a('run params'),
      x: a('x'), xn: a('xn'), q: a('q'), k: a('k'), v: a('v'), att: a('att'), proj: a('proj'),
      gate: a('gate'), up: a('up'), scores: a('scores'), hidden: a('hidden'),
      logits: a('logits'), argmax: a('argmax'), readback: a('logits readback'),
    }));
    const inv = ropeInvFreq(c);
    const { cos, sin } = ropeTables(inv, 0, this.maxContext);
    this.ropeCos = this.alloc.create('rope cos', cos.byteLength, 'activations');
    this.ropeSin = this.alloc.create('rope sin', sin.byteLength, 'activations');
    this.device.queue.writeBuffer(this.ropeCos, 0, cos);
    this.device.queue.writeBuffer(this.ropeSin, 0, sin);
  }

  /** A small uniform buffer with these contents (cached: step lists are rebuilt when LoRA attaches). */
  /** @internal */
  uniform(label: string, words: ArrayLike<number> | ArrayBuffer, floatAt: number[] = []): GPUBuffer {
    const data = packUniform(words, floatAt);
    const key = uniformKey(data);
    let buf = this.uniforms.get(key);
    if (!buf) {
      buf = this.alloc.create(label, data.byteLength, 'activations', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.device.queue.writeBuffer(buf, 0, data);
      this.uniforms.set(key, buf);
    }
    return buf;
  }

  /** @internal True for a buffer of the shared uniform cache (a trainer's dispose keeps those). */
  isSharedUniform(buffer: GPUBuffer): boolean {
    for (const u of this.uniforms.values()) if (u === buffer) return true;
    return false;
  }

  /** @internal */
  bind(pipeline: GPUComputePipeline, buffers: (GPUBuffer | GPUBufferBinding | null)[]): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = [];
    buffers.forEach((b, i) => { if (b) entries.push({ binding: i, resource: 'buffer' in b ? b : { buffer: b } }); });
    return this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  }

  /**
   * The LoRA term of a projection as two small matmuls after the frozen one:
   * xa (T, r) = x A^T, then y (T, N) += scale * xa B^T. Skipped while LoRA is disabled, unless
   * `gated: false` (training always runs it and keeps xa for the backward pass).
   * @internal shared with GpuTrainer, which passes its own run buffer, xa and token bound.
   */
  async loraSteps(label: string, x: GPUBuffer | GPUBufferBinding, s: LoraSlot, y: GPUBuffer | GPUBufferBinding, o: { run?: GPUBuffer; xa?: GPUBuffer | GPUBufferBinding; maxTokens?: number; gated?: boolean } = {}): Promise<Step[]> {
    const lora = this.lora!, xa = o.xa ?? this.xa!, r = lora.config.rank, run = o.run ?? this.act.run;
    const maxT = o.maxTokens ?? this.maxBatch;
    const down = { ...this.shader, transA: false, transB: true, a: 'T', b: 'f32', c: 'f32', tile: pickGemmTile(maxT, r) } as const;
    const up = { ...this.shader, transA: false, transB: true, a: 'f32', b: 'f32', c: 'T', tile: pickGemmTile(maxT, s.outDim) } as const;
    const pDown = await this.pipelines.get('lora xa', gemmWgsl(down));
    const pUp = await this.pipelines.get('lora y', gemmWgsl(up));
    const gDown = this.uniform('lora xa params', gemmParams({ M: 'T', N: r, K: s.inDim })); // xa (T, r) = x A^T
    const gUp = this.uniform('lora y params', gemmParams({ M: 'T', N: s.outDim, K: r, alpha: lora.scale, beta: 1 })); // y (T, N) += s xa B^T
    const gated = o.gated ?? true;
    const on = (grid: (T: number) => [number, number, number]) => (T: number): [number, number, number] => (!gated || this.loraEnabled ? grid(T) : [0, 0, 0]);
    return [
      { label: `${label} lora xa`, pipeline: pDown, bind: this.bind(pDown, [run, gDown, x, lora.binding(lora.params, s, 'A'), xa]), grid: on((T) => gemmGrid(down.tile, T, r)) },
      { label: `${label} lora y`, pipeline: pUp, bind: this.bind(pUp, [run, gUp, xa, lora.binding(lora.params, s, 'B'), y]), grid: on((T) => gemmGrid(up.tile, T, s.outDim)) },
    ];
  }

  /** Attaches a LoRA adapter to the projections of every layer (enabled at once). */
  async attachLora(lora: GpuLora): Promise<void> {
    this.lora = lora;
    if (this.xa) this.alloc.destroy(this.xa);
    this.xa = this.alloc.create('lora xa', loraScratchBytes(this.maxBatch, lora.config.rank), 'lora');
    await this.buildSteps();
    this.loraEnabled = true;
  }

  /** Removes the adapter: the forward pass is the base model's again. */
  async detachLora(): Promise<void> {
    this.lora = null;
    this.loraEnabled = false;
    if (this.xa) this.alloc.destroy(this.xa);
    this.xa = null;
    await this.buildSteps();
  }

  /**
   * @internal Steps of y (T, N) = x (T, K) W^T for W (N, K): per row block of W (columns
   * r0..r0+rows of y), the tiled kernel and the matvec one, of which encode runs the matvec for
   * one row (or `single`) and the tiled kernel otherwise.
   */
  async matmul(label: string, x: GPUBuffer | GPUBufferBinding, W: GpuMatrix, y: GPUBuffer | GPUBufferBinding, opts: MatmulStepOptions = {}): Promise<Step[]> {
    const residual = opts.residual ?? null;
    const lanes = matvecLanes(W.K);
    const o = { ...this.shader, weights: W.kind, out: opts.out ?? 'T', residual: residual !== null, lanes } as const;
    const plus = residual ? ' + residual' : '';
    // The residual is folded into the matvec (decode: one dispatch fewer per projection); the tiled
    // kernel (T > 1) adds it in a step of its own: a tiled variant with it costs seconds of
    // shader compile on software adapters, and prefill is not bound by its dispatch count.
    const kernel = (label: string, code: string) => this.pipelines.kernel(label, code, opts.defer ?? false);
    const tiledP = await kernel(`matmul ${W.kind}`, matmulTiledWgsl({ ...o, residual: false }));
    const vecP = opts.vec === false ? null : await this.pipelines.get(`matvec ${W.kind}${plus}`, matvecWgsl(o));
    const vec = (T: number) => opts.single || T === 1;
    const steps: Step[] = [];
    W.blocks.forEach((b, i) => {
      const name = W.blocks.length === 1 ? label : `${label} #${i}`;
      const params = this.uniform(`${name} params`, matmulParams(b.rows, W.K, { single: opts.single, yOff: b.r0, ldy: opts.ldy ?? W.N }));
      const buffers = [opts.run ?? this.act.run, params, x, b.w, b.sc, y, residual];
      steps.push(kernelStep(name, tiledP, (p) => this.bind(p, buffers.slice(0, 6)), (T) => (vec(T) ? [0, 0, 0] : [Math.ceil(b.rows / 64), Math.ceil(T / 32), 1])));
      if (vecP) steps.push({ label: name, pipeline: vecP, bind: this.bind(vecP, buffers), grid: (T) => (vec(T) ? grid1D(b.rows, matvecRows(lanes)) : [0, 0, 0]) });
    });
    if (residual) {
      // T > 1: y += residual over the (T, ldy) output, after every block wrote its columns.
      const ldy = opts.ldy ?? W.N, addP = await kernel('add', addWgsl(this.shader));
      const width = this.uniform(ldy === this.config.hiddenSize ? 'width C' : `width ${ldy}`, [ldy]);
      steps.push(kernelStep(`${label} residual`, addP, (p) => this.bind(p, [opts.run ?? this.act.run, width, y, residual]), (T) => (vec(T) ? [0, 0, 0] : grid1D(T * ldy, 256))));
    }
    return steps;
  }

  /** @internal The embedding steps x (T, C) = rows of `E` for ids: one dispatch per row block. */
  async embedSteps(run: GPUBuffer, ids: GPUBuffer, x: GPUBuffer | GPUBufferBinding): Promise<Step[]> {
    const E = this.embed, C = this.config.hiddenSize;
    const p = await this.pipelines.get(`embed ${E.kind}`, embedWgsl({ ...this.shader, weights: E.kind }));
    return E.blocks.map((b, i) => ({
      label: E.blocks.length === 1 ? 'embed' : `embed #${i}`,
      pipeline: p,
      bind: this.bind(p, [run, this.uniform('embed', [C, b.r0, b.rows, 0]), ids, b.w, b.sc, x]),
      grid: (T: number) => grid1D(T * C, 256),
    }));
  }

  private async buildSteps(): Promise<void> {
    const c = this.config, C = c.hiddenSize, A = this.act;
    // Deferred: the kernels only several-token prompts dispatch compile on first need (run, warmUp).
    const layer = await LayerEncoder.create(this, true);
    const norm = await this.pipelines.get('rmsnorm', rmsnormWgsl(this.shader));
    const normLastP = this.uniform('norm last params', [C, 1, c.rmsNormEps, 0], [2]);
    const steps: Step[] = await this.embedSteps(A.run, A.ids, A.x); // x (T, C)
    for (let l = 0; l < c.numLayers; l++) {
      const L = this.layers[l];
      // In place on x; the residual after attention lives in proj, SwiGLU runs in place on gate.
      const buffers = {
        xIn: A.x, xn1: A.xn, q: A.q, k: A.k, v: A.v, kCache: L.kCache, vCache: L.vCache, scores: A.scores, att: A.att,
        x1: A.proj, xn2: A.xn, gate: A.gate, up: A.up, act: A.gate, xOut: A.x,
      };
      steps.push(...await layer.steps(l, L, buffers, { run: A.run, gated: true, maxTokens: this.maxBatch }));
    }
    this.body = steps;
    this.tailLast = [
      { label: 'final norm', pipeline: norm, bind: this.bind(norm, [A.run, normLastP, A.x, this.norm, A.hidden]), grid: () => [1, 1, 1] }, // hidden (1, C)
      ...await this.matmul('lm_head', A.hidden, this.lmHead, A.logits, { single: true, out: 'f32', defer: true }), // logits (V)
    ];
    const argmaxP = await this.pipelines.get('argmax', argmaxWgsl());
    this.argmaxSteps = [{ label: 'argmax', pipeline: argmaxP, bind: this.bind(argmaxP, [this.uniform('argmax n', [c.vocabSize]), A.logits, A.argmax]), grid: () => [1, 1, 1] }];
  }

  /**
   * Steps for logits at every position (tests, TTT): allocated on first use, for
   * allLogitsRows tokens (maxBatch, or fewer where (maxBatch, V) f32 would break the binding limit).
   */
  private async ensureAllLogits(): Promise<GPUBuffer> {
    if (this.logitsAll) return this.logitsAll;
    const c = this.config, A = this.act;
    const buf = this.alloc.create('logits all', allLogitsBytes(c, this.allLogitsRows), 'activations');
    const norm = await this.pipelines.get('rmsnorm', rmsnormWgsl(this.shader));
    const normP = this.uniform('norm params all', [c.hiddenSize, 0, c.rmsNormEps, 0], [2]);
    this.tailAll = [
      { label: 'final norm all', pipeline: norm, bind: this.bind(norm, [A.run, normP, A.x, this.norm, A.xn]), grid: (T) => [T, 1, 1] },
      ...await this.matmul('lm_head all', A.xn, this.lmHead, buf, { out: 'f32' }),
    ];
    this.logitsAll = buf;
    return buf;
  }

  get position(): number {
    return this.pos;
  }

  /** Tokens per chunk of an allLogits forward (its (rows, V) logits buffer within the binding limit). */
  private get allLogitsRows(): number {
    return allLogitsRows(this.config, this.maxBatch, this.ctx.limits);
  }

  /**
   * @internal The KV-cache slabs (kvSlabs): idle while training, where GpuTrainer places its
   * largest buffers (borrowFromPool). Training overwrites them; the next forward starts at 0.
   */
  get kvPool(): readonly GPUBuffer[] {
    return this.kvSlabs;
  }

  /** @internal The prefill score buffer (H, maxBatch, maxContext) f32: idle while training, GpuTrainer's attention probabilities. */
  get scoresBuffer(): GPUBuffer {
    return this.act.scores;
  }

  resetCache(): void {
    this.pos = 0;
  }

  /** Dispatches, passes, submits and readbacks of the forward passes so far, and pipelines compiled. */
  counters(): GpuCounters {
    return { ...this.counted, pipelines: this.pipelines.size };
  }

  /** @internal */
  encode(pass: GPUComputePassEncoder, steps: Step[], T: number, P: number): void {
    for (const st of steps) {
      const [x, y, z] = st.grid(T, P);
      if (x === 0) continue;
      this.counted.dispatches++;
      pass.setPipeline(st.pipeline);
      pass.setBindGroup(0, st.bind);
      pass.dispatchWorkgroups(x, y, z);
    }
  }

  /**
   * Copies `bytes` of `src` into a mappable buffer within `enc` (the forward's own command buffer:
   * one submit per token); `map` then waits for it and returns the floats.
   */
  private readInto(enc: GPUCommandEncoder, src: GPUBuffer, bytes: number): { map: () => Promise<Float32Array> } {
    const rb = bytes <= this.act.readback.size ? this.act.readback
      : this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(src, 0, rb, 0, bytes);
    return {
      map: async () => {
        this.counted.readbacks++;
        await Promise.race([rb.mapAsync(GPUMapMode.READ, 0, bytes), this.ctx.lost]);
        const out = new Float32Array(rb.getMappedRange(0, bytes).slice(0));
        rb.unmap();
        if (rb !== this.act.readback) rb.destroy();
        return out;
      },
    };
  }

  /**
   * Runs `ids` at positions position..position+T-1, appending to the KV cache; prompts longer
   * than maxBatch are run in chunks. Returns the last token's logits (V), or (T, V) with allLogits.
   */
  async forward(ids: number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    return this.run(ids, opts.allLogits ? 'all' : 'last');
  }

  /**
   * Runs `ids` like forward, then takes the argmax of the last token's logits on the GPU: greedy
   * decode reads back 4 bytes instead of V * 4 (513 kB at 128,256 tokens). Ties go to the lowest
   * id, as models/sampling.ts argmax.
   * @example const next = await gpuModel.forwardArgmax([id]);
   */
  async forwardArgmax(ids: number[]): Promise<number> {
    const bits = await this.run(ids, 'argmax');
    return new Uint32Array(bits.buffer, bits.byteOffset, 1)[0];
  }

  /** Forward of `ids`; reads back every row's logits, the last row's, or the last row's argmax (as its u32 bits). */
  private async run(ids: number[], out: 'all' | 'last' | 'argmax'): Promise<Float32Array> {
    if (this.disposed) throw new InvalidInputError('This model was disposed; load it again.');
    const { vocabSize: V } = this.config;
    const T = ids.length;
    if (T === 0) throw new InvalidInputError('forward: no tokens.');
    if (this.pos + T > this.maxContext) throw new InvalidInputError(`Sequence of ${this.pos + T} tokens exceeds the context of ${this.maxContext}.`);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new InvalidInputError(`Token id ${id} is outside the vocabulary (0..${V - 1}).`);
    }
    const all = out === 'all' ? new Float32Array(T * V) : null;
    const allBuf = all ? await this.ensureAllLogits() : null;
    // A short prompt runs token by token through the decode kernels: no wait for the prefill
    // kernels' compile (deferred), and at a few tokens hardly slower than one tiled pass.
    const byToken = !all && T <= DECODE_PROMPT_TOKENS;
    const step = all ? this.allLogitsRows : byToken ? 1 : this.maxBatch;
    let result: Float32Array | null = null;
    for (let c0 = 0; c0 < T; c0 += step) {
      const chunk = ids.slice(c0, c0 + step);
      const n = chunk.length, start = this.pos, P = start + n;
      const last = c0 + n >= T;
      const tail = all ? this.tailAll : last ? [...this.tailLast, ...(out === 'argmax' ? this.argmaxSteps : [])] : [];
      await prepareSteps(this.body, n, P);
      await prepareSteps(tail, n, P);
      this.device.queue.writeBuffer(this.act.ids, 0, new Uint32Array(chunk));
      this.device.queue.writeBuffer(this.act.run, 0, new Uint32Array([n, start, P, 0]));
      const enc = this.device.createCommandEncoder({ label: 'forward' });
      const pass = enc.beginComputePass();
      this.counted.passes++;
      this.encode(pass, this.body, n, P);
      this.encode(pass, tail, n, P);
      pass.end();
      const read = all && allBuf ? this.readInto(enc, allBuf, n * V * 4)
        : last ? (out === 'argmax' ? this.readInto(enc, this.act.argmax, 4) : this.readInto(enc, this.act.logits, V * 4)) : null;
      this.device.queue.submit([enc.finish()]);
      this.counted.submits++;
      this.pos += n;
      if (all) all.set(await read!.map(), c0 * V);
      else if (read) result = await read.map();
    }
    return all ?? result!;
  }

  /**
   * Compiles every kernel the forward compiles on first need (the prefill's: deferred-step.ts),
   * so the first long prompt does not wait for them; the LLM worker runs it after a load.
   * @example await model.warmUp(); // later prefills start at once
   */
  async warmUp(): Promise<void> {
    await prepareSteps([...this.body, ...this.tailLast, ...this.argmaxSteps], null);
  }

  /**
   * @internal The pipelines a greedy decode token at the current position dispatches: what
   * forward-pipelines.ts must list (tests/models/gpu/decode-counts.test.ts pins the two together).
   */
  decodePipelines(): Set<GPUComputePipeline> {
    const P = this.pos + 1;
    return new Set([...this.body, ...this.tailLast, ...this.argmaxSteps].filter((st) => st.grid(1, P)[0] !== 0).map((st) => st.pipeline));
  }

  memory(): MemoryReport {
    const b = this.alloc.byCategory();
    return { weights: b.weights, kvCache: b.kvCache, activations: b.activations + b.staging, total: this.alloc.total };
  }

  dispose(): void {
    this.disposed = true;
    this.alloc.destroyAll();
  }
}
