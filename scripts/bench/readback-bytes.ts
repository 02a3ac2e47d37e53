/**
 * Bytes the GPU engine reads back (mapAsync) and uploads (writeBuffer) per decode token, counted
 * on Dawn around real generations: greedy (the argmax on the GPU: 4 bytes a token) and sampled
 * (the whole logits vector: the sampler runs on the CPU). The prompt's prefill always reads its
 * last logits whole (the result's lastLogits). Prints one JSON line.
 * Usage: `npm run bench:readback -- [vocab=128256] [tokens=8]`
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlamaModel } from '../../models/llama-model.ts';
import { nodeGpu } from '../../node/gpu/node-gpu.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { writeRandomLlama } from '../../tests/helpers/random-model.ts';

const vocab = Number(process.argv[2] ?? 128256);
const tokens = Number(process.argv[3] ?? 8);
const gpu = nodeGpu();
let mapped = 0, maps = 0, written = 0;
const mapAsync = GPUBuffer.prototype.mapAsync;
GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, mode: number, offset?: number, size?: number) {
  mapped += size ?? this.size - (offset ?? 0);
  maps++;
  return mapAsync.call(this, mode, offset, size);
};
const writeBuffer = GPUQueue.prototype.writeBuffer;
GPUQueue.prototype.writeBuffer = function (this: GPUQueue, ...a: Parameters<GPUQueue['writeBuffer']>) {
  const [, , data, , size] = a;
  written += size !== undefined ? size * ((data as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1) : (data as ArrayBufferView | ArrayBuffer).byteLength;
  return writeBuffer.apply(this, a);
} as GPUQueue['writeBuffer'];

const dir = await mkdtemp(join(tmpdir(), 'readback-'));
try {
  await writeRandomLlama(dir, { seed: 1, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: vocab, tie: true });
  const model = await LlamaModel.load(new NodeDirSource(dir), { backend: 'webgpu', gpu, weights: 'f32', precision: 'f32' });
  await model.generate([1, 2, 3, 4], { maxNewTokens: 1 }); // warm: pipelines, lazily created buffers
  const m0 = mapped, n0 = maps, w0 = written;
  await model.generate([1, 2, 3, 4], { maxNewTokens: 1 }); // prefill only (the first token comes from its logits)
  const prefill = { mapped: mapped - m0, maps: maps - n0, written: written - w0 };
  const m1 = mapped, n1 = maps, w1 = written;
  const r = await model.generate([1, 2, 3, 4], { maxNewTokens: tokens + 1, stopIds: [] });
  const steps = r.timings.decodeTokens;
  const decodeMapped = mapped - m1 - prefill.mapped, decodeMaps = maps - n1 - prefill.maps, decodeWritten = written - w1 - prefill.written;
  const m2 = mapped;
  const sampled = await model.generate([1, 2, 3, 4], { maxNewTokens: tokens + 1, stopIds: [], sampling: { kind: 'sample', temperature: 1, topP: 0.9, seed: 1 } });
  console.log(JSON.stringify({
    vocab, decodeSteps: steps,
    readbackBytesPerDecodeToken: decodeMapped / steps, mapsPerDecodeToken: decodeMaps / steps,
    uploadBytesPerDecodeToken: decodeWritten / steps, prefillReadbackBytes: prefill.mapped,
    sampledReadbackBytesPerDecodeToken: (mapped - m2 - prefill.mapped) / sampled.timings.decodeTokens,
  }));
  model.dispose();
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
