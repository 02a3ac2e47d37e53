import type { ModelInfo } from '../../workers/protocol.ts';
import { formatBytes, formatMs } from '../format.ts';

export function ModelSummary({ info }: { info: ModelInfo }) {
  const c = info.config;
  return (
    <dl className="summary" aria-label="Loaded model">
      <dt>Source</dt>
      <dd>{info.source}</dd>
      <dt>Shape</dt>
      <dd>
        {c.numLayers} layers · hidden {c.hiddenSize} · {c.numHeads}/{c.numKvHeads} heads · vocab {c.vocabSize}
      </dd>
      <dt>Runs on</dt>
      <dd>
        {info.backend} · {info.weights} weights · {info.precision}
      </dd>
      <dt>Memory</dt>
      <dd>
        {formatBytes(info.memory.total)} (weights {formatBytes(info.memory.weights)}, KV cache {formatBytes(info.memory.kvCache)})
      </dd>
      <dt>Loaded in</dt>
      <dd>{formatMs(info.loadMs)}</dd>
    </dl>
  );
}
