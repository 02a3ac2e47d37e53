/**
 * Tensors for the CPU reference engine, which keeps everything as f32: a cached q4 matrix is
 * dequantized, a checkpoint tensor is quantized (q4) exactly as before and written through to the
 * cache sink in the engine's q4 layout, so CPU- and GPU-written entries share one format.
 */
import { dequantizeQ4, quantizeQ4 } from '../quant/q4.ts';
import { dequantizeQ8, quantizeQ8 } from '../quant/q8.ts';
import { CacheCorruptError } from '../errors.ts';
import type { TensorKind } from './format.ts';
import { bytesOf, f32FromBytes, q4FromBytes, q4Parts, readWhole, writeThrough, type TensorSource } from './tensor-source.ts';

/** What the CPU engine reads from: anything with readTensor, optionally with a cache's ready/sink. */
export type CpuTensorReader = Pick<TensorSource, 'readTensor'> & Partial<Pick<TensorSource, 'ready' | 'sink'>>;

/**
 * One tensor as the CPU engine uses it: f32, or the dequantized q4 / q8 weights when kind is 'q4' / 'q8'.
 * `shape` is [N, K] for matrices; vectors pass null (their length comes from the data).
 * @example const q = await cpuTensor(ckpt, 'model.layers.0.self_attn.q_proj.weight', 'q4', [64, 64]);
 */
export async function cpuTensor(src: CpuTensorReader, name: string, kind: TensorKind, shape: [number, number] | null, signal?: AbortSignal): Promise<Float32Array> {
  const ready = src.ready?.(name);
  if (ready) {
    if (ready.kind !== kind) throw new CacheCorruptError(`The cached tensor ${name} is ${ready.kind}, expected ${kind}; the entry will be downloaded again.`);
    const bytes = await readWhole(ready, signal);
    if (kind === 'q4') return dequantizeQ4(q4FromBytes(bytes, shape![0], shape![1]));
    return kind === 'q8' ? dequantizeQ8(q4FromBytes(bytes, shape![0], shape![1], 8)) : f32FromBytes(bytes);
  }
  const w = await src.readTensor(name, signal);
  if (kind === 'f32') {
    await writeThrough(src.sink, name, 'f32', shape ?? [w.length], [bytesOf(w)], signal);
    return w;
  }
  if (kind === 'q8') {
    const q8 = quantizeQ8(w, shape![0], shape![1]);
    await writeThrough(src.sink, name, 'q8', shape!, q4Parts(q8), signal);
    return dequantizeQ8(q8);
  }
  const q = quantizeQ4(w, shape![0], shape![1]);
  await writeThrough(src.sink, name, 'q4', shape!, q4Parts(q), signal);
  return dequantizeQ4(q);
}
