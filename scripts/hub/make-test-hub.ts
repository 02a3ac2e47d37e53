/**
 * A hub folder for tests, made of symlinks into `../shared` (nothing copied): the golden Llama
 * checkpoints as model repos, tiny-random-bert in transformers.js layout (config, tokenizer,
 * onnx/model.onnx and onnx/model_quantized.onnx) as `Xenova/tiny-random-bert`, and the shared
 * traces as a dataset repo with a card giving their licenses.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '../../models/errors.ts';

/** Model repo ids in the test hub. */
export const TEST_HUB_MODELS = {
  /** stories260K, f32 single file. */
  llm: 'test-org/stories260K',
  llmBf16: 'test-org/stories260K-bf16',
  /** Two shards + model.safetensors.index.json. */
  llmSharded: 'test-org/stories260K-sharded',
  /** Llama-3.1-shaped random model (llama3 rope scaling, GQA). */
  tinyLlama31: 'test-org/tiny-llama31-random',
  /** transformers.js layout, 32 dims, random weights. */
  embedder: 'Xenova/tiny-random-bert',
} as const;

/** Dataset repo ids in the test hub. */
export const TEST_HUB_DATASETS = { traces: 'test-org/traces' } as const;

/** Path of the traces file inside the `traces` dataset repo. */
export const TEST_HUB_TRACES_FILE = 'data/traces.jsonl';

/** `../shared` beside the checkout (this file is scripts/hub/make-test-hub.ts). */
export const DEFAULT_SHARED_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared');

/** [path in the hub folder, path in ../shared] */
const LINKS: [string, string][] = [
  [TEST_HUB_MODELS.llm, 'golden/stories260K-hf/f32'],
  [TEST_HUB_MODELS.llmBf16, 'golden/stories260K-hf/bf16'],
  [TEST_HUB_MODELS.llmSharded, 'golden/stories260K-hf/sharded'],
  [TEST_HUB_MODELS.tinyLlama31, 'golden/tiny-llama31-random'],
  [TEST_HUB_MODELS.embedder, 'models/tiny-random-bert'],
  [`datasets/${TEST_HUB_DATASETS.traces}/${TEST_HUB_TRACES_FILE}`, 'data/traces.jsonl'],
];

// Item licenses of traces.jsonl, from ../shared/data/SOURCES.md.
const TRACES_CARD = `---
license:
- apache-2.0
- cc-by-4.0
- mit
---
# traces (test copy)

Medical reasoning traces from ../shared/data/traces.jsonl; each line's \`license\` field gives its
own license (see ../shared/data/SOURCES.md).
`;

/**
 * Builds (or refreshes) the test hub in `targetDir`; returns the folder, or null when `sharedDir`
 * is absent (fresh clone: callers skip). Throws NotFoundError when ../shared lacks a needed file.
 * @example
 *   const dir = await makeTestHub(mkdtempSync(join(tmpdir(), 'hub-')));
 *   if (dir) { const hub = await startHubServer(dir); new UrlModelSource(hub.modelBase(TEST_HUB_MODELS.llm)); }
 */
export async function makeTestHub(targetDir: string, sharedDir: string = DEFAULT_SHARED_DIR): Promise<string | null> {
  if (!existsSync(join(sharedDir, 'golden'))) return null;
  const root = resolve(targetDir);
  for (const [at, from] of LINKS) {
    const source = join(sharedDir, from);
    if (!existsSync(source)) throw new NotFoundError(`makeTestHub: ${source} is missing; ../shared is incomplete.`);
    const link = join(root, at);
    await mkdir(dirname(link), { recursive: true });
    await rm(link, { force: true, recursive: false }).catch(() => {});
    await symlink(source, link);
  }
  await writeFile(join(root, 'datasets', TEST_HUB_DATASETS.traces, 'README.md'), TRACES_CARD);
  return root;
}
