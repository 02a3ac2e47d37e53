/**
 * The model manager: which language model, embedder and corpus the app uses, their state, where
 * they come from, and "Load models". The first screen of a new user says what will be
 * downloaded and how big it is. Two status lines are public names: "Ready" (both models loaded)
 * and "Index ready" (the active corpus is indexed).
 */
import { cancelLoading, importTraces, loadModels } from '../actions/models.ts';
import { llmEntry } from '../catalog.ts';
import { formatBytes, formatMs } from '../format.ts';
import { modelsReady, useApp } from '../store.ts';
import { useSettings } from '../settings-store.ts';
import type { Backend, WeightFormat } from '../../workers/protocol.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { ProgressLine } from './ProgressLine.tsx';

function modelsStatus(s: ReturnType<typeof useApp.getState>): string {
  if (modelsReady(s)) return 'Ready';
  if (s.llm.status === 'loading' || s.embedder.status === 'loading') return 'Loading models…';
  if (s.llm.status === 'error' || s.embedder.status === 'error') return 'A model could not be loaded';
  if (s.llm.status === 'loaded') return 'Language model loaded; the embedder is not';
  return 'Models not loaded';
}

function indexStatus(s: ReturnType<typeof useApp.getState>): string {
  switch (s.corpus.status) {
    case 'ready': return 'Index ready';
    case 'opening': return 'Indexing the corpus…';
    case 'error': return 'The corpus could not be indexed';
    case 'none': return 'No corpus indexed yet';
  }
}

export function ModelManager() {
  const s = useApp();
  const settings = useSettings();
  const loading = s.llm.status === 'loading' || s.embedder.status === 'loading';
  const busy = loading || s.corpus.status === 'opening';
  const entry = llmEntry(settings.llmRepo);
  const fresh = s.llm.status === 'idle' && s.embedder.status === 'idle';
  return (
    <section className="panel models" aria-labelledby="models-heading">
      <h2 id="models-heading">Models</h2>
      {fresh && (
        <p className="intro">
          Everything runs on this device: nothing you type leaves it. The first load downloads{' '}
          <strong>{settings.llmRepo}</strong>
          {entry && <> ({formatBytes(entry.downloadBytes)} once, kept as {formatBytes(entry.cachedBytes)} of 4-bit weights on this device)</>}
          {' '}and the embedder <strong>{settings.embedderRepo}</strong>; later visits load them from this device, also offline.
        </p>
      )}
      <fieldset disabled={busy}>
        <legend>Choice</legend>
        <div className="row">
          <label className="field">
            Language model (hub repo)
            <input type="text" spellCheck={false} value={settings.llmRepo} onChange={(e) => useSettings.setState({ llmRepo: e.target.value.trim() })} />
          </label>
          <label className="field">
            Embedder (hub repo)
            <input type="text" spellCheck={false} value={settings.embedderRepo} onChange={(e) => useSettings.setState({ embedderRepo: e.target.value.trim() })} />
          </label>
        </div>
        <div className="row">
          <label className="field narrow">
            Backend
            <select value={settings.backend} onChange={(e) => useSettings.setState({ backend: e.target.value as Backend })}>
              <option value="webgpu">WebGPU</option>
              <option value="cpu">CPU (tiny models only)</option>
            </select>
          </label>
          <label className="field narrow">
            Weights
            <select value={settings.weights} onChange={(e) => useSettings.setState({ weights: e.target.value as WeightFormat })}>
              <option value="q4">4-bit</option>
              <option value="f32">f32 (tiny models only)</option>
            </select>
          </label>
          <label className="field">
            Model hub
            <input type="text" spellCheck={false} value={settings.hub} placeholder="auto" onChange={(e) => useSettings.setState({ hub: e.target.value.trim() || 'auto' })} />
          </label>
        </div>
      </fieldset>
      <div className="actions">
        {loading ? (
          <button type="button" onClick={cancelLoading}>Cancel</button>
        ) : (
          <button type="button" className={s.llm.status === 'loaded' ? undefined : 'primary'} onClick={() => void loadModels()} disabled={busy}>Load models</button>
        )}
        {/* The name mirrors the text, so the status is found by its text either way. */}
        <span role="status" aria-label={modelsStatus(s)} className="status-pill" data-ready={modelsReady(s) || undefined}>{modelsStatus(s)}</span>
      </div>
      {s.llm.progress && <ProgressLine progress={s.llm.progress} label="Language model progress" />}
      {s.embedder.progress && <ProgressLine progress={s.embedder.progress} label="Embedder progress" />}
      {s.llm.error && <ErrorAlert title="The language model could not be loaded." error={s.llm.error} />}
      {s.embedder.error && <ErrorAlert title="The embedder could not be loaded." error={s.embedder.error} />}
      {s.llm.info && (
        <p className="note loaded">
          {s.llm.info.source} · {s.llm.info.config.numLayers} layers · {s.llm.info.backend} · {s.llm.info.weights} · {s.llm.info.precision} ·{' '}
          {formatBytes(s.llm.info.memory.total)} of {s.llm.info.backend === 'webgpu' ? 'GPU ' : ''}memory ·{' '}
          {s.llm.info.loadedFrom === 'cache' ? 'loaded from this device' : 'downloaded'} in {formatMs(s.llm.info.loadMs)}
        </p>
      )}
      {s.embedder.info && (
        <p className="note loaded">
          {s.embedder.info.info.model} · {s.embedder.info.info.dims} dims · {s.embedder.info.device} · loaded in {formatMs(s.embedder.info.loadMs)}
        </p>
      )}
      <h3>Corpus</h3>
      <div className="actions">
        <span role="status" aria-label={indexStatus(s)} className="status-pill" data-ready={s.corpus.status === 'ready' || undefined}>{indexStatus(s)}</span>
        {s.corpus.status === 'ready' && s.corpus.info && (
          <span className="note">
            {s.corpus.info.corpus.name}: {s.corpus.info.corpus.count.toLocaleString()} traces
          </span>
        )}
      </div>
      {s.corpus.info && (
        <p className="note">
          Search: {s.corpus.info.retrievers.embedding === 'ready' ? `embeddings (${s.corpus.info.manifest?.embedder.model ?? 'embedder'}, ${s.corpus.info.kind ?? 'exact'})` : 'keywords (BM25)'}
          {s.corpus.info.embedderNote ? ` · ${s.corpus.info.embedderNote}` : ''}
          {s.corpus.info.kindNote ? ` · ${s.corpus.info.kindNote}` : ''}
        </p>
      )}
      {s.corpus.status === 'opening' && s.corpus.retrievers?.lexical === 'ready' && (
        <p className="note">Keyword search (BM25) serves while the embeddings are built.</p>
      )}
      <div>
      </div>
      <label className="field">
        Import traces (JSONL)
        <input
          type="file"
          accept=".jsonl,.ndjson,application/x-ndjson,application/jsonl"
          disabled={busy}
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void importTraces(file);
            e.target.value = '';
          }}
        />
      </label>
      <p className="note">One JSON object per line: id, question, reasoning, answer (source, license, department optional). It becomes the active corpus.</p>
      {s.corpus.progress && <ProgressLine progress={s.corpus.progress} label="Corpus progress" />}
      {s.corpus.error && <ErrorAlert title="The corpus could not be indexed." error={s.corpus.error} />}
      {s.corpus.info && s.corpus.info.badLines.length > 0 && (
        <div className="alert" role="alert">
          <strong>{s.corpus.info.skipped} lines were skipped:</strong>
          <ul>
            {s.corpus.info.badLines.slice(0, 10).map((b) => <li key={b.line}>line {b.line}: {b.reason}</li>)}
          </ul>
          {s.corpus.info.badLines.length > 10 && <p className="note">and {s.corpus.info.badLines.length - 10} more.</p>}
        </div>
      )}
    </section>
  );
}
