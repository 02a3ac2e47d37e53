/**
 * One answer: its stage line, the TTT steps (when trained), the reasoning collapsed under
 * "Thought for N s" once it is done, the answer as inert Markdown, and its timings. The region's
 * data-state is "done" once the answer is finished (the outside checks wait for it).
 */
import { splitAnswer } from '../../workers/ask-session.ts';
import { formatDuration, formatMs, formatRate } from '../format.ts';
import type { RunView } from '../store.ts';
import { Markdown } from './Markdown.tsx';
import { StageLine } from './StageLine.tsx';
import { TrainingSteps } from './TrainingSteps.tsx';

function dataState(run: RunView): string {
  return run.stage === 'done' || run.stage === 'stopped' || run.stage === 'error' || run.stage === 'waiting' ? run.stage : 'running';
}

export function AnswerColumn({ title, heading, run, ttt }: { title: string; heading: string; run: RunView; ttt: boolean }) {
  const finished = run.stage === 'done' || run.stage === 'stopped';
  const parts = splitAnswer(run.text, { done: finished || run.stage === 'error' });
  const thinking = parts.phase === 'thinking';
  const thoughtMs = run.record?.timings.thoughtMs ?? null;
  const cutOff = finished && parts.structured && parts.answer === '';
  return (
    <section className="panel answer" aria-label={title} data-state={dataState(run)}>
      <h2>{heading}</h2>
      <StageLine run={run} ttt={ttt} />
      {run.prompt?.fallback && <p className="note">{run.prompt.fallback}</p>}
      <TrainingSteps steps={run.steps} planned={run.stepsPlanned} />
      {(parts.reasoning || thinking) && (
        // Open while the model thinks; collapsed once it is done (the user can reopen it).
        <details className="reasoning" open={thinking || undefined}>
          <summary>{thinking ? 'Thinking…' : `Thought for ${formatDuration((thoughtMs ?? 0) / 1000)}`}</summary>
          <Markdown text={parts.reasoning} />
        </details>
      )}
      <div className="answer-text" data-testid="answer-text" aria-live="off">
        <Markdown text={parts.answer} />
      </div>
      {cutOff && <p className="note">The model stopped before its Summarization (the token limit was reached); its reasoning is above.</p>}
      {run.record && <RunTimings run={run} />}
    </section>
  );
}

function RunTimings({ run }: { run: RunView }) {
  const t = run.record!.timings;
  return (
    <dl className="summary timings" aria-label="Timings">
      {t.retrieveMs !== null && (<><dt>Retrieve</dt><dd>{formatMs(t.retrieveMs)}</dd></>)}
      {t.trainMs !== null && (<><dt>Train</dt><dd>{formatMs(t.trainMs)} ({run.steps.length} steps)</dd></>)}
      <dt>First token</dt><dd>{formatMs(t.ttftMs)}</dd>
      <dt>Decode</dt><dd>{formatRate(t.decodeTokensPerSecond)} ({run.record!.answer.tokens} tokens)</dd>
      {t.restoreMs !== null && (<><dt>Restore</dt><dd>{formatMs(t.restoreMs)}</dd></>)}
      <dt>Total</dt><dd>{formatMs(t.totalMs)}</dd>
    </dl>
  );
}
