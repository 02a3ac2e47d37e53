/**
 * Evaluate: multiple-choice questions (a JSONL file in the eval-mcq schema) answered through the
 * app's own pipeline, without and/or with TTT, on this device's GPU; accuracy with 95% intervals
 * per benchmark, chance beside it, McNemar's test for the paired difference, the per-item log,
 * and downloads of both. A stopped or reloaded run resumes from its stored log.
 */
import { downloadEvalLog, downloadEvalResults, evalBlocker, pickEvalFile, restartEvaluation, runEvaluation, stopEvaluation } from '../actions/evaluate.ts';
import { formatDuration } from '../format.ts';
import { patch, useApp } from '../store.ts';
import type { EvalModes, GroupResult, ModeResult } from '../../workers/eval-session.ts';
import { ErrorAlert } from './ErrorAlert.tsx';

const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);

function AccuracyCell({ r }: { r: ModeResult | undefined }) {
  if (!r) return <td>–</td>;
  return <td>{pct(r.accuracy)} <span className="note">({pct(r.ci95.low)}–{pct(r.ci95.high)}, {r.correct}/{r.n})</span></td>;
}

function Row({ name, g, modes }: { name: string; g: GroupResult; modes: ('off' | 'on')[] }) {
  const m = g.mcnemar;
  return (
    <tr>
      <th scope="row">{name}</th>
      <td>{g.items}</td>
      <td>{pct(g.chance)}</td>
      {modes.map((mode) => <AccuracyCell key={mode} r={g.accuracy[mode]} />)}
      {modes.length === 2 && (
        <>
          <td>{m?.difference === null || m === undefined ? '–' : `${m.difference >= 0 ? '+' : ''}${(100 * m.difference).toFixed(1)} pt`}</td>
          <td>{m ? `${m.b} / ${m.c}` : '–'}</td>
          <td>{m ? m.p.toFixed(3) : '–'}</td>
        </>
      )}
      <td>{modes.map((mode) => g.accuracy[mode]?.skipped ?? 0).join(' / ')}</td>
    </tr>
  );
}

export function EvaluatePanel() {
  const e = useApp((s) => s.evaluation);
  // A string (or null) from the whole state: re-renders exactly when the reason changes.
  const blocker = useApp(() => evalBlocker());
  const running = e.status === 'running';
  const s = e.summary;
  return (
    <section className="panel evaluate" aria-labelledby="evaluate-heading">
      <h2 id="evaluate-heading">Evaluate</h2>
      <details open={e.file !== null || undefined}>
        <summary>Multiple-choice accuracy with and without test-time training</summary>
        <p className="note">
          The same pipeline as a question, on this device: each item's question and options go to the model, the letter is read from its
          Summarization, and accuracy is compared with chance. Tiny stand-in models score at chance (or below: they write no letters).
        </p>
        <label className="field">
          Evaluation items (JSONL)
          <input type="file" accept=".jsonl,.ndjson,application/x-ndjson" disabled={running} onChange={(ev) => { const f = ev.target.files?.[0]; if (f) void pickEvalFile(f); ev.target.value = ''; }} />
        </label>
        <p className="note">One item per line: id, question, options (&#123;"A": …&#125;), answer (the letter), optional context (PubMedQA's abstract) and source.</p>
        {e.file && (
          <p className="note" aria-label="Evaluation file">
            {e.file.name}: {e.file.items} items ({Object.entries(e.file.benchmarks).map(([b, n]) => `${b} ${n}`).join(', ')})
            {e.file.skippedLines > 0 && `; ${e.file.skippedLines} bad lines skipped`}
          </p>
        )}
        <div className="row">
          <label className="field narrow">
            Mode
            <select value={e.modes} disabled={running} onChange={(ev) => patch('evaluation', { modes: ev.target.value as EvalModes })}>
              <option value="both">Without and with TTT (paired)</option>
              <option value="off">Without TTT</option>
              <option value="on">With TTT</option>
            </select>
          </label>
          <label className="field narrow">
            Items (0 = all)
            <input type="number" min={0} value={e.limit} disabled={running || e.sample > 0} onChange={(ev) => Number.isInteger(Number(ev.target.value)) && patch('evaluation', { limit: Math.max(0, Number(ev.target.value)) })} />
          </label>
          <label className="field narrow">
            Random sample (0 = off)
            <input type="number" min={0} value={e.sample} disabled={running} onChange={(ev) => Number.isInteger(Number(ev.target.value)) && patch('evaluation', { sample: Math.max(0, Number(ev.target.value)) })} />
          </label>
          <label className="field narrow">
            Sample seed
            <input type="number" min={0} value={e.seed} disabled={running || e.sample === 0} onChange={(ev) => Number.isInteger(Number(ev.target.value)) && patch('evaluation', { seed: Number(ev.target.value) })} />
          </label>
        </div>
        <div className="actions">
          <button type="button" className="primary" onClick={() => void runEvaluation()} disabled={running || blocker !== null}>Run evaluation</button>
          <button type="button" onClick={stopEvaluation} disabled={!running}>Pause evaluation</button>
          {!running && e.lines.length > 0 && <button type="button" className="small" onClick={() => void restartEvaluation()}>Start over</button>}
          {blocker && !running && <span className="note">{blocker}</span>}
        </div>
        {(running || e.progress) && (
          <div className="progress">
            <progress aria-label="Evaluation progress" max={e.progress?.total || undefined} value={e.progress?.done} />
            <p className="progress-text" role="status" aria-label="Evaluation status">
              {e.progress ? `${e.progress.done} of ${e.progress.total} answers` : 'Starting…'}
              {e.resumed > 0 && ` (${e.resumed} resumed from the stored log)`}
              {running && e.progress?.etaMs != null && ` · ${formatDuration(e.progress.etaMs / 1000)} left`}
              {!running && e.status === 'stopped' && ' · paused; run again to resume'}
            </p>
          </div>
        )}
        {e.error && <ErrorAlert title="The evaluation could not run." error={e.error} />}
        {s && (
          <>
            <table className="results" aria-label="Evaluation results">
              <thead>
                <tr>
                  <th scope="col">Benchmark</th><th scope="col">Items</th><th scope="col">Chance</th>
                  {s.modes.map((m) => <th scope="col" key={m}>TTT {m}</th>)}
                  {s.modes.length === 2 && (<><th scope="col">On − off</th><th scope="col">b / c</th><th scope="col">McNemar p</th></>)}
                  <th scope="col">Skipped</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(s.byBenchmark).map(([name, g]) => <Row key={name} name={name} g={g} modes={s.modes} />)}
                <Row name="All" g={s} modes={s.modes} />
              </tbody>
            </table>
            <p className="note">95% Wilson intervals; chance = 1 / number of options. Skipped: refused by the pipeline (e.g. a prompt longer than the model's context), not counted as wrong. b: right without TTT, wrong with it; c: the reverse.</p>
            <div className="actions">
              <button type="button" className="small" onClick={() => void downloadEvalLog()}>Download log (JSONL)</button>
              <button type="button" className="small" onClick={() => downloadEvalResults('md')}>Download results (Markdown)</button>
              <button type="button" className="small" onClick={() => downloadEvalResults('json')}>Download results (JSON)</button>
            </div>
          </>
        )}
        {e.lines.length > 0 && (
          <details className="eval-log">
            <summary>Per-item log ({e.lines.length} answers)</summary>
            <table aria-label="Evaluation log">
              <thead><tr><th scope="col">Item</th><th scope="col">Mode</th><th scope="col">Answer</th><th scope="col">Gold</th><th scope="col">Result</th></tr></thead>
              <tbody>
                {e.lines.slice(-200).map((l) => (
                  <tr key={`${l.item}|${l.mode}`}>
                    <td><code>{l.item}</code></td>
                    <td>{l.mode}</td>
                    <td>{l.letter ?? '–'}</td>
                    <td>{l.gold}</td>
                    <td title={l.error?.message}>{l.correct === null ? 'skipped' : l.correct ? 'right' : 'wrong'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        )}
      </details>
    </section>
  );
}
