/**
 * Ask / Stop: runs the TTT pipeline (through workers/ask-session.ts) for the typed question,
 * streams its events into the store, and saves the finished answer(s) in the history.
 */
import { askInWorkers, type AskEvent, type Run } from '../../workers/ask-session.ts';
import { newEntry } from '../history/entry.ts';
import { saveEntry } from '../history/db.ts';
import { refreshHistory } from './history.ts';
import { corpusUsable, emptyRun, patch, patchRun, toUiError, tttOn, useApp } from '../store.ts';
import { useSettings } from '../settings-store.ts';
import { llmClient, retrievalClient } from './clients.ts';

let controller: AbortController | null = null;

function onEvent(run: Run, e: AskEvent): void {
  switch (e.type) {
    case 'stage':
      patchRun(run, { stage: e.stage, ...(e.stage === 'answering' ? { answerStartedAt: performance.now() } : {}) });
      break;
    case 'prompt':
      patchRun(run, { prompt: e.prompt });
      break;
    case 'retrieved':
      patchRun(run, { retrieval: e.retrieval });
      break;
    case 'ttt-step': {
      const steps = [...(useApp.getState().ask.runs[run]?.steps ?? []), { step: e.step, steps: e.steps, loss: e.loss, ms: e.ms }];
      patchRun(run, { steps, stepsPlanned: e.steps });
      break;
    }
    case 'token': {
      const current = useApp.getState().ask.runs[run];
      // Token events carry the new text only: the answer so far is their concatenation.
      patchRun(run, { text: (current?.text ?? '') + e.text, tokens: e.tokens, firstTokenAt: current?.firstTokenAt ?? performance.now() });
      break;
    }
    case 'restored':
      patchRun(run, { restored: true });
      break;
    case 'done':
      patchRun(run, { stage: e.record.status === 'stopped' ? 'stopped' : 'done', record: e.record, text: e.record.answer.text });
      break;
  }
}

/** Why Ask cannot run now, or null. */
export function askBlocker(): string | null {
  const s = useApp.getState();
  if (s.llm.status !== 'loaded') return 'Load the models first.';
  if (s.draft.trim() === '') return 'Type a question first.';
  if (s.compare && !corpusUsable(s)) return 'Compare mode needs a corpus for the TTT answer; wait for the index or import traces.';
  return null;
}

export async function ask(): Promise<void> {
  const s = useApp.getState();
  if (s.ask.status === 'running') return;
  const blocker = askBlocker();
  if (blocker) {
    patch('ask', { status: 'error', error: { code: 'invalid-input', message: blocker } });
    return;
  }
  const question = s.draft.trim();
  const mode = s.compare ? 'compare' : 'single';
  const ttt = mode === 'compare' || tttOn(s);
  const settings = { ...useSettings.getState().question, ttt };
  const runs = mode === 'compare' ? { without: emptyRun(), with: { ...emptyRun(), stepsPlanned: settings.steps } } : { single: { ...emptyRun(), stepsPlanned: ttt ? settings.steps : 0 } };
  useApp.setState({ ask: { status: 'running', question, mode, runs, differ: null, error: null, entryId: null } });
  controller = new AbortController();
  try {
    const out = await askInWorkers(
      { llm: llmClient(), model: s.llm.info!, retrieval: corpusUsable(s) ? retrievalClient() : null },
      question, settings, mode, { signal: controller.signal, onEvent },
    );
    const entry = newEntry(out.records, mode, out.differ);
    await saveEntry(entry).catch((e: unknown) => console.error('The answer could not be saved in the history:', e));
    const stopped = out.records.some((r) => r.status === 'stopped');
    patch('ask', { status: stopped ? 'stopped' : 'done', differ: out.differ, entryId: entry.id });
    void refreshHistory();
  } catch (e) {
    const error = toUiError(e);
    const runsNow = useApp.getState().ask.runs;
    for (const [run, view] of Object.entries(runsNow)) {
      if (view && view.stage !== 'done') patchRun(run as Run, { stage: error.code === 'aborted' ? 'stopped' : 'error' });
    }
    patch('ask', error.code === 'aborted' ? { status: 'stopped' } : { status: 'error', error });
  } finally {
    controller = null;
  }
}

/** Stops the question in flight; the pipeline clears the adapters before it settles. */
export function stopAsk(): void {
  controller?.abort();
}
