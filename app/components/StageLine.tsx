/**
 * Where one answer stands: preparing -> retrieving -> training (step i of N) -> answering
 * (tokens/s) -> adapters cleared. Announced politely to screen readers.
 */
import { formatRate } from '../format.ts';
import type { RunView } from '../store.ts';

function answeringRate(run: RunView): string {
  if (run.firstTokenAt === null || run.tokens < 2) return '';
  const s = (performance.now() - run.firstTokenAt) / 1000;
  return s > 0 ? ` · ${formatRate((run.tokens - 1) / s)}` : '';
}

function label(run: RunView, ttt: boolean): string {
  switch (run.stage) {
    case 'waiting': return 'Waiting';
    case 'preparing': return 'Preparing the prompt…';
    case 'retrieving': return 'Retrieving the nearest trace…';
    case 'training': return `Training: step ${Math.min(run.steps.length + 1, Math.max(run.stepsPlanned, 1))} of ${run.stepsPlanned}…`;
    case 'answering': return `Answering · ${run.tokens} tokens${answeringRate(run)}`;
    case 'restoring': return 'Clearing the adapters…';
    case 'done': return ttt ? 'Done' : 'Done (no test-time training)';
    case 'stopped': return 'Stopped';
    case 'error': return 'Failed';
  }
}

export function StageLine({ run, ttt }: { run: RunView; ttt: boolean }) {
  return (
    <p className="stage" role="status" aria-live="polite">
      {label(run, ttt)}
      {run.restored && <span className="cleared"> · Adapters cleared</span>}
    </p>
  );
}
