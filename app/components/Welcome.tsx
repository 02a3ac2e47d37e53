/** What the app does, shown until the first question: the four stages and what each costs. */
import { modelsReady, useApp } from '../store.ts';

export function Welcome() {
  const ready = useApp((s) => modelsReady(s));
  return (
    <section className="panel welcome" aria-labelledby="welcome-heading">
      <h2 id="welcome-heading">How it works</h2>
      <ol className="how">
        <li><strong>Retrieve</strong> the reasoning trace most similar to your question from a local index.</li>
        <li><strong>Train</strong> small LoRA adapters on that trace for a few steps, on your GPU (test-time training).</li>
        <li><strong>Answer</strong> with the adapted model: its reasoning first (collapsible), then the answer.</li>
        <li><strong>Clear</strong> the adapters, so the next question starts from the original model.</li>
      </ol>
      <p className="note">
        Turn on “Compare with and without TTT” to see both answers side by side.{' '}
        {ready ? 'The models are loaded: ask away.' : 'Start with “Load models” on the right.'}
      </p>
    </section>
  );
}
