/**
 * The app's entry to the evaluation harness (models/eval/): the same runner as `npm run eval`,
 * over the worker clients, so a user measures TTT on their own GPU with the app's models and
 * corpus. The UI imports the harness' types and helpers from here, never from models/.
 */
import { runEval, type EvalModes, type EvalProgress, type RunEvalResult } from '../models/eval/runner.ts';
import type { EvalLog } from '../models/eval/log.ts';
import type { McqItem } from '../models/eval/items.ts';
import type { AskSettings } from '../models/ask/settings.ts';
import { askModelOfClient, askRetrieverOfClient } from './ask-clients.ts';
import type { WorkerAskDeps } from './ask-session.ts';

export { parseMcqJsonl, selectItems, chanceOf, type McqItem } from '../models/eval/items.ts';
export { MemoryEvalLog, logKey, type EvalLog, type EvalLogLine, type EvalMode } from '../models/eval/log.ts';
export { summarizeEval, evalMarkdown, type EvalSummary, type GroupResult, type ModeResult } from '../models/eval/report.ts';
export type { EvalModes, EvalProgress } from '../models/eval/runner.ts';

/**
 * @example
 *   const r = await evalInWorkers(deps, items, { modes: 'both', settings, log, onProgress });
 */
export function evalInWorkers(
  deps: WorkerAskDeps,
  items: readonly McqItem[],
  opts: { modes: EvalModes; settings: Partial<AskSettings>; log: EvalLog; signal?: AbortSignal; onProgress?: (p: EvalProgress) => void },
): Promise<RunEvalResult> {
  return runEval(items, {
    ...opts,
    deps: { model: askModelOfClient(deps.llm, deps.model), retriever: deps.retrieval ? askRetrieverOfClient(deps.retrieval) : null },
  });
}
