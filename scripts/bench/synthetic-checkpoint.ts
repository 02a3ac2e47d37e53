import type { Checkpoint, TensorRef } from '../../models/checkpoint.ts';
import { expectedTensors, type LlamaConfig } from '../../models/config.ts';
import type { ByteSource } from '../../models/io/source.ts';

/**
 * A Checkpoint of seeded random weights generated on demand (nothing downloaded or stored), for
 * benchmarking real shapes such as one FineMedLM-o1 layer (4096 hidden, 14336 FFN, 32/8 heads).
 */
export function syntheticCheckpoint(config: LlamaConfig, seed = 1): Checkpoint {
  const none: ByteSource = { name: 'synthetic', size: 0, read: async () => new Uint8Array() };
  const tensors = new Map<string, TensorRef>();
  let totalBytes = 0;
  for (const [name, shape] of expectedTensors(config)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    tensors.set(name, { name, dtype: 'F32', shape, begin: 0, end: bytes, file: none });
    totalBytes += bytes;
  }
  const fill = (name: string, rowStart: number, rows: number): Float32Array => {
    const shape = tensors.get(name)!.shape;
    const cols = shape.length === 1 ? shape[0] : shape[1];
    const out = new Float32Array(rows * cols);
    const isNorm = shape.length === 1;
    const scale = isNorm ? 0.1 : 1 / Math.sqrt(cols);
    // Seeded per row, so a row's values do not depend on how the reads are chunked (the uploader
    // splits its chunks at row-block boundaries; a CPU reference reads with other chunks).
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) >>> 0; // q, k, v differ
    for (let r = 0; r < rows; r++) {
      let s = (seed * 2654435761 + (rowStart + r) * 40503 + h) >>> 0;
      for (let i = r * cols; i < (r + 1) * cols; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0; // LCG: fast enough for GBs of weights
        out[i] = (isNorm ? 1 : 0) + ((s / 4294967296) * 2 - 1) * scale;
      }
    }
    return out;
  };
  return {
    config,
    rawConfig: {},
    tensors,
    totalBytes,
    readRows: async (name, rowStart, rowCount) => fill(name, rowStart, rowCount),
    readTensor: async (name) => {
      const shape = tensors.get(name)!.shape;
      return fill(name, 0, shape.length === 1 ? 1 : shape[0]);
    },
  };
}

/** FineMedLM-o1 (Llama-3.1-8B) shapes with `layers` layers and a small vocabulary (layer timing only). */
export function finemedLayerConfig(layers = 1, vocabSize = 256): LlamaConfig {
  return {
    hiddenSize: 4096, intermediateSize: 14336, numLayers: layers, numHeads: 32, numKvHeads: 8, headDim: 128,
    vocabSize, rmsNormEps: 1e-5, ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    maxPositionEmbeddings: 131072, tieWordEmbeddings: false, bosTokenId: 128000, eosTokenIds: [128001, 128009],
  };
}
