/**
 * LoRA adapters in PEFT layout: per layer and target projection, A (r, in) and B (out, r), output
 * y = x W^T + (x A^T) B^T * alpha / r. Plain Float32Arrays, shared by the CPU reference and as the
 * upload/download form of the GPU buffers. Files are safetensors with PEFT names
 * `<weight name>.lora_A` / `.lora_B` (e.g. `model.layers.0.self_attn.q_proj.weight.lora_A`).
 */
import { PROJECTIONS, projectionWeightName, type LlamaConfig, type Projection } from '../config.ts';
import { InvalidInputError, WeightsFormatError, WeightsMismatchError } from '../errors.ts';
import { toFloat32 } from '../safetensors/dtype.ts';
import { parseSafetensorsHeader } from '../safetensors/header.ts';
import { encodeSafetensors, type TensorToWrite, type WritableDtype } from '../safetensors/writer.ts';
import { seededRandom } from '../random.ts';

export interface LoraConfig {
  rank: number;
  alpha: number;
  /** Projections that carry an adapter, in every layer. */
  targets: Projection[];
}

/** The product defaults (issue 3): rank 8, alpha 16, all seven projections. */
export const DEFAULT_LORA: LoraConfig = { rank: 8, alpha: 16, targets: [...PROJECTIONS] };

/** One adapter: A (rank, inDim), B (outDim, rank). */
export interface LoraPair {
  A: Float32Array;
  B: Float32Array;
  inDim: number;
  outDim: number;
}

export interface LoraWeights {
  config: LoraConfig;
  /** alpha / rank. */
  scale: number;
  /** layers[l][target]: present exactly for the targets of `config`. */
  layers: Partial<Record<Projection, LoraPair>>[];
}

/**
 * [out, in] of a projection for a model config, as HF stores the weight.
 * @example projectionShape(config, 'k_proj'); // { outDim: KV * D, inDim: C }
 */
export function projectionShape(config: LlamaConfig, p: Projection): { outDim: number; inDim: number } {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: KV, headDim: D } = config;
  switch (p) {
    case 'q_proj': return { outDim: H * D, inDim: C };
    case 'k_proj': case 'v_proj': return { outDim: KV * D, inDim: C };
    case 'o_proj': return { outDim: C, inDim: H * D };
    case 'gate_proj': case 'up_proj': return { outDim: F, inDim: C };
    case 'down_proj': return { outDim: C, inDim: F };
  }
}

function checkLoraConfig(lc: LoraConfig): void {
  if (!Number.isInteger(lc.rank) || lc.rank <= 0) throw new InvalidInputError(`LoRA rank must be a positive integer, got ${lc.rank}.`);
  if (!Number.isFinite(lc.alpha) || lc.alpha <= 0) throw new InvalidInputError(`LoRA alpha must be a positive number, got ${lc.alpha}.`);
  if (lc.targets.length === 0) throw new InvalidInputError('LoRA needs at least one target projection.');
  for (const t of lc.targets) {
    if (!PROJECTIONS.includes(t)) throw new InvalidInputError(`Unknown LoRA target "${t}"; expected some of ${PROJECTIONS.join(', ')}.`);
  }
  if (new Set(lc.targets).size !== lc.targets.length) throw new InvalidInputError(`LoRA targets repeat: ${lc.targets.join(', ')}.`);
}

/** Zero adapters (A = 0, B = 0) of the right shapes; the base of init, load and gradients. */
export function zeroLora(config: LlamaConfig, loraCfg: LoraConfig): LoraWeights {
  checkLoraConfig(loraCfg);
  const r = loraCfg.rank;
  // Keep targets in PROJECTIONS order so files and gradient lists have one canonical order.
  const targets = PROJECTIONS.filter((p) => loraCfg.targets.includes(p));
  const layers: Partial<Record<Projection, LoraPair>>[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const layer: Partial<Record<Projection, LoraPair>> = {};
    for (const p of targets) {
      const { outDim, inDim } = projectionShape(config, p);
      layer[p] = { A: new Float32Array(r * inDim), B: new Float32Array(outDim * r), inDim, outDim };
    }
    layers.push(layer);
  }
  return { config: { ...loraCfg, targets }, scale: loraCfg.alpha / r, layers };
}

/**
 * Fresh adapters: A uniform in +-1/sqrt(in) from `seed` (one PRNG stream over layers, then targets
 * in PROJECTIONS order, row-major), B = 0, so the adapted model equals the base model exactly.
 * @example
 *   const lora = initLora(cpu.config, { rank: 8, alpha: 16, targets: ['q_proj', 'v_proj'] }, 42);
 */
export function initLora(config: LlamaConfig, loraCfg: LoraConfig, seed: number): LoraWeights {
  const lora = zeroLora(config, loraCfg);
  const rand = seededRandom(seed);
  for (const layer of lora.layers) {
    for (const p of lora.config.targets) {
      const pair = layer[p]!;
      const bound = 1 / Math.sqrt(pair.inDim);
      for (let i = 0; i < pair.A.length; i++) pair.A[i] = bound * (2 * rand() - 1);
    }
  }
  return lora;
}

/** Every (layer, target, pair) in canonical order. */
export function* loraPairs(lora: LoraWeights): Generator<{ layer: number; target: Projection; pair: LoraPair }> {
  for (let l = 0; l < lora.layers.length; l++) {
    for (const target of lora.config.targets) {
      const pair = lora.layers[l][target];
      if (pair) yield { layer: l, target, pair };
    }
  }
}

/** The flat parameter list [A, B, A, B, ...] in canonical order (what the optimizer steps). */
export function loraParams(lora: LoraWeights): Float32Array[] {
  const out: Float32Array[] = [];
  for (const { pair } of loraPairs(lora)) out.push(pair.A, pair.B);
  return out;
}

/** Sets every B to 0: the adapted model becomes the base model again. */
export function zeroB(lora: LoraWeights): void {
  for (const { pair } of loraPairs(lora)) pair.B.fill(0);
}

/** True when every B is exactly zero (the forward pass may then skip the LoRA term). */
export function isBZero(pair: LoraPair): boolean {
  const B = pair.B;
  for (let i = 0; i < B.length; i++) if (B[i] !== 0) return false;
  return true;
}

/** Deep copy. */
export function cloneLora(lora: LoraWeights): LoraWeights {
  return {
    config: { ...lora.config, targets: [...lora.config.targets] },
    scale: lora.scale,
    layers: lora.layers.map((layer) => {
      const out: Partial<Record<Projection, LoraPair>> = {};
      for (const [p, pair] of Object.entries(layer) as [Projection, LoraPair][]) {
        out[p] = { A: pair.A.slice(), B: pair.B.slice(), inDim: pair.inDim, outDim: pair.outDim };
      }
      return out;
    }),
  };
}

/** PEFT tensor names of one adapter; `suffix` '.grad' names gradients. */
export function loraTensorNames(layer: number, target: Projection, suffix = ''): { A: string; B: string } {
  const w = projectionWeightName(layer, target);
  return { A: `${w}.lora_A${suffix}`, B: `${w}.lora_B${suffix}` };
}

/**
 * Encodes adapters (or gradients, with suffix '.grad') as a safetensors file with PEFT names.
 * Metadata records rank, alpha and targets (PEFT keeps them in adapter_config.json).
 * @example await writeFile('adapter.safetensors', saveLora(lora));
 */
export function saveLora(lora: LoraWeights, opts: { suffix?: string; dtype?: WritableDtype } = {}): Uint8Array {
  const tensors: TensorToWrite[] = [];
  const dtype = opts.dtype ?? 'F32';
  const r = lora.config.rank;
  for (const { layer, target, pair } of loraPairs(lora)) {
    const n = loraTensorNames(layer, target, opts.suffix);
    tensors.push({ name: n.A, dtype, shape: [r, pair.inDim], data: pair.A });
    tensors.push({ name: n.B, dtype, shape: [pair.outDim, r], data: pair.B });
  }
  return encodeSafetensors(tensors, {
    format: 'pt',
    rank: String(r),
    alpha: String(lora.config.alpha),
    targets: lora.config.targets.join(','),
  });
}

const LORA_NAME = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.weight\.lora_([AB])(\.grad)?$/;

export interface LoadLoraOptions {
  /** File name for error messages. */
  name?: string;
  /** Tensor name suffix: '' for adapters, '.grad' for gradient files. */
  suffix?: string;
  /** Leave B = 0 where the file has no `.lora_B` (an init file with A only). Default false. */
  allowMissingB?: boolean;
}

/**
 * Reads adapters from safetensors bytes for `config` and `loraCfg`. Throws WeightsMismatchError,
 * naming the tensor, for a missing tensor, a tensor of another shape (other rank or model), or an
 * adapter on a layer or projection the config does not have; WeightsFormatError for a corrupt file.
 * @example
 *   const lora = loadLora(new Uint8Array(await readFile('adapter.safetensors')), cpu.config,
 *     { rank: 4, alpha: 8, targets: [...PROJECTIONS] });
 */
export function loadLora(bytes: Uint8Array, config: LlamaConfig, loraCfg: LoraConfig, opts: LoadLoraOptions = {}): LoraWeights {
  const file = opts.name ?? 'adapter.safetensors';
  const suffix = opts.suffix ?? '';
  const header = readHeader(bytes, file);
  const lora = zeroLora(config, loraCfg);
  const r = lora.config.rank;
  for (const name of header.tensors.keys()) {
    const m = LORA_NAME.exec(name);
    if (!m || (m[4] ?? '') !== suffix) continue;
    const layer = Number(m[1]), p = m[2] as Projection;
    if (layer >= config.numLayers || !lora.config.targets.includes(p)) {
      throw new WeightsMismatchError(
        `${file}: tensor "${name}" is an adapter for ${layer >= config.numLayers ? `layer ${layer}, but the model has ${config.numLayers} layers` : `${p}, which is not among the targets (${lora.config.targets.join(', ')})`}.`,
      );
    }
  }
  for (const { layer, target, pair } of loraPairs(lora)) {
    const names = loraTensorNames(layer, target, suffix);
    for (const [which, data, shape] of [['A', pair.A, [r, pair.inDim]], ['B', pair.B, [pair.outDim, r]]] as const) {
      const name = names[which];
      const info = header.tensors.get(name);
      if (!info) {
        if (which === 'B' && opts.allowMissingB) continue;
        throw new WeightsMismatchError(`${file}: tensor "${name}" is missing (expected shape [${shape.join(', ')}]).`);
      }
      if (info.shape.length !== 2 || info.shape[0] !== shape[0] || info.shape[1] !== shape[1]) {
        throw new WeightsMismatchError(
          `${file}: tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] (rank ${r} for this model); the adapter was made for another model or rank.`,
        );
      }
      data.set(toFloat32(bytes.subarray(info.begin, info.end), info.dtype, name));
    }
  }
  return lora;
}

/**
 * What a LoRA file holds, without a model: rank (from the first A), targets, whether B is present,
 * and its metadata (alpha when we wrote it). For CLIs that take rank/targets from the file.
 * @example const { rank, targets } = inspectLora(bytes);
 */
export function inspectLora(bytes: Uint8Array, name = 'adapter.safetensors'): { rank: number | null; targets: Projection[]; hasB: boolean; metadata: Record<string, string> } {
  const header = readHeader(bytes, name);
  let rank: number | null = null;
  let hasB = false;
  const targets = new Set<Projection>();
  for (const [n, info] of header.tensors) {
    const m = LORA_NAME.exec(n);
    if (!m || m[4]) continue;
    if (PROJECTIONS.includes(m[2] as Projection)) targets.add(m[2] as Projection);
    if (m[3] === 'A' && rank === null) rank = info.shape[0];
    if (m[3] === 'B') hasB = true;
  }
  return { rank, targets: PROJECTIONS.filter((p) => targets.has(p)), hasB, metadata: header.metadata };
}

function readHeader(bytes: Uint8Array, file: string) {
  if (bytes.byteLength < 8) throw new WeightsFormatError(`${file}: only ${bytes.byteLength} bytes; not a safetensors file.`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const len = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  if (8 + len > bytes.byteLength) {
    throw new WeightsFormatError(`${file}: header length ${len} is larger than the file (${bytes.byteLength} bytes); truncated or not a safetensors file.`);
  }
  return parseSafetensorsHeader(file, bytes.subarray(8, 8 + len), bytes.byteLength);
}
