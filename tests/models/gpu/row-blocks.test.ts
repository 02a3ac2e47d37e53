/**
 * Weight matrices in row blocks (issue 9, item 1): a matrix whose buffer would break the device's
 * maxStorageBufferBindingSize (or maxBufferSize) is uploaded as row blocks, and the embedding,
 * every matmul (forward: matvec and tiled), the trainer's loss head and input gradients run over
 * the blocks. Checked against the CPU 4-bit reference (models/cpu/) at FineMedLM-o1's real
 * vocabulary on lavapipe's own 128 MiB limit and with it forced to 32 MiB; refused with a typed
 * error before anything is allocated when even splitting cannot fit; TTT loss and gradients
 * through a split lm_head (and split projections) against the unsplit GPU run and the CPU
 * trainer; the weight cache round-trips a split tensor byte for byte.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finemedLayerConfig, syntheticCheckpoint } from '../../../scripts/bench/synthetic-checkpoint.ts';
import { MemoryCacheStore } from '../../../models/cache/memory-store.ts';
import { openCheckpoint, type Checkpoint } from '../../../models/checkpoint.ts';
import type { LlamaConfig } from '../../../models/config.ts';
import { CpuLlama, type CpuLayer } from '../../../models/cpu/cpu-llama.ts';
import { CpuTrainer } from '../../../models/cpu/cpu-trainer.ts';
import { matmul } from '../../../models/cpu/ops.ts';
import { DeviceLimitsError } from '../../../models/errors.ts';
import type { GpuContext } from '../../../models/gpu/device.ts';
import { GpuLlama } from '../../../models/gpu/gpu-llama.ts';
import { GpuTrainer } from '../../../models/gpu/gpu-trainer.ts';
import { initLora, loraPairs, type LoraWeights } from '../../../models/lora/adapter.ts';
import { LlamaModel } from '../../../models/llama-model.ts';
import { dequantizeQ4, quantizeQ4 } from '../../../models/quant/q4.ts';
import { layerWeightNames, lmHeadName } from '../../../models/weights-plan.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { concatAll, expectBelow, expectNoGpuErrors, gpuContext, printMeasured, relErr, watchedGpu } from '../../helpers/gpu.ts';
import { mulberry32, writeRandomLlama } from '../../helpers/random-model.ts';

const MiB = 2 ** 20;
const q4 = (w: Float32Array, N: number, K: number) => dequantizeQ4(quantizeQ4(w, N, K));

/** ctx with lower engine limits (WebGPU never grants a device less than its defaults). */
function limited(ctx: GpuContext, maxStorageBufferBindingSize: number): GpuContext {
  return { ...ctx, limits: { maxBufferSize: ctx.limits.maxBufferSize, maxStorageBufferBindingSize } };
}

/**
 * The CPU 4-bit reference logits (T, V) of `ids` from position 0 without holding a (V, C) matrix
 * in f32: CpuLlama runs the layers with the embedding rows of `ids` only and an identity head on
 * a C-token vocabulary, so its "logits" are the final-norm hidden states h (T, C); the 4-bit
 * lm_head (quantized per row, so block by block exactly as whole) is then streamed through
 * models/cpu/ops matmul in row chunks.
 */
async function cpuQ4Logits(ck: Checkpoint, ids: number[]): Promise<Float32Array> {
  const c = ck.config, { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = c;
  const proj = async (name: string, N: number, K: number) => q4(await ck.readTensor(name), N, K);
  const layers: CpuLayer[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const n = layerWeightNames(l);
    layers.push({
      inputNorm: await ck.readTensor(n.inputNorm), postNorm: await ck.readTensor(n.postNorm),
      q: await proj(n.q, H * D, C), k: await proj(n.k, KV * D, C), v: await proj(n.v, KV * D, C), o: await proj(n.o, C, H * D),
      gate: await proj(n.gate, F, C), up: await proj(n.up, F, C), down: await proj(n.down, C, F),
    });
  }
  const distinct = [...new Set(ids)];
  const embed = new Float32Array(C * C); // rows 0..distinct-1: the 4-bit embedding rows of the ids
  for (const [i, id] of distinct.entries()) embed.set(q4(await ck.readRows('model.embed_tokens.weight', id, 1), 1, C), i * C);
  const eye = new Float32Array(C * C);
  for (let i = 0; i < C; i++) eye[i * C + i] = 1;
  const small: LlamaConfig = { ...c, vocabSize: C, tieWordEmbeddings: false };
  const cpu = new CpuLlama(small, { embed, layers, norm: await ck.readTensor('model.norm.weight'), lmHead: eye }, ids.length);
  const h = cpu.forward(ids.map((id) => distinct.indexOf(id)), { allLogits: true }); // (T, C)
  const T = ids.length, logits = new Float32Array(T * V), R = 8192, part = new Float32Array(T * R);
  for (let r0 = 0; r0 < V; r0 += R) {
    const rows = Math.min(R, V - r0);
    matmul(part, h, q4(await ck.readRows(lmHeadName(c), r0, rows), rows, C), T, C, rows);
    for (let t = 0; t < T; t++) logits.set(part.subarray(t * rows, (t + 1) * rows), t * V + r0);
  }
  return logits;
}

describe('row blocks at the real vocabulary: one FineMedLM-o1 layer, 128,256 tokens, 4-bit (Dawn)', () => {
  const config = finemedLayerConfig(1, 128256);
  const ck = syntheticCheckpoint(config, 3);
  // Rows 64127 / 64128 straddle the two blocks at 128 MiB (and 64128 starts block 4 of 8 at 32 MiB,
  // 16031 ends block 0); 128255 is the last row.
  const prompt = [16031, 64127, 64128, 128255];
  const next = 100000;
  let ref: Float32Array;
  beforeAll(async () => {
    const t0 = performance.now();
    ref = await cpuQ4Logits(ck, [...prompt, next]);
    console.log(`[row blocks] CPU 4-bit reference (${prompt.length + 1} tokens, V = 128,256): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }, 300_000);
  expectNoGpuErrors();
  printMeasured('row blocks');

  /** Loads on `ctx`, runs the prompt (all logits: tiled lm_head) and one decode token (matvec), compares. */
  async function check(ctx: GpuContext, what: string, blocks: number): Promise<void> {
    const V = config.vocabSize, T = prompt.length;
    const t0 = performance.now();
    // lm_head 4-bit too, as the streamed CPU reference (the 8-bit head's blocks: the small-model tests below).
    const m = await GpuLlama.load(ck, ctx, { weights: 'q4', lmHead: 'q4', maxContext: 16 });
    const loadS = (performance.now() - t0) / 1000;
    try {
      expect(m.embed.blocks.length).toBe(blocks);
      expect(m.lmHead.blocks.length).toBe(blocks);
      expect(m.lmHead.blocks.reduce((s, b) => s + b.rows, 0)).toBe(V);
      const over = m.alloc.liveBuffers().filter((b) => b.size > ctx.limits.maxStorageBufferBindingSize);
      expect(over, 'buffers over the binding limit').toEqual([]);
      const all = await m.forward(prompt, { allLogits: true });
      const last = await m.forward([next]);
      const t1 = performance.now();
      expect(all.length).toBe(T * V);
      expect(last.length).toBe(V);
      const got = new Float32Array((T + 1) * V);
      got.set(all);
      got.set(last, T * V);
      // f16 activations against the f32 CPU: measured relErr 7.0e-4 (both limits), x ~7.
      expectBelow(`${what}: logits relErr vs CPU 4-bit`, relErr(got, ref), 5e-3);
      // The rows at the block edges are not zeros from a skipped block: each logit is compared.
      let maxAbs = 0;
      for (let i = 0; i < got.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got[i] - ref[i]));
      expectBelow(`${what}: logits max |diff| vs CPU 4-bit`, maxAbs, 2e-2); // measured 2.0e-3 (logits ~0.6 rms), x 10
      console.log(`[row blocks] ${what}: load ${loadS.toFixed(1)} s, ${blocks} blocks, forward ${T} + 1 tokens ${((t1 - t0) / 1000 - loadS).toFixed(1)} s`);
    } finally {
      m.dispose();
    }
  }

  it("lavapipe's own 128 MiB limit: the embedding and lm_head are two blocks each; logits equal the CPU 4-bit reference", async () => {
    const ctx = await gpuContext(true);
    expect(ctx.limits.maxStorageBufferBindingSize).toBeLessThan(128256 * 128 * 16); // the 262.7 MB embedding does not fit whole
    await check(ctx, `${(ctx.limits.maxStorageBufferBindingSize / MiB).toFixed(0)} MiB`, Math.ceil(128256 * 2048 / ctx.limits.maxStorageBufferBindingSize));
  }, 300_000);

  it('the binding limit forced to 32 MiB: eight blocks, same logits', async () => {
    await check(limited(await gpuContext(true), 32 * MiB), '32 MiB', 8);
  }, 300_000);

  it('a limit splitting cannot meet (two rows of the embedding are 4 KiB) is refused with DeviceLimitsError before any buffer or read', async () => {
    const ctx = limited(await gpuContext(true), 3000);
    let buffers = 0, reads = 0;
    const device = new Proxy(ctx.device, {
      get(target, prop) {
        if (prop === 'createBuffer') return (d: GPUBufferDescriptor) => { buffers++; return target.createBuffer(d); };
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const counted: Checkpoint = { ...ck, readRows: async (...a) => { reads++; return ck.readRows(...a); }, readTensor: async (...a) => { reads++; return ck.readTensor(...a); } };
    const err = await GpuLlama.load(counted, { ...ctx, device }, { weights: 'q4', maxContext: 16 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceLimitsError);
    expect((err as DeviceLimitsError).code).toBe('device-limits');
    expect((err as DeviceLimitsError).message).toMatch(/model\.embed_tokens\.weight q4 needs 262\.7 MB .*maxStorageBufferBindingSize is 3000 bytes/);
    expect(buffers).toBe(0);
    expect(reads).toBe(0);
  });
});

describe('row blocks on a small random model with the limits forced low (Dawn)', () => {
  // C = 2048 and V = 2048: every 4-bit matrix is 2 MiB (f32: 16 MiB) while the largest activation
  // (a 64-row f32 loss-head chunk, 64 x V x 4) is 512 KiB, so a 520 KiB limit splits the
  // embedding, lm_head and the attention projections into 4 blocks (q4) or 32 (f32).
  const LIMIT = 520 * 1024;
  let dir: string;
  let ck: Checkpoint;
  const T = 24;
  const ids = Array.from({ length: T }, (_, i) => (i * 397 + 11) % 2048);
  const mask = ids.map((_, t) => (t >= 6 ? 1 : 0));
  const lora = (): LoraWeights => {
    const l = initLora(ck.config, { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'] }, 5);
    const rand = mulberry32(6);
    for (const { pair } of loraPairs(l)) for (let i = 0; i < pair.B.length; i++) pair.B[i] = (rand() * 2 - 1) * 0.05;
    return l;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'row-blocks-'));
    await writeRandomLlama(dir, { seed: 41, hiddenSize: 2048, intermediateSize: 128, numLayers: 1, numHeads: 16, numKvHeads: 4, vocabSize: 2048 });
    ck = await openCheckpoint(new NodeDirSource(dir));
  });
  expectNoGpuErrors();
  printMeasured('row blocks small');
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Loss and LoRA gradients (in loraPairs order) of the GPU trainer on `ctx`. */
  async function gpuTtt(ctx: GpuContext, weights: 'q4' | 'f32'): Promise<{ loss: number; grads: Float64Array; headBlocks: number; projBlocks: number; fusedQkv: boolean; logits: Float32Array; decoded: Float32Array }> {
    const m = await GpuLlama.load(ck, ctx, { weights, maxContext: 64 });
    try {
      const logits = await m.forward(ids.slice(0, 8), { allLogits: true });
      m.resetCache();
      const decoded = await m.forward(ids.slice(0, 4)); // token by token: the decode kernels
      m.resetCache();
      const l = lora();
      const t = await GpuTrainer.create(m, l, { maxTokens: 64 });
      const loss = await t.lossAndGrads(ids, mask);
      const g = await t.lora.read(t.lora.trainingBuffers().grads);
      const grads = concatAll([...loraPairs(l)].flatMap(({ layer, target }) => [g.get(`${layer}.${target}`)!.A, g.get(`${layer}.${target}`)!.B]));
      return { loss, grads, headBlocks: m.lmHead.blocks.length, projBlocks: m.layers[0].q.blocks.length, fusedQkv: m.layers[0].qkv !== null, logits, decoded };
    } finally {
      m.dispose();
    }
  }

  // The CPU trainer once (the unsplit GPU trainer is checked against it in gpu-trainer*.test.ts).
  for (const [precision, weights, withCpu] of [['f32', 'q4', true], ['f32', 'f32', false], ['f16', 'q4', false]] as const) {
    it(`TTT loss and gradients through a split lm_head: ${precision} activations, ${weights} weights, equal the unsplit run${withCpu ? ' and the CPU trainer' : ''}`, async () => {
      const ctx = await gpuContext(precision === 'f16');
      const split = await gpuTtt(limited(ctx, LIMIT), weights);
      const whole = await gpuTtt(ctx, weights);
      // With 4-bit weights the lm_head is 8-bit (the default): twice the row bytes, twice the blocks.
      expect(split.headBlocks).toBe(weights === 'q4' ? 8 : 32);
      expect(split.projBlocks).toBe(weights === 'q4' ? 4 : 32);
      // Split q, k, v are not fused: decode takes norm1 and three matvecs, compared below with the
      // fused q/k/v matvec of the unsplit load.
      expect([split.fusedQkv, whole.fusedQkv]).toEqual([false, true]);
      expect(split.decoded.length).toBe(whole.decoded.length);
      // f32: measured identical (0). f16: the folded norm1 rounds its inputs to f16 up to 1 ulp
      // apart from rmsnorm's (fused-kernels.test.ts); measured 3.6e-4, bound x5.5.
      expectBelow(`${precision}/${weights}: split vs unsplit decode logits relErr`, relErr(split.decoded, whole.decoded), precision === 'f16' ? 2e-3 : 1e-6);
      expect(whole.headBlocks).toBe(1);
      expect(split.grads.length).toBe(whole.grads.length);
      expect(split.grads.length).toBeGreaterThan(0);
      // Split vs unsplit differ only in the order of the input-gradient sums over the blocks:
      // measured logits and loss identical (0), gradients 3.3e-7 .. 4.2e-7 relative (f32 and f16).
      expectBelow(`${precision}/${weights}: split vs unsplit logits relErr`, relErr(split.logits, whole.logits), 1e-6);
      expectBelow(`${precision}/${weights}: split vs unsplit loss`, Math.abs(split.loss - whole.loss) / whole.loss, 1e-6);
      expectBelow(`${precision}/${weights}: split vs unsplit grads relErr`, relErr(split.grads, whole.grads), 1e-5);
      if (!withCpu) return;
      const cpu = await CpuLlama.load(ck.config, ck, { weights, maxContext: 64 });
      const ref = new CpuTrainer(cpu, lora()).lossAndGrads(ids, mask);
      const refGrads = concatAll([...loraPairs(ref.grads)].flatMap(({ pair }) => [pair.A, pair.B]));
      expect(split.grads.length).toBe(refGrads.length);
      // Against the CPU trainer (f32 activations): measured loss 5e-8, gradients 9e-7 relative.
      expectBelow(`${precision}/${weights}: split loss vs CPU`, Math.abs(split.loss - ref.loss) / ref.loss, 1e-5);
      expectBelow(`${precision}/${weights}: split grads relErr vs CPU`, relErr(split.grads, refGrads), 1e-4);
    }, 300_000);
  }

  it('the weight cache round-trips a split tensor: written from blocks, read back into blocks, identical logits and bytes', async () => {
    const ctx = limited(await gpuContext(false), LIMIT);
    const store = new MemoryCacheStore();
    const src = new NodeDirSource(dir);
    const first = await LlamaModel.load(src, { backend: 'webgpu', gpu: await watchedGpu(), precision: 'f32', maxContext: 64, gpuLimits: ctx.limits, cache: { store } });
    const second = await LlamaModel.load(src, { backend: 'webgpu', gpu: await watchedGpu(), precision: 'f32', maxContext: 64, gpuLimits: ctx.limits, cache: { store } });
    try {
      expect(first.loadedFrom).toBe('source');
      expect(second.loadedFrom).toBe('cache');
      const e1 = first.engine as GpuLlama, e2 = second.engine as GpuLlama;
      expect(e1.lmHead.kind).toBe('q8');
      expect(e1.lmHead.blocks.length).toBe(8); // the default 8-bit head: twice q4's 4 blocks
      expect(e2.lmHead.blocks.length).toBe(8);
      const a = await e1.forward(ids.slice(0, 10), { allLogits: true });
      const b = await e2.forward(ids.slice(0, 10), { allLogits: true });
      expect(a.length).toBe(10 * 2048);
      expect(Array.from(b)).toEqual(Array.from(a)); // the same bytes in the same blocks
      // And against a load without limits (one block): the cached 4-bit bytes are the whole tensor's.
      const whole = await GpuLlama.load(ck, await gpuContext(false), { weights: 'q4', maxContext: 64 });
      try {
        const w = await whole.forward(ids.slice(0, 10), { allLogits: true });
        expectBelow('cached split vs unsplit logits relErr', relErr(b, w), 1e-5);
      } finally {
        whole.dispose();
      }
    } finally {
      first.dispose();
      second.dispose();
    }
  }, 300_000);
});
