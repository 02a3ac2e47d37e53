/**
 * What TTT trained on: the top-1 trace in full ("Retrieved trace": question, similarity, reasoning,
 * answer, source, license), labelled as synthetic training text, and the nearest k with scores.
 */
import type { RetrievalSummary } from '../../workers/ask-session.ts';
import { Markdown } from './Markdown.tsx';

const RETRIEVER_NAME = { embedding: 'embedding search', lexical: 'keyword search (BM25)' } as const;

export function Evidence({ retrieval }: { retrieval: RetrievalSummary }) {
  const top = retrieval.top;
  const first = retrieval.results[0];
  return (
    <div className="evidence">
      {top && first && (
        <section className="panel" aria-label="Retrieved trace">
          <h2>Retrieved trace</h2>
          <p className="note">
            Synthetic training text the model was adapted on, not a clinical source. Found by {RETRIEVER_NAME[retrieval.retriever]} in {retrieval.ms.toFixed(0)} ms.
          </p>
          <dl className="summary">
            <dt>Question</dt><dd className="trace-question">{top.question}</dd>
            <dt>Similarity</dt><dd className="similarity">{first.score.toFixed(3)}</dd>
            <dt>Source</dt><dd>{top.source}{top.department ? ` · ${top.department}` : ''}</dd>
            <dt>License</dt><dd>{top.license}</dd>
            <dt>Id</dt><dd><code>{top.id}</code></dd>
          </dl>
          <details>
            <summary>Reasoning and answer of the trace</summary>
            <Markdown text={top.reasoning} />
            <p><strong>Answer:</strong></p>
            <Markdown text={top.answer} />
          </details>
        </section>
      )}
      {retrieval.results.length > 1 && (
        <section className="panel" aria-label="Nearest traces">
          <h2>Nearest {retrieval.results.length} traces</h2>
          <ol className="nearest">
            {retrieval.results.map((r) => (
              <li key={r.id}>
                <span className="score">{r.score.toFixed(3)}</span> {r.question.length > 200 ? `${r.question.slice(0, 200)}…` : r.question}
                <span className="note"> · {r.source}</span>
              </li>
            ))}
          </ol>
        </section>
      )}
    </div>
  );
}
