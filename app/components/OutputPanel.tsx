import { useApp } from '../store.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { Timings } from './Timings.tsx';

const STATUS: Record<string, string> = {
  running: 'Generating…',
  stopped: 'Stopped.',
};

export function OutputPanel() {
  const s = useApp();
  if (s.genStatus === 'idle') return null;
  return (
    <section className="panel" aria-labelledby="output-heading">
      <h2 id="output-heading">Answer</h2>
      <div role="log" aria-label="Generated text" aria-live="polite" className="output">
        {s.output}
      </div>
      <p className="note" role="status">
        {STATUS[s.genStatus] ?? ''}
        {s.genStatus === 'done' && s.stopReason === 'max-tokens' && 'Reached the token limit.'}
      </p>
      {s.timings && <Timings timings={s.timings} />}
      {s.genStatus === 'error' && s.genError && <ErrorAlert title="Generation failed." error={s.genError} />}
    </section>
  );
}
