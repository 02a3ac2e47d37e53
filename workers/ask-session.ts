/**
 * The app's entry to the TTT pipeline: the pipeline (models/ask/pipeline.ts) over the two worker
 * clients. The UI imports the pipeline's types and helpers from here, never from models/.
 */
import { askCompare, askQuestion, type CompareResult } from '../models/ask/pipeline.ts';
import type { AskSettings } from '../models/ask/settings.ts';
import type { AskEvent, AskRecord } from '../models/ask/types.ts';
import { askModelOfClient, askRetrieverOfClient } from './ask-clients.ts';
import type { LlmClient } from './client.ts';
import type { ModelInfo } from './protocol.ts';
import type { RetrievalClient } from './retrieval-client.ts';

export { ASK_DEFAULTS, ASK_PRESETS, resolveAskSettings, type AskPreset, type AskSettings } from '../models/ask/settings.ts';
export type { AskEvent, AskRecord, AskStage, RetrievalSummary, RetrieverKind } from '../models/ask/types.ts';
export type { SystemPromptChoice } from '../models/ask/prompt-plan.ts';
export type { CompareResult } from '../models/ask/pipeline.ts';
export { splitAnswer, type AnswerParts } from '../models/ask/output-split.ts';
export { PROJECTIONS, type Projection } from '../models/config.ts';

export interface WorkerAskDeps {
  llm: LlmClient;
  /** The loaded model (from LlmClient.load). */
  model: ModelInfo;
  /** The retrieval worker with an open index; null when no corpus is ready (TTT then refuses). */
  retrieval: RetrievalClient | null;
}

export type Run = 'single' | 'without' | 'with';

/**
 * One question in the app: a single answer (TTT per settings.ttt), or compare mode (without, then
 * with TTT). Events carry the run they belong to.
 * @example
 *   const out = await askInWorkers(deps, 'Why does gout hurt the big toe?', settings, 'single', { onEvent, signal });
 */
export async function askInWorkers(
  deps: WorkerAskDeps,
  question: string,
  settings: AskSettings,
  mode: 'single' | 'compare',
  opts: { signal?: AbortSignal; onEvent?: (run: Run, e: AskEvent) => void } = {},
): Promise<{ records: AskRecord[]; differ: boolean | null }> {
  const pipelineDeps = { model: askModelOfClient(deps.llm, deps.model), retriever: deps.retrieval ? askRetrieverOfClient(deps.retrieval) : null };
  if (mode === 'compare') {
    const r: CompareResult = await askCompare(question, settings, pipelineDeps, { signal: opts.signal, onEvent: opts.onEvent });
    return { records: [r.without, r.with], differ: r.differ };
  }
  const record = await askQuestion(question, settings, pipelineDeps, { signal: opts.signal, onEvent: opts.onEvent && ((e) => opts.onEvent!('single', e)) });
  return { records: [record], differ: null };
}
