import type { LlamaConfig } from '../config.ts';
import type { Checkpoint } from '../checkpoint.ts';
import { checkpointTensors, isTensorSource, type TensorSource } from '../cache/tensor-source.ts';
import type { MemoryReport, WeightFormat } from '../api.ts';
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import { ropeInvFreq, ropeTables } from '../rope.ts';
import { layerWeightNames, lmHeadName } from '../weights-plan.ts';
import { GpuAllocator, usageOf } from './allocator.ts';
import { allLogitsBytes, defaultMaxBatch, forwardActivationBuffers, kvCacheBytes, loraScratchBytes, packUniform, uniformKey } from './buffer-sizes.ts';
import type { GpuContext } from './device.ts';
import { type GpuMatrix, WeightUploader } from './gpu-weights.ts';
import type { GpuLora, LoraSlot } from './gpu-lora.ts';
import { grid1D, PipelineCache } from './pipelines.ts';
import { GEMM_TOKENS_M, gemmGrid, gemmParams, gemmWgsl, pickGemmTile } from './wgsl/gemm.ts';
import { attnScoresWgsl, attnValuesWgsl, ropeWgsl, softmaxWgsl, toCacheWgsl } from './wgsl/attention.ts';
import type { ShaderOptions } from './wgsl/common.ts';
import { addWgsl, embedWgsl, rmsnormWgsl, swigluWgsl } from './wgsl/elementwise.ts';
import { matmulTiledWgsl, matvecWgsl } from './wgsl/matmul.ts';

export interface GpuLayer {
  inputNorm: GPUBuffer; postNorm: GPUBuffer;
  q: GpuMatrix; k: GpuMatrix; v: GpuMatrix; o: GpuMatrix;
  gate: GpuMatrix; up: GpuMatrix; down: GpuMatrix;
  kCache: GPUBuffer; vCache: GPUBuffer; // (S, KV, D)
}

export interface MatmulStepOptions {
  single?: boolean;
  out?: 'T' | 'f32';
  /** Run-parameter buffer to bind (the trainer has its own); default the forward's. */
  run?: GPUBuffer;
}

/** One dispatch of a forward pass; grid computed per call from T (tokens) and P (keys). */
export interface Step {
  label: string;
  pipeline: GPUComputePipeline;
  bind: GPUBindGroup;
  grid: (T: number, P: number) => [number, number, number];
}

/** Activation buffers, sized for `maxBatch` tokens. */
interface Activations {
  ids: GPUBuffer; run: GPUBuffer;
  x: GPUBuffer; xn: GPUBuffer; q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; att: GPUBuffer; proj: GPUBuffer;
  gate: GPUBuffer; up: GPUBuffer; scores: GPUBuffer; hidden: GPUBuffer;
  logits: GPUBuffer; readback: GPUBuffer;
}

export interface GpuLoadOptions {
  weights: WeightFormat;
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
  /** @internal shared with GpuTrainer */
  readonly device: GPUDevice;
  /** @internal */
  readonly shader: ShaderOptions;
  private pos = 0;
  /** @internal the frozen weights, shared with GpuTrainer */
  layers: GpuLayer[] = [];
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
    this.shader = { f16: ctx.f16 };
    this.maxBatch = opts.maxBatch ?? defaultMaxBatch(config, opts.maxContext);
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
    try {
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
    const up = new WeightUploader(this.device, this.alloc, this.pipelines, src, opts.onBytes ?? (() => {}), opts.signal);
    const fmt = opts.weights;
    const actBytes = this.shader.f16 ? 2 : 4;
    for (let l = 0; l < c.numLayers; l++) {
      const n = layerWeightNames(l);
      const layer: GpuLayer = {
        inputNorm: await up.vector(n.inputNorm),
        q: await up.matrix(n.q, H * D, C, fmt),
        k: await up.matrix(n.k, KV * D, C, fmt),
        v: await up.matrix(n.v, KV * D, C, fmt),
        o: await up.matrix(n.o, C, H * D, fmt),
        postNorm: await up.vector(n.postNorm),
        gate: await up.matrix(n.gate, F, C, fmt),
        up: await up.matrix(n.up, F, C, fmt),
        down: await up.matrix(n.down, C, F, fmt),
        ...await this.alloc.guarded(`KV cache of layer ${l}`, () => ({
          kCache: this.alloc.create(`kcache ${l}`, kvCacheBytes(c, this.maxContext, actBytes), 'kvCache'),
          vCache: this.alloc.create(`vcache ${l}`, kvCacheBytes(c, this.maxContext, actBytes), 'kvCache'),
        })),
      };
      this.layers.push(layer);
    }
    this.embed = await up.matrix('model.embed_tokens.weight', V, C, fmt);
    this.lmHead = c.tieWordEmbeddings ? this.embed : await up.matrix(lmHeadName(c), V, C, fmt);
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
      logits: a('logits'), readback: a('logits readback'),
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
  async loraSteps(label: string, x: GPUBuffer, s: LoraSlot, y: GPUBuffer, o: { run?: GPUBuffer; xa?: GPUBuffer; maxTokens?: number; gated?: boolean } = {}): Promise<Step[]> {
    const lora = this.lora!, xa = o.xa ?? this.xa!, r = lora.config.rank, run = o.run ?? this.act.run;
    const maxT = o.maxTokens ?? this.maxBatch;
    const down = { ...this.shader, transA: false, transB: true, a: 'T', b: 'f32', c: 'f32', tile: pickGemmTile(maxT, r) } as const;
    const up = { ...this.shader, transA: false, transB: true, a: 'f32', b: 'f32', c: 'T', tile: pickGemmTile(maxT, s.outDim) } as const;
    const pDown = await this.pipelines.get('lora xa', gemmWgsl(down));
    const pUp = await this.pipelines.get('lora y', gemmWgsl(up));
    const gDown = this.uniform('lora xa params', gemmParams({ M: 0, N: r, K: s.inDim, tokens: GEMM_TOKENS_M }));
    const gUp = this.uniform('lora y params', gemmParams({ M: 0, N: s.outDim, K: r, alpha: lora.scale, beta: 1, tokens: GEMM_TOKENS_M }));
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

  /** Steps for y = x W^T: the matvec kernel when one row, the tiled kernel otherwise. */
  private async matmulSteps(label: string, x: GPUBuffer | GPUBufferBinding, W: GpuMatrix, y: GPUBuffer, opts: MatmulStepOptions = {}): Promise<{ tiled: Step; vec: Step }> {
    const o = { ...this.shader, weights: W.kind, out: opts.out ?? 'T' } as const;
    const params = this.uniform(`${label} params`, [W.N, W.K, Math.ceil(W.K / 32), opts.single ? 1 : 0]);
    const wb = W.kind === 'q4' ? [W.qw, W.sc] : [W.w, null];
    const tiledP = await this.pipelines.get(`matmul ${W.kind}`, matmulTiledWgsl(o));
    const vecP = await this.pipelines.get(`matvec ${W.kind}`, matvecWgsl(o));
    const buffers = [opts.run ?? this.act.run, params, x, wb[0], wb[1], y];
    return {
      tiled: { label, pipeline: tiledP, bind: this.bind(tiledP, buffers), grid: (T) => [Math.ceil(W.N / 64), Math.ceil(T / 32), 1] },
      vec: { label, pipeline: vecP, bind: this.bind(vecP, buffers), grid: () => grid1D(W.N, 8) },
    };
  }

  /** A matmul step that picks matvec for one row at encode time. */
  /** @internal Steps of y = x W^T (+ the LoRA term of `opts.lora`, gated by loraEnabled). */
  async matmul(label: string, x: GPUBuffer | GPUBufferBinding, W: GpuMatrix, y: GPUBuffer, opts: MatmulStepOptions & { lora?: LoraSlot } = {}): Promise<Step[]> {
    const { tiled, vec } = await this.matmulSteps(label, x, W, y, opts);
    const single = opts.single ?? false;
    const steps: Step[] = [{ ...tiled, grid: (T, P) => (single || T === 1 ? [0, 0, 0] : tiled.grid(T, P)) },
      { ...vec, grid: (T, P) => (single || T === 1 ? vec.grid(T, P) : [0, 0, 0]) }];
    if (opts.lora) steps.push(...await this.loraSteps(label, x as GPUBuffer, opts.lora, y));
    return steps;
  }

  private async buildSteps(): Promise<void> {
    const c = this.config;
    const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D } = c;
    const s = this.shader, A = this.act;
    const P = this.pipelines;
    const norm = await P.get('rmsnorm', rmsnormWgsl(s));
    const swiglu = await P.get('swiglu', swigluWgsl(s));
    const add = await P.get('add', addWgsl(s));
    const ropeQ = await P.get('rope', ropeWgsl({ ...s, mode: 'inplace' }));
    const ropeK = await P.get('rope to cache', ropeWgsl({ ...s, mode: 'to-cache' }));
    const toCache = await P.get('to cache', toCacheWgsl(s));
    const scores = await P.get('attn scores', attnScoresWgsl(s));
    const softmax = await P.get('softmax', softmaxWgsl(s));
    const values = await P.get('attn values', attnValuesWgsl(s));
    const embed = await P.get(`embed ${this.embed.kind}`, embedWgsl({ ...s, weights: this.embed.kind }));

    const normP = this.uniform('norm params', [C, 0, c.rmsNormEps, 0], [2]);
    const normLastP = this.uniform('norm last params', [C, 1, c.rmsNormEps, 0], [2]);
    const wC = this.uniform('width C', [C]);
    const wF = this.uniform('width F', [F]);
    const wKV = this.uniform('width KV*D', [KV * D]);
    const ropeQP = this.uniform('rope q', [H, D]);
    const ropeKP = this.uniform('rope k', [KV, D]);
    const attP = this.uniform('attention', [H, KV, D, 1 / Math.sqrt(D)], [3]);

    const E = this.embed;
    const embBuffers = E.kind === 'q4' ? [A.run, this.uniform('embed', [C]), A.ids, E.qw, E.sc, A.x] : [A.run, this.uniform('embed', [C]), A.ids, E.w, null, A.x];
    const steps: Step[] = [{ label: 'embed', pipeline: embed, bind: this.bind(embed, embBuffers), grid: (T) => grid1D(T * C, 256) }];
    const rows = (T: number): [number, number, number] => [T, 1, 1];
    for (let l = 0; l < c.numLayers; l++) {
      const L = this.layers[l];
      steps.push({ label: `L${l} norm1`, pipeline: norm, bind: this.bind(norm, [A.run, normP, A.x, L.inputNorm, A.xn]), grid: rows });
      steps.push(...await this.matmul(`L${l} q`, A.xn, L.q, A.q, { lora: this.lora?.slot(l, 'q_proj') }));
      steps.push(...await this.matmul(`L${l} k`, A.xn, L.k, A.k, { lora: this.lora?.slot(l, 'k_proj') }));
      steps.push(...await this.matmul(`L${l} v`, A.xn, L.v, A.v, { lora: this.lora?.slot(l, 'v_proj') }));
      steps.push({ label: `L${l} rope q`, pipeline: ropeQ, bind: this.bind(ropeQ, [A.run, ropeQP, this.ropeCos, this.ropeSin, A.q]), grid: (T) => grid1D(T * H * D / 2, 256) });
      steps.push({ label: `L${l} rope k`, pipeline: ropeK, bind: this.bind(ropeK, [A.run, ropeKP, this.ropeCos, this.ropeSin, A.k, L.kCache]), grid: (T) => grid1D(T * KV * D / 2, 256) });
      steps.push({ label: `L${l} v cache`, pipeline: toCache, bind: this.bind(toCache, [A.run, wKV, A.v, L.vCache]), grid: (T) => grid1D(T * KV * D, 256) });
      steps.push({ label: `L${l} scores`, pipeline: scores, bind: this.bind(scores, [A.run, attP, A.q, L.kCache, A.scores]), grid: (T, Pk) => [Math.ceil(Pk / 64), T, H] });
      steps.push({ label: `L${l} softmax`, pipeline: softmax, bind: this.bind(softmax, [A.run, A.scores]), grid: (T) => [T, H, 1] });
      steps.push({ label: `L${l} attn values`, pipeline: values, bind: this.bind(values, [A.run, attP, A.scores, L.vCache, A.att]), grid: (T) => grid1D(T * H * D, 64) });
      steps.push(...await this.matmul(`L${l} o`, A.att, L.o, A.proj, { lora: this.lora?.slot(l, 'o_proj') }));
      steps.push({ label: `L${l} residual1`, pipeline: add, bind: this.bind(add, [A.run, wC, A.x, A.proj]), grid: (T) => grid1D(T * C, 256) });
      steps.push({ label: `L${l} norm2`, pipeline: norm, bind: this.bind(norm, [A.run, normP, A.x, L.postNorm, A.xn]), grid: rows });
      steps.push(...await this.matmul(`L${l} gate`, A.xn, L.gate, A.gate, { lora: this.lora?.slot(l, 'gate_proj') }));
      steps.push(...await this.matmul(`L${l} up`, A.xn, L.up, A.up, { lora: this.lora?.slot(l, 'up_proj') }));
      steps.push({ label: `L${l} swiglu`, pipeline: swiglu, bind: this.bind(swiglu, [A.run, wF, A.gate, A.up]), grid: (T) => grid1D(T * F, 256) });
      steps.push(...await this.matmul(`L${l} down`, A.gate, L.down, A.proj, { lora: this.lora?.slot(l, 'down_proj') }));
      steps.push({ label: `L${l} residual2`, pipeline: add, bind: this.bind(add, [A.run, wC, A.x, A.proj]), grid: (T) => grid1D(T * C, 256) });
    }
    this.body = steps;
    this.tailLast = [
      { label: 'final norm', pipeline: norm, bind: this.bind(norm, [A.run, normLastP, A.x, this.norm, A.hidden]), grid: () => [1, 1, 1] },
      ...await this.matmul('lm_head', A.hidden, this.lmHead, A.logits, { single: true, out: 'f32' }),
    ];
  }

  /** Steps for logits at every position (tests, TTT): allocated on first use. */
  private async ensureAllLogits(): Promise<GPUBuffer> {
    if (this.logitsAll) return this.logitsAll;
    const c = this.config, A = this.act;
    const buf = this.alloc.create('logits all', allLogitsBytes(c, this.maxBatch), 'activations');
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

  resetCache(): void {
    this.pos = 0;
  }

  /** @internal */
  encode(pass: GPUComputePassEncoder, steps: Step[], T: number, P: number): void {
    for (const st of steps) {
      const [x, y, z] = st.grid(T, P);
      if (x === 0) continue;
      pass.setPipeline(st.pipeline);
      pass.setBindGroup(0, st.bind);
      pass.dispatchWorkgroups(x, y, z);
    }
  }

  private async read(src: GPUBuffer, bytes: number): Promise<Float32Array> {
    const rb = bytes <= this.act.readback.size ? this.act.readback
      : this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, rb, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    await Promise.race([rb.mapAsync(GPUMapMode.READ, 0, bytes), this.ctx.lost]);
    const out = new Float32Array(rb.getMappedRange(0, bytes).slice(0));
    rb.unmap();
    if (rb !== this.act.readback) rb.destroy();
    return out;
  }

  /**
   * Runs `ids` at positions position..position+T-1, appending to the KV cache; prompts longer
   * than maxBatch are run in chunks. Returns the last token's logits (V), or (T, V) with allLogits.
   */
  async forward(ids: number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    if (this.disposed) throw new InvalidInputError('This model was disposed; load it again.');
    const { vocabSize: V } = this.config;
    const T = ids.length;
    if (T === 0) throw new InvalidInputError('forward: no tokens.');
    if (this.pos + T > this.maxContext) throw new InvalidInputError(`Sequence of ${this.pos + T} tokens exceeds the context of ${this.maxContext}.`);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new InvalidInputError(`Token id ${id} is outside the vocabulary (0..${V - 1}).`);
    }
    const all = opts.allLogits ? new Float32Array(T * V) : null;
    const allBuf = all ? await this.ensureAllLogits() : null;
    for (let c0 = 0; c0 < T; c0 += this.maxBatch) {
      const chunk = ids.slice(c0, c0 + this.maxBatch);
      const n = chunk.length, start = this.pos, P = start + n;
      this.device.queue.writeBuffer(this.act.ids, 0, new Uint32Array(chunk));
      this.device.queue.writeBuffer(this.act.run, 0, new Uint32Array([n, start, P, 0]));
      const enc = this.device.createCommandEncoder({ label: 'forward' });
      const pass = enc.beginComputePass();
      this.encode(pass, this.body, n, P);
      const last = c0 + n >= T;
      if (all) this.encode(pass, this.tailAll, n, P);
      else if (last) this.encode(pass, this.tailLast, n, P);
      pass.end();
      this.device.queue.submit([enc.finish()]);
      this.pos += n;
      if (all && allBuf) all.set(await this.read(allBuf, n * V * 4), c0 * V);
    }
    return all ?? this.read(this.act.logits, V * 4);
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
