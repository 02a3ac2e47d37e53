/**
 * The Evaluate view's actions: pick a multiple-choice JSONL file (the schema of
 * ../shared/data/eval-mcq.jsonl), run it through the app's pipeline without and/or with TTT (the
 * runner of `npm run eval`), keep the log in IndexedDB so a stopped or reloaded run resumes, and
 * download the log and the results.
 */
import { evalInWorkers, evalMarkdown, parseMcqJsonl, selectItems, summarizeEval, type McqItem } from '../../workers/eval-session.ts';
import { IdbEvalLog } from '../history/eval-log.ts';
import { deleteEvalRun } from '../history/db.ts';
import { corpusUsable, patch, toUiError, useApp } from '../store.ts';
import { useSettings } from '../settings-store.ts';
import { llmClient, retrievalClient } from './clients.ts';
import { download } from './download.ts';

/** The parsed questions of the picked file (kept here: large, and only the runner needs them). */
let allItems: McqItem[] = [];
let controller: AbortController | null = null;
let current: IdbEvalLog | null = null;

export async function pickEvalFile(file: File): Promise<void> {
  try {
    const { items, badLines } = parseMcqJsonl(await file.text(), { onBadLine: 'skip' });
    allItems = items;
    const benchmarks: Record<string, number> = {};
    for (const it of items) benchmarks[it.benchmark] = (benchmarks[it.benchmark] ?? 0) + 1;
    patch('evaluation', { file: { name: file.name, items: items.length, benchmarks, skippedLines: badLines.length }, error: null, summary: null, lines: [], progress: null, status: 'idle' });
  } catch (e) {
    allItems = [];
    patch('evaluation', { file: null, error: toUiError(e), status: 'error' });
  }
}

/** The items this run covers, from the view's limit / sample / seed. */
function chosenItems(): McqItem[] {
  const { limit, sample, seed } = useApp.getState().evaluation;
  return selectItems(allItems, sample > 0 ? { sample, seed } : limit > 0 ? { limit } : {});
}

/**
 * The run's identity: the same file, selection, modes, settings and model resume one log; any
 * change starts another (the runner refuses to mix two experiments in one log anyway).
 */
function runKey(items: McqItem[]): string {
  const s = useApp.getState();
  const e = s.evaluation;
  const parts = [e.file?.name, items.length, items[0]?.id, items.at(-1)?.id, e.modes, s.llm.info?.source, s.llm.info?.weights, JSON.stringify(useSettings.getState().question)];
  return parts.join('|');
}

export function evalBlocker(): string | null {
  const s = useApp.getState();
  if (s.llm.status !== 'loaded') return 'Evaluating needs the models: load them above.';
  if (!s.evaluation.file || allItems.length === 0) return 'Choose an items file first.';
  if (s.evaluation.modes !== 'off' && !corpusUsable(s)) return 'TTT needs a corpus: wait for the index, or evaluate without TTT.';
  if (s.ask.status === 'running') return 'A question is being answered; wait for it.';
  return null;
}

export async function runEvaluation(): Promise<void> {
  const s = useApp.getState();
  if (s.evaluation.status === 'running') return;
  const blocker = evalBlocker();
  if (blocker) {
    patch('evaluation', { status: 'error', error: { code: 'invalid-input', message: blocker } });
    return;
  }
  const items = chosenItems();
  const log = new IdbEvalLog(runKey(items));
  current = log;
  const before = await log.lines();
  patch('evaluation', { status: 'running', error: null, progress: null, summary: null, lines: before, resumed: before.length });
  controller = new AbortController();
  const modes = s.evaluation.modes;
  try {
    const r = await evalInWorkers(
      { llm: llmClient(), model: s.llm.info!, retrieval: corpusUsable(s) ? retrievalClient() : null },
      items,
      {
        modes, settings: useSettings.getState().question, log, signal: controller.signal,
        onProgress: async (p) => patch('evaluation', { progress: p, lines: await log.lines() }),
      },
    );
    patch('evaluation', { status: 'done', lines: r.lines, summary: summarizeEval(r.lines, items, { modes, log: 'this browser (IndexedDB)' }) });
  } catch (e) {
    const error = toUiError(e);
    const lines = await log.lines();
    // What was answered before the stop still counts (and the next run resumes from it).
    patch('evaluation', {
      status: error.code === 'aborted' ? 'stopped' : 'error', error: error.code === 'aborted' ? null : error,
      lines, summary: summarizeEval(lines, items, { modes, log: 'this browser (IndexedDB)' }),
    });
  } finally {
    controller = null;
  }
}

export function stopEvaluation(): void {
  controller?.abort();
}

/** Forgets the stored log of the current selection, so the next run starts over. */
export async function restartEvaluation(): Promise<void> {
  await deleteEvalRun(runKey(chosenItems()));
  patch('evaluation', { lines: [], summary: null, progress: null, status: 'idle', resumed: 0 });
}

export async function downloadEvalLog(): Promise<void> {
  if (current) download('finemed-eval-log.jsonl', await current.toJsonl(), 'application/x-ndjson');
}

export function downloadEvalResults(format: 'md' | 'json'): void {
  const summary = useApp.getState().evaluation.summary;
  if (!summary) return;
  if (format === 'md') download('finemed-eval-results.md', evalMarkdown(summary), 'text/markdown');
  else download('finemed-eval-results.json', JSON.stringify(summary, null, 2), 'application/json');
}
