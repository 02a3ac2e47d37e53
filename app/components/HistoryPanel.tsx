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
              {/* A link, and the actions named without the question: a question's words ("stop", "ask")
                  must never become the name of a button. */}
              <a href={`#${e.id}`} className="entry-link" id={`q-${e.id}`} onClick={(ev) => { ev.preventDefault(); openEntry(e); }} title="Open this answer">
                {e.question.length > 90 ? `${e.question.slice(0, 90)}…` : e.question}
              </a>
              <span className="note">
                {new Date(e.createdAt).toLocaleString()} · {e.mode === 'compare' ? 'compare' : e.records[0]!.mode === 'ttt' ? 'with TTT' : 'without TTT'}
              </span>
              <span className="history-actions">
                <button type="button" className="small" aria-describedby={`q-${e.id}`} onClick={() => exportEntry(e, 'md')}>Markdown</button>
                <button type="button" className="small" aria-describedby={`q-${e.id}`} onClick={() => exportEntry(e, 'json')}>JSON</button>
                <button type="button" className="small danger" aria-describedby={`q-${e.id}`} onClick={() => void removeEntry(e.id)}>Delete</button>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
