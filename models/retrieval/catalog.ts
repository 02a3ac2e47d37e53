/**
 * What the model manager offers for retrieval: the bge embedders (ONNX conversions by Xenova of
 * BAAI's models) and the corpora. Sizes are the hub's file sizes (approximate, MB = 10^6 bytes);
 * throughputs are rough assumptions used for a time estimate until the user's device is measured.
 */
import { FINEMED_DPO_REPO } from './finemed-row.ts';
import type { IndexKind } from './search-types.ts';

export type EmbedderDtype = 'fp32' | 'fp16' | 'q8';

export interface EmbedderEntry {
  /** Hub repo id, also the model id in index manifests. */
  id: string;
  label: string;
  dims: number;
  /** The in-memory index the worker picks for it: voy up to 768 dims, exact search above. */
  index: IndexKind;
  /** Approximate download in bytes per ONNX variant (model file + tokenizer and configs). */
  downloadBytes: Record<EmbedderDtype, number>;
  license: string;
  description: string;
  /** Assumed texts/s for FineMed-DPO-length questions (fp32), before a measurement. */
  assumedTextsPerSecond: { webgpu: number; wasm: number; cpu: number };
  default?: true;
}

const MB = 1e6;
/** tokenizer.json (~0.7 MB), vocab, configs: the same for the three sizes. */
const TOKENIZER_BYTES = 0.8 * MB;

function bytes(fp32: number, fp16: number, q8: number): Record<EmbedderDtype, number> {
  return { fp32: fp32 * MB + TOKENIZER_BYTES, fp16: fp16 * MB + TOKENIZER_BYTES, q8: q8 * MB + TOKENIZER_BYTES };
}

export const BGE_SMALL = 'Xenova/bge-small-en-v1.5';
export const BGE_BASE = 'Xenova/bge-base-en-v1.5';
export const BGE_LARGE = 'Xenova/bge-large-en-v1.5';

/** The embedder used when the user has not chosen one. */
export const DEFAULT_EMBEDDER = BGE_BASE;

export const EMBEDDERS: readonly EmbedderEntry[] = [
  {
    id: BGE_BASE,
    label: 'bge-base-en-v1.5',
    dims: 768,
    index: 'voy',
    downloadBytes: bytes(436, 218, 110),
    license: 'MIT',
    description: 'Default: 768-dimensional English embeddings, a good balance of quality and speed; voy k-d tree index.',
    assumedTextsPerSecond: { webgpu: 150, wasm: 6, cpu: 10 },
    default: true,
  },
  {
    id: BGE_LARGE,
    label: 'bge-large-en-v1.5',
    dims: 1024,
    index: 'exact',
    downloadBytes: bytes(1340, 670, 337),
    license: 'MIT',
    description:
      "The paper's retriever: 1024 dims, best quality, about 3x slower than base. Exact search (voy-search supports at most 768 dims).",
    assumedTextsPerSecond: { webgpu: 50, wasm: 2, cpu: 3 },
  },
  {
    id: BGE_SMALL,
    label: 'bge-small-en-v1.5',
    dims: 384,
    index: 'voy',
    downloadBytes: bytes(133, 67, 34),
    license: 'MIT',
    description: 'Smallest and fastest: 384 dims, for slow devices or quick indexing; voy index.',
    assumedTextsPerSecond: { webgpu: 400, wasm: 20, cpu: 30 },
  },
];

export interface CorpusEntry {
  id: 'demo' | 'finemed-dpo';
  label: string;
  /** Records in the corpus. */
  records: number;
  /** Approximate bytes fetched to read it (FineMed-DPO: only its prompt and chosen columns; an estimate). */
  downloadBytes: number;
  /** null: read from the dataset card when it is downloaded. */
  license: string | null;
  description: string;
  /** Where it comes from: a path on the app's origin, or a hub dataset repo. */
  location: { kind: 'origin'; path: string } | { kind: 'hub-dataset'; repo: string };
}

export const CORPORA: readonly CorpusEntry[] = [
  {
    id: 'demo',
    label: 'Demo corpus',
    records: 40,
    downloadBytes: 0.16 * MB,
    license: 'CC0-1.0',
    description: 'Forty clinical vignettes with reasoning written for this app; shipped with it, for offline first use.',
    location: { kind: 'origin', path: 'demo/demo-corpus.jsonl' },
  },
  {
    id: 'finemed-dpo',
    label: 'FineMed-DPO',
    records: 32_919,
    // Rough: ~10 KB of prompt + chosen per row, ~2x parquet compression. The loader reports the
    // exact bytes of those columns as soon as each file's footer is read.
    downloadBytes: 150 * MB,
    license: null,
    description: "FineMedLM-o1's long-form medical reasoning traces (prompt + chosen), the paper's TTT corpus; indexed on this device.",
    location: { kind: 'hub-dataset', repo: FINEMED_DPO_REPO },
  },
];

/**
 * The catalogue entry of a model id, if it is one of ours.
 * @example embedderEntry('Xenova/bge-large-en-v1.5')?.dims; // 1024
 */
export function embedderEntry(id: string): EmbedderEntry | undefined {
  return EMBEDDERS.find((e) => e.id === id);
}

