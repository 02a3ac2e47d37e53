import type { GenerateTimings } from '../../workers/protocol.ts';
import { formatMs, formatRate } from '../format.ts';

export function Timings({ timings: t }: { timings: GenerateTimings }) {
  return (
    <dl className="summary" aria-label="Timings">
      <dt>Prefill</dt>
      <dd>
        {formatRate(t.prefillTokensPerSecond)} ({t.prefillTokens} tokens in {formatMs(t.prefillMs)})
      </dd>
      <dt>Decode</dt>
      <dd>
        {formatRate(t.decodeTokensPerSecond)} ({t.decodeTokens} tokens in {formatMs(t.decodeMs)})
      </dd>
    </dl>
  );
}
