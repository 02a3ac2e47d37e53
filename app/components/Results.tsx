/**
 * The answer area: one "Answer" region, or in compare mode "Answer without TTT" and "Answer with
 * TTT" side by side with whether they differ; the evidence of the TTT run below.
 */
import { useApp } from '../store.ts';
import { AnswerColumn } from './AnswerColumn.tsx';
import { ErrorAlert } from './ErrorAlert.tsx';
import { Evidence } from './Evidence.tsx';

export function Results() {
  const { ask } = useApp();
  if (ask.status === 'idle') return null;
  const single = ask.runs.single;
  const trained = ask.mode === 'compare' ? ask.runs.with : single;
  return (
    <>
      {ask.question && <p className="asked"><span className="note">Question:</span> {ask.question}</p>}
      {ask.mode === 'compare' ? (
        <>
          <div className="compare">
            {ask.runs.without && <AnswerColumn title="Answer without TTT" heading="Without TTT" run={ask.runs.without} ttt={false} />}
            {ask.runs.with && <AnswerColumn title="Answer with TTT" heading="With TTT" run={ask.runs.with} ttt />}
          </div>
          {ask.differ !== null && (
            <p className="differ" aria-label="Comparison">{ask.differ ? 'The two answers differ.' : 'The two answers are identical.'}</p>
          )}
        </>
      ) : (
        single && <AnswerColumn title="Answer" heading="Answer" run={single} ttt={single.stepsPlanned > 0 || single.retrieval !== null} />
      )}
      {ask.status === 'error' && ask.error && <ErrorAlert title="The question could not be answered." error={ask.error} />}
      {trained?.retrieval && <Evidence retrieval={trained.retrieval} />}
    </>
  );
}
