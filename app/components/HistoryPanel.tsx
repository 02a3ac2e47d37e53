/** Saved questions (IndexedDB), newest first: open one again, export it (Markdown, JSON), delete it. */
import { useEffect } from 'react';
import { exportEntry, openEntry, refreshHistory, removeEntry } from '../actions/history.ts';
import { useApp } from '../store.ts';

export function HistoryPanel() {
  const history = useApp((s) => s.history);
  const current = useApp((s) => s.ask.entryId);
  useEffect(() => void refreshHistory(), []);
  return (
    <section className="panel history" aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      {history.length === 0 ? (
        <p className="note">Questions you ask are kept here, on this device only.</p>
      ) : (
        <ul aria-label="History" className="history-list">
          {history.map((e) => (
            <li key={e.id} aria-current={e.id === current || undefined}>
              <button type="button" className="link" onClick={() => openEntry(e)} title="Open this answer">
                {e.question.length > 90 ? `${e.question.slice(0, 90)}…` : e.question}
              </button>
              <span className="note">
                {new Date(e.createdAt).toLocaleString()} · {e.mode === 'compare' ? 'compare' : e.records[0]!.mode === 'ttt' ? 'with TTT' : 'without TTT'}
              </span>
              <span className="history-actions">
                <button type="button" className="small" onClick={() => exportEntry(e, 'md')} aria-label={`Export as Markdown: ${e.question.slice(0, 40)}`}>Markdown</button>
                <button type="button" className="small" onClick={() => exportEntry(e, 'json')} aria-label={`Export as JSON: ${e.question.slice(0, 40)}`}>JSON</button>
                <button type="button" className="small danger" onClick={() => void removeEntry(e.id)} aria-label={`Delete: ${e.question.slice(0, 40)}`}>Delete</button>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
