/**
 * The corpus TTT retrieves from: the shipped demo corpus, FineMed-DPO (downloaded and indexed on
 * this device, with the expected time from the measured texts/s, resumable), or the user's own
 * JSONL ("Import traces (JSONL)"). The status "Index ready" is a public name; while embeddings
 * are built, keyword search (BM25) serves and the screen says so.
 */
import { cancelLoading, chooseCorpus, importTraces, openActiveCorpus } from '../actions/models.ts';
import { CORPORA } from '../catalog.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { useApp, type AppState } from '../store.ts';
import { useSettings, type ActiveCorpus } from '../settings-store.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { ProgressLine } from './ProgressLine.tsx';

function indexStatus(s: AppState): string {
  switch (s.corpus.status) {
    case 'ready': return 'Index ready';
    case 'opening': return s.corpus.retrievers?.lexical === 'ready' ? 'Indexing… (keyword search meanwhile)' : 'Indexing the corpus…';
    case 'error': return 'The corpus could not be indexed';
    case 'none': return 'No corpus indexed yet';
  }
}

const value = (c: ActiveCorpus) => (c.kind === 'stored' ? `stored:${c.name}` : c.kind);

function parse(v: string): ActiveCorpus {
  if (v.startsWith('stored:')) return { kind: 'stored', name: v.slice('stored:'.length) };
  return v === 'finemed-dpo' ? { kind: 'finemed-dpo' } : { kind: 'demo' };
}

export function CorpusPanel() {
  const s = useApp();
  const active = useSettings((st) => st.corpus);
  const opening = s.corpus.status === 'opening';
  const status = indexStatus(s);
  const demo = CORPORA.find((c) => c.id === 'demo')!;
  const dpo = CORPORA.find((c) => c.id === 'finemed-dpo')!;
  const stored = [...new Set(s.storage.indexes.map((i) => i.corpus?.name ?? i.manifest?.corpus.name).filter((n): n is string => !!n))]
    .filter((n) => n !== 'demo-corpus.jsonl');
  const info = s.corpus.info;
  return (
    <section className="panel corpus" aria-labelledby="corpus-heading">
      <h2 id="corpus-heading">Corpus</h2>
      <label className="field">
        Active corpus
        <select value={value(active)} disabled={opening} onChange={(e) => void chooseCorpus(parse(e.target.value))}>
          <option value="demo">{demo.label} ({demo.records} traces, shipped with the app)</option>
          <option value="finemed-dpo">{dpo.label} ({dpo.records.toLocaleString()} traces, about {formatBytes(dpo.downloadBytes)} to download)</option>
          {stored.map((n) => <option key={n} value={`stored:${n}`}>{n} (on this device)</option>)}
        </select>
      </label>
      {/* Chosen but not downloaded yet (afterwards the choice names the stored copy). */}
      {active.kind === 'finemed-dpo' && (
        <div className="estimate">
          <p className="note">
            {dpo.description}
            {s.corpus.estimate && (
              <> Embedding its {s.corpus.estimate.texts.toLocaleString()} questions with {s.corpus.estimate.model} on {s.corpus.estimate.device} takes about{' '}
                <strong>{formatDuration(s.corpus.estimate.seconds)}</strong> ({s.corpus.estimate.textsPerSecond.toFixed(1)} texts/s,{' '}
                {s.corpus.estimate.basis === 'measured' ? 'measured on this device' : 'a rough assumption until measured'}); keyword search works as soon as it is downloaded,
                and an interrupted build resumes where it stopped.</>
            )}
          </p>
          {!opening && <button type="button" onClick={() => void openActiveCorpus()}>Download and index FineMed-DPO</button>}
          {s.corpus.status === 'ready' && info && <p className="note">Until then, {info.corpus.name} answers.</p>}
        </div>
      )}
      <div className="actions">
        <span role="status" aria-label={status} className="status-pill" data-ready={s.corpus.status === 'ready' || undefined}>{status}</span>
        {s.corpus.status === 'ready' && info && <span className="note">{info.corpus.name}: {info.corpus.count.toLocaleString()} traces</span>}
        {opening && <button type="button" className="small" onClick={cancelLoading}>Cancel</button>}
      </div>
      {info && (
        <p className="note">
          Search: {info.retrievers.embedding === 'ready' ? `embeddings (${info.manifest?.embedder.model ?? 'embedder'}, ${info.kind ?? 'exact'})` : 'keywords (BM25)'}
          {info.embedderNote ? ` · ${info.embedderNote}` : ''}
          {info.kindNote ? ` · ${info.kindNote}` : ''}
          {info.resumedFrom > 0 ? ` · resumed from ${info.resumedFrom.toLocaleString()} embedded texts` : ''}
        </p>
      )}
      {opening && s.corpus.retrievers?.lexical === 'ready' && <p className="note">Keyword search (BM25) serves while the embeddings are built.</p>}
      {s.corpus.progress && <ProgressLine progress={s.corpus.progress} label="Corpus progress" />}
      <label className="field">
        Import traces (JSONL)
        <input
          type="file"
          accept=".jsonl,.ndjson,application/x-ndjson,application/jsonl"
          disabled={opening}
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void importTraces(file);
            e.target.value = '';
          }}
        />
      </label>
      <p className="note">One JSON object per line: id, question, reasoning, answer (source, license, department optional). It becomes the active corpus.</p>
      {s.corpus.error && <ErrorAlert title="The corpus could not be indexed." error={s.corpus.error} />}
      {info && info.badLines.length > 0 && (
        <div className="alert" role="alert">
          <strong>{info.skipped === 1 ? '1 line was skipped' : `${info.skipped} lines were skipped`}:</strong>
          <ul>
            {info.badLines.slice(0, 10).map((b) => <li key={b.line}>line {b.line}: {b.reason}</li>)}
          </ul>
          {info.badLines.length > 10 && <p className="note">and {info.badLines.length - 10} more.</p>}
        </div>
      )}
    </section>
  );
}
