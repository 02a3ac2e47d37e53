/**
 * What the app offers to download, with sizes a new user sees before anything is fetched. The
 * embedders' facts come from the retrieval worker's catalogue; the language model's are here.
 */

export { CORPORA, DEFAULT_EMBEDDER, EMBEDDERS, embedderEntry } from '../workers/catalog.ts';

export const DEFAULT_LLM = 'hongzhouyu/FineMedLM-o1';
export const HUGGING_FACE = 'https://huggingface.co';

export interface LlmCatalogEntry {
  repo: string;
  title: string;
  /** bf16 safetensors as downloaded once. */
  downloadBytes: number;
  /** The 4-bit weights kept on this device (OPFS) after the first load. */
  cachedBytes: number;
  license: string;
  note: string;
}

export const LLM_CATALOG: readonly LlmCatalogEntry[] = [
  {
    repo: DEFAULT_LLM,
    title: 'FineMedLM-o1 (8B, Llama 3.1)',
    downloadBytes: 16.07e9,
    cachedBytes: 4.78e9, // 4-bit body (4.52 GB) + the 8-bit lm_head's extra 0.26 GB (models/memory-plan.ts)
    license: 'MIT (model card); built on Llama 3.1 (Llama 3.1 Community License)',
    note: 'Quantized to 4-bit (the output layer to 8-bit) on first load; later loads read the 4-bit weights from this device.',
  },
];

export function llmEntry(repo: string): LlmCatalogEntry | undefined {
  return LLM_CATALOG.find((e) => e.repo === repo);
}
