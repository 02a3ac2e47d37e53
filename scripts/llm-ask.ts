/**
 * `npm run llm -- ask`: one question through the TTT pipeline (models/ask/pipeline.ts), the same
 * code the app runs: retrieve from an index built by `npm run index -- build`, train the adapter
 * on the top trace, answer, restore. `--ttt compare` answers without and then with TTT.
 *
 *   npm run --silent llm -- ask --model <dir|url> --index <dir> [--embedder <dir|repo>] --question "..."
 *     [--ttt on|off|compare] [--preset paper] [--steps N] [--lr X] [--rank R] [--alpha A] [--targets q,k,...]
 *     [--max-train-tokens N] [--max-new N] [--temperature T] [--top-p P] [--seed S] [-k N | --k N]
 *     [--system o1|card|none|custom] [--custom-system "..."] [--search voy|exact]
 *     --backend cpu|webgpu [--f32] [--lm-head q4|q8|f32] [--precision auto|f16|f32] [--max-context N] --json
 *
 * The last stdout line is the pipeline's record as JSON (compare: {"without", "with", "differ"}).
 */
import { askModelOf } from '../models/ask/in-process.ts';
import { askCompare, askQuestion } from '../models/ask/pipeline.ts';
import type { AskEvent } from '../models/ask/types.ts';
import type { LlamaModel } from '../models/llama-model.ts';
import { stringFlag, type CommandSpec, type ParsedArgs } from './cli-args.ts';
import { UsageError } from './cli-errors.ts';
import { openIndexRetriever, settingsFromArgs } from './cli-ask.ts';

export const ASK_USAGE = `usage: npm run --silent llm -- ask --model <dir|url> --index <dir> [--embedder <dir|repo>] --question "..."
  [--ttt on|off|compare] [--preset paper] [--steps N] [--lr X] [--rank R] [--alpha A] [--targets q,k,v,o,gate,up,down]
  [--max-train-tokens N] [--max-new N] [--temperature T (0 = greedy)] [--top-p P] [--seed S] [--k N]
  [--system o1|card|none|custom] [--custom-system "..."] [--search voy|exact]
  --backend cpu|webgpu [--f32] [--lm-head q4|q8|f32] [--precision auto|f16|f32] [--max-context N] [--json]
  --index is needed for --ttt on/compare (default on); --embedder defaults to the one the index was built with.`;

export const ASK_SPEC: CommandSpec = {
  switches: ['json', 'f32'],
  valued: [
    'model', 'index', 'embedder', 'question', 'ttt', 'preset', 'steps', 'lr', 'rank', 'alpha', 'targets', 'max-train-tokens',
    'max-new', 'temperature', 'top-p', 'seed', 'k', 'system', 'custom-system', 'search', 'backend', 'precision', 'max-context', 'lm-head',
  ],
};

/** Progress on stderr, so stdout stays the record alone. */
function logEvent(e: AskEvent, prefix = ''): void {
  if (e.type === 'stage') process.stderr.write(`${prefix}${e.stage}\n`);
  else if (e.type === 'retrieved') process.stderr.write(`${prefix}retrieved ${e.retrieval.results.map((r) => `${r.id} (${r.score.toFixed(3)})`).join(', ')}\n`);
  else if (e.type === 'ttt-step') process.stderr.write(`${prefix}step ${e.step}/${e.steps} loss ${e.loss.toFixed(4)} (${e.ms.toFixed(0)} ms)\n`);
  else if (e.type === 'restored') process.stderr.write(`${prefix}adapters cleared\n`);
}

export async function askCommand(args: ParsedArgs, loadModel: (args: ParsedArgs) => Promise<LlamaModel>): Promise<unknown> {
  const question = stringFlag(args, 'question');
  if (!question) throw new UsageError('--question is required');
  const mode = stringFlag(args, 'ttt') ?? 'on';
  if (!['on', 'off', 'compare'].includes(mode)) throw new UsageError(`--ttt must be on, off or compare, got "${mode}"`);
  const search = (stringFlag(args, 'search') ?? 'exact') as 'voy' | 'exact';
  if (search !== 'voy' && search !== 'exact') throw new UsageError(`--search must be voy or exact, got "${search}"`);
  const { overrides, preset } = settingsFromArgs(args);
  const indexDir = stringFlag(args, 'index');
  if (mode !== 'off' && !indexDir) throw new UsageError('--index is required for --ttt on/compare');

  const opened = indexDir ? await openIndexRetriever(indexDir, stringFlag(args, 'embedder'), search) : null;
  const llm = await loadModel(args);
  try {
    const deps = { model: askModelOf(llm, stringFlag(args, 'model')!), retriever: opened?.retriever ?? null };
    const quiet = args.flags.has('json');
    if (mode === 'compare') {
      return await askCompare(question, overrides, deps, { preset, onEvent: quiet ? undefined : (run, e) => logEvent(e, `[${run}] `) });
    }
    return await askQuestion(question, { ...overrides, ttt: mode === 'on' }, deps, { preset, onEvent: quiet ? undefined : (e) => logEvent(e) });
  } finally {
    llm.dispose();
    await opened?.close();
  }
}
