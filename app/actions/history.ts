/**
 * The history panel's actions: list, open (show an entry's answers again), delete, export.
 */
import type { AskRecord, Run } from '../../workers/ask-session.ts';
import { deleteEntry, listEntries } from '../history/db.ts';
import type { HistoryEntry } from '../history/entry.ts';
import { entryToJson, entryToMarkdown } from '../history/export.ts';
import { emptyRun, useApp, type RunView } from '../store.ts';
import { download } from './download.ts';

export async function refreshHistory(): Promise<void> {
  try {
    useApp.setState({ history: await listEntries() });
  } catch (e) {
    console.error('The history could not be read from IndexedDB:', e);
  }
}

function viewOf(r: AskRecord): RunView {
  return {
    ...emptyRun(),
    stage: r.status === 'stopped' ? 'stopped' : 'done',
    text: r.answer.text,
    tokens: r.answer.tokens,
    steps: (r.ttt?.losses ?? []).map((loss, i) => ({ step: i + 1, steps: r.ttt!.losses.length, loss, ms: r.ttt!.stepMs[i] ?? 0 })),
    stepsPlanned: r.ttt?.losses.length ?? 0,
    retrieval: r.retrieval,
    prompt: r.prompt,
    restored: r.restored,
    record: r,
  };
}

/** Shows a saved entry in the answer area, as it was when it finished. */
export function openEntry(entry: HistoryEntry): void {
  const runs: Partial<Record<Run, RunView>> = entry.mode === 'compare'
    ? { without: viewOf(entry.records[0]!), with: viewOf(entry.records[1]!) }
    : { single: viewOf(entry.records[0]!) };
  const stopped = entry.records.some((r) => r.status === 'stopped');
  useApp.setState({ ask: { status: stopped ? 'stopped' : 'done', question: entry.question, mode: entry.mode, runs, differ: entry.differ, error: null, entryId: entry.id } });
}

export async function removeEntry(id: string): Promise<void> {
  await deleteEntry(id);
  if (useApp.getState().ask.entryId === id) useApp.setState((s) => ({ ask: { ...s.ask, entryId: null } }));
  await refreshHistory();
}

/** The entry as a Markdown or JSON file. */
export function exportEntry(entry: HistoryEntry, format: 'md' | 'json'): void {
  const name = `finemed-${entry.createdAt.slice(0, 19).replace(/[:T]/g, '-')}.${format}`;
  if (format === 'json') download(name, entryToJson(entry), 'application/json');
  else download(name, entryToMarkdown(entry), 'text/markdown');
}
