/**
 * What the engines load weights from. A TensorSource gives each tensor either ready-made in the
 * engine's layout (`ready`: bytes from the weight cache, no quantization) or as f32 rows from the
 * checkpoint, and takes the tensors it had to produce (`sink`: the write-through cache). The GPU
 * uploader (models/gpu/gpu-weights.ts) and the CPU reference (models/cpu/cpu-llama.ts) only see
 * this interface; a plain Checkpoint becomes one with `checkpointTensors`.
 */
import type { Checkpoint } from '../checkpoint.ts';
import type { LlamaConfig } from '../config.ts';
import { InvalidInputError, throwIfAborted } from '../errors.ts';
import type { Q4Matrix } from '../quant/q4.ts';
import type { TensorKind } from './format.ts';

/** A tensor already in engine layout (q4: packed words then padded scales; f32: floats). */
export interface EngineTensor {
  readonly name: string;
  readonly kind: TensorKind;
  readonly shape: number[];
  readonly bytes: number;
  /**
   * Streams the bytes in order; `offset` is the slice's position in the tensor. The size and
   * checksum are checked as it goes: CacheCorruptError (naming the tensor) when they do not match.
   */
  read(onSlice: (bytes: Uint8Array, offset: number) => void | Promise<void>, signal?: AbortSignal): Promise<void>;
}

/** Receives one tensor's engine bytes in order; `bytes` is only valid during the call. */
export interface TensorWriter {
  write(bytes: Uint8Array): Promise<void>;
  /** The tensor is complete: make it durable and record it. */
  commit(): Promise<void>;
  /** The tensor will not be completed (error or cancel): release what is held. */
  abort(): Promise<void>;
}

export interface TensorSink {
  begin(name: string, kind: TensorKind, shape: number[]): Promise<TensorWriter>;
}

export interface TensorSource {
  readonly config: LlamaConfig;
  /** Bytes the tensor takes in the source (for progress). */
  storedBytes(name: string): number;
  /** Rows [rowStart, rowStart + rowCount) of a 2-D tensor as f32 (a 1-D tensor is one row). */
  readRows(name: string, rowStart: number, rowCount: number, signal?: AbortSignal): Promise<Float32Array>;
  readTensor(name: string, signal?: AbortSignal): Promise<Float32Array>;
  /** The tensor ready-made in engine layout, or null: then it is read from the checkpoint. */
  ready?(name: string): EngineTensor | null;
  /** Where tensors read from the checkpoint go once in engine layout (the write-through cache). */
  readonly sink?: TensorSink;
}

/** Distinguishes a TensorSource from a bare Checkpoint (both can be passed to the engines). */
export function isTensorSource(x: object): x is TensorSource {
  return typeof (x as Partial<TensorSource>).storedBytes === 'function';
}

/**
 * A checkpoint as a TensorSource (no cache): every tensor is read and converted on load.
 * @example const m = await GpuLlama.load(checkpointTensors(await openCheckpoint(src)), ctx, opts);
 */
export function checkpointTensors(ckpt: Checkpoint, extra: Pick<TensorSource, 'ready' | 'sink'> = {}): TensorSource {
  return {
    config: ckpt.config,
    storedBytes: (name) => {
      const t = ckpt.tensors.get(name);
      if (!t) throw new InvalidInputError(`tensor "${name}" is not part of this checkpoint.`);
      return t.end - t.begin;
    },
    readRows: (name, r0, n, signal) => ckpt.readRows(name, r0, n, signal),
    readTensor: (name, signal) => ckpt.readTensor(name, signal),
    ...extra,
  };
}

/** The bytes of a typed array, without copying. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A whole EngineTensor in one buffer (CPU engine; GPU uploads stream slices instead). */
export async function readWhole(t: EngineTensor, signal?: AbortSignal): Promise<Uint8Array> {
  const out = new Uint8Array(t.bytes);
  await t.read((bytes, offset) => { out.set(bytes, offset); }, signal);
  return out;
}

/** Writes one tensor through the sink (nothing without one); aborts the writer on failure. */
export async function writeThrough(sink: TensorSink | undefined, name: string, kind: TensorKind, shape: number[], parts: Uint8Array[], signal?: AbortSignal): Promise<void> {
  if (!sink) return;
  const w = await sink.begin(name, kind, shape);
  try {
    for (const p of parts) {
      throwIfAborted(signal);
      await w.write(p);
    }
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** A Q4 (or Q8, the same shape) matrix as the engine stores it: packed words, then the f16 scales padded to a whole u32. */
export function q4Parts(m: Q4Matrix): Uint8Array[] {
  const scales = new Uint8Array(Math.ceil(m.scales.length / 2) * 4);
  scales.set(bytesOf(m.scales));
  return [bytesOf(m.qweight), scales];
}

/**
 * The inverse of q4Parts over one buffer (no copy when `bytes` is 4-byte aligned); with
 * `wordsPerGroup` 8, of a Q8 matrix (models/quant/q8.ts: same layout, 8 words per group).
 */
export function q4FromBytes(bytes: Uint8Array, N: number, K: number, wordsPerGroup: 4 | 8 = 4): Q4Matrix {
  const G = Math.ceil(K / 32);
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return {
    N, K, G,
    qweight: new Uint32Array(aligned.buffer, aligned.byteOffset, N * G * wordsPerGroup),
    scales: new Uint16Array(aligned.buffer, aligned.byteOffset + N * G * wordsPerGroup * 4, N * G),
  };
}

/** f32 values of engine bytes (no copy when aligned). */
export function f32FromBytes(bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}
