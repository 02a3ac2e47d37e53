/**
 * The question box and its switches. Enter sends, Shift+Enter starts a new line. The TTT switch is
 * on by default once a corpus is ready, and off (disabled, with the reason) until then.
 */
import type { KeyboardEvent } from 'react';
import { ask, askBlocker, stopAsk } from '../actions/ask.ts';
import { corpusUsable, useApp, tttOn } from '../store.ts';

export function AskPanel() {
  const s = useApp();
  const running = s.ask.status === 'running';
  const corpusReady = corpusUsable(s);
  const ttt = tttOn(s);
  const blocker = askBlocker();
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (!running) void ask();
    }
  };
  return (
    <section className="panel ask" aria-labelledby="ask-heading">
      <h2 id="ask-heading">Ask</h2>
      <form onSubmit={(e) => { e.preventDefault(); void ask(); }}>
        <label className="field">
          Question
          <textarea
            rows={3}
            value={s.draft}
            placeholder="Describe the case or ask a diagnostic question (Enter to send, Shift+Enter for a new line)"
            onChange={(e) => useApp.setState({ draft: e.target.value })}
            onKeyDown={onKeyDown}
          />
        </label>
        <div className="row switches">
          <label className="switch">
            <input
              type="checkbox"
              checked={ttt || s.compare}
              disabled={!corpusReady || s.compare || running}
              onChange={(e) => useApp.setState({ tttChoice: e.target.checked })}
            />
            Test-time training
          </label>
          <label className="switch">
            <input type="checkbox" checked={s.compare} disabled={running} onChange={(e) => useApp.setState({ compare: e.target.checked })} />
            Compare with and without TTT
          </label>
        </div>
        {!corpusReady && (
          <p className="note">
            {s.corpus.status === 'opening' ? 'Test-time training is off until the corpus index is ready.' : 'Test-time training needs a corpus: load the models (the demo corpus is indexed then) or import traces.'}
          </p>
        )}
        <div className="actions">
          <button type="submit" disabled={running || blocker !== null}>Ask</button>
          <button type="button" onClick={stopAsk} disabled={!running}>Stop</button>
          {blocker && !running && <span className="note">{blocker}</span>}
        </div>
      </form>
    </section>
  );
}
