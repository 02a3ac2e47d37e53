/**
 * What `llm ask` and `eval run` share: the pipeline settings from flags, and the retriever (an
 * index built by `index build`, with its embedder, or BM25 over a JSONL corpus, no model).
 */
import { createReadStream } from 'node:fs';
import { askRetrieverOf } from '../models/ask/in-process.ts';
import type { SystemPromptChoice } from '../models/ask/prompt-plan.ts';
import type { AskPreset, AskSettings } from '../models/ask/settings.ts';
import type { AskRetriever } from '../models/ask/types.ts';
import { NotFoundError } from '../models/errors.ts';
import { readJsonlCorpus } from '../models/retrieval/jsonl.ts';
import { LexicalRetriever } from '../models/retrieval/lexical-retriever.ts';
import { loadIndexEmbedder } from '../node/retrieval/node-embedder.ts';
import { NodeDirStore } from '../node/retrieval/node-store.ts';
import { loadIndex, readManifest } from '../models/retrieval/persist.ts';
import { Retriever } from '../models/retrieval/retriever.ts';
import { loadVoyNode } from '../node/retrieval/voy-node.ts';
import { optionalNumberFlag, stringFlag, type ParsedArgs } from './cli-args.ts';
import { UsageError } from './cli-errors.ts';
import { parseTargets } from './llm-ttt.ts';

/** The valued flags settingsFromArgs reads (besides the seed flag, whose name the command picks). */
export const ASK_SETTING_FLAGS = [
  'preset', 'steps', 'lr', 'rank', 'alpha', 'targets', 'max-train-tokens', 'max-new', 'temperature', 'top-p', 'k', 'system', 'custom-system',
];

const SYSTEMS: readonly SystemPromptChoice[] = ['o1', 'card', 'none', 'custom'];

/**
 * The settings the flags name; unset ones fall back to the preset and the defaults in resolveAskSettings.
 * `seedFlag` is the flag of the decoding seed (`--seed` in llm ask, `--decode-seed` in eval, where
 * `--seed` seeds the item sample).
 * @example const { overrides, preset } = settingsFromArgs(args); await askQuestion(q, overrides, deps, { preset });
 */
export function settingsFromArgs(args: ParsedArgs, seedFlag = 'seed'): { overrides: Partial<AskSettings>; preset: AskPreset } {
  const preset = (stringFlag(args, 'preset') ?? 'default') as AskPreset;
  if (preset !== 'default' && preset !== 'paper') throw new UsageError(`--preset must be default or paper, got "${preset}"`);
  const system = stringFlag(args, 'system') as SystemPromptChoice | undefined;
  if (system !== undefined && !SYSTEMS.includes(system)) throw new UsageError(`--system must be one of ${SYSTEMS.join(', ')}, got "${system}"`);
  const targets = stringFlag(args, 'targets');
  return {
    preset,
    overrides: {
      steps: optionalNumberFlag(args, 'steps'), lr: optionalNumberFlag(args, 'lr'), rank: optionalNumberFlag(args, 'rank'),
      alpha: optionalNumberFlag(args, 'alpha'), targets: targets ? parseTargets(targets) : undefined,
      maxTrainTokens: optionalNumberFlag(args, 'max-train-tokens'), maxNewTokens: optionalNumberFlag(args, 'max-new'),
      temperature: optionalNumberFlag(args, 'temperature'), topP: optionalNumberFlag(args, 'top-p'), seed: optionalNumberFlag(args, seedFlag),
      k: optionalNumberFlag(args, 'k'), system, customSystem: stringFlag(args, 'custom-system'),
    },
  };
}

export interface OpenedRetriever {
  retriever: AskRetriever;
  /** What was opened, for progress lines. */
  description: string;
  close(): Promise<void>;
}

/**
 * The index in `dir` with the embedder it was built with (or `embedderSpec`).
 * @example const opened = await openIndexRetriever('/tmp/idx', undefined, 'exact'); try { ... } finally { await opened.close(); }
 */
export async function openIndexRetriever(dir: string, embedderSpec: string | undefined, search: 'voy' | 'exact'): Promise<OpenedRetriever> {
  const store = new NodeDirStore(dir);
  const manifest = await readManifest(store);
  if (!manifest) throw new NotFoundError(`${dir} holds no retrieval index (no manifest.json); build one with \`npm run index -- build\`.`);
  const embedder = await loadIndexEmbedder(manifest, { override: embedderSpec });
  const data = await loadIndex(store, { embedder: embedder.info });
  const index = manifest.vectors.dims > 768 ? 'exact' : search; // voy refuses more than 768 dims
  const r = await Retriever.create(data, embedder, { index, voy: index === 'voy' ? await loadVoyNode() : undefined });
  return {
    retriever: askRetrieverOf(r), description: `index ${dir} (${data.records.length} records, ${index} search)`,
    close: async () => { r.dispose(); await embedder.dispose(); },
  };
}

/**
 * BM25 over a JSONL corpus (the index's record schema), built in memory; no embedder. Bad lines stop it.
 * @example const opened = await openCorpusRetriever('../shared/data/traces.jsonl');
 */
export async function openCorpusRetriever(path: string): Promise<OpenedRetriever> {
  const { records } = await readJsonlCorpus(createReadStream(path), { onBadLine: 'stop', defaults: { source: path } });
  const lexical = await LexicalRetriever.create(records);
  return { retriever: askRetrieverOf(lexical), description: `BM25 over ${path} (${records.length} records)`, close: async () => {} };
}

/** Which retriever the flags ask for: `--index <dir> [--embedder] [--search]`, `--corpus <jsonl>`, or none. */
export async function openRetrieverFromArgs(args: ParsedArgs): Promise<OpenedRetriever | null> {
  const indexDir = stringFlag(args, 'index');
  const corpus = stringFlag(args, 'corpus');
  if (indexDir && corpus) throw new UsageError('give --index or --corpus, not both');
  const search = (stringFlag(args, 'search') ?? 'exact') as 'voy' | 'exact';
  if (search !== 'voy' && search !== 'exact') throw new UsageError(`--search must be voy or exact, got "${search}"`);
  if (indexDir) return openIndexRetriever(indexDir, stringFlag(args, 'embedder'), search);
  if (stringFlag(args, 'embedder')) throw new UsageError('--embedder needs --index (BM25 over --corpus uses no embedder)');
  return corpus ? openCorpusRetriever(corpus) : null;
}
