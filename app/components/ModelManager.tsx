/**
 * The model manager: the language model and the embedder, each with its state on this device
 * (not downloaded / partial x% / on this device / loaded), size, source and license, and "Load
 * models". The first screen of a new user says what will be downloaded and how big it is. The
 * status "Ready" (both models loaded) is a public name. The corpus is CorpusPanel's.
 */
import { cancelLoading, loadModels, pickModelFolder } from '../actions/models.ts';
import { EMBEDDERS, embedderEntry, llmEntry } from '../catalog.ts';
import { formatBytes, formatMs } from '../format.ts';
import { modelsReady, useApp, type AppState } from '../store.ts';
import { useSettings } from '../settings-store.ts';
import type { Backend, WeightFormat } from '../../workers/protocol.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { ProgressLine } from './ProgressLine.tsx';

/** `webkitdirectory` is not in React's input typings; set it on the element instead. */
function asDirectoryPicker(el: HTMLInputElement | null): void {
  el?.setAttribute('webkitdirectory', '');
}

function modelsStatus(s: AppState): string {
  if (modelsReady(s)) return 'Ready';
  if (s.llm.status === 'loading' || s.embedder.status === 'loading') return 'Loading models…';
  if (s.llm.status === 'error' || s.embedder.status === 'error') return 'A model could not be loaded';
  if (s.llm.status === 'loaded') return 'Language model loaded; the embedder is not';
  return 'Models not loaded';
}

/** The language model's state on this device, from the weight cache's entries. */
function llmState(s: AppState, repo: string, weights: WeightFormat): string {
  if (s.llm.status === 'loaded' && s.llm.info?.source.includes(`/${repo}/`)) return 'loaded';
  const entry = s.storage.models.find((m) => m.repo === repo && m.weights === weights);
  if (!entry) return 'not downloaded';
  if (!entry.complete) return `partial ${Math.floor((100 * entry.tensorsDone) / Math.max(1, entry.tensorsTotal))}% (the next load resumes)`;
  return `on this device (${formatBytes(entry.bytes)})`;
}

function embedderState(s: AppState, repo: string): string {
  if (s.embedder.status === 'loaded' && s.embedder.info?.info.model === repo) return 'loaded';
  const c = s.storage.embedder;
  if (!c || c.model !== repo || c.bytes === 0) return 'not downloaded';
  return c.cached ? `on this device (${formatBytes(c.bytes)})` : `partial (${formatBytes(c.bytes)})`;
}

export function ModelManager() {
  const s = useApp();
  const settings = useSettings();
  const loading = s.llm.status === 'loading' || s.embedder.status === 'loading';
  const busy = loading || s.corpus.status === 'opening';
  const llm = llmEntry(settings.llmRepo);
  const embedder = embedderEntry(settings.embedderRepo);
  const fresh = s.llm.status === 'idle' && s.embedder.status === 'idle' && !s.storage.models.some((m) => m.complete);
  const status = modelsStatus(s);
  return (
    <section className="panel models" aria-labelledby="models-heading">
      <h2 id="models-heading">Models</h2>
      {fresh && (
        <p className="intro">
          Everything runs on this device: nothing you type leaves it. The first load downloads <strong>{settings.llmRepo}</strong>
          {llm && <> ({formatBytes(llm.downloadBytes)} once, kept as {formatBytes(llm.cachedBytes)} of 4-bit weights on this device)</>} and the
          embedder <strong>{settings.embedderRepo}</strong>
          {embedder && <> ({formatBytes(embedder.downloadBytes.fp32)})</>}; later visits load them from this device, also offline.
        </p>
      )}
      <fieldset disabled={busy}>
        <legend>Language model</legend>
        <label className="field">
          Hub repo
          <input type="text" spellCheck={false} value={settings.llmRepo} disabled={s.llm.folder !== null} onChange={(e) => useSettings.setState({ llmRepo: e.target.value.trim() })} />
        </label>
        <label className="field">
          Or a model folder on this device
          <input type="file" multiple ref={asDirectoryPicker} onChange={(e) => pickModelFolder([...(e.target.files ?? [])])} />
        </label>
        {s.llm.folder && (
          <p className="note">
            Using the folder {s.llm.folder.name} ({s.llm.folder.files} files, {formatBytes(s.llm.folder.bytes)}) instead of the hub.{' '}
            <button type="button" className="small" onClick={() => pickModelFolder([])}>Use the hub</button>
          </p>
        )}
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
        </div>
        <p className="note asset-state" aria-label="Language model state">
          {llmState(s, settings.llmRepo, settings.weights)}
          {llm && ` · ${llm.license}`}
        </p>
      </fieldset>
      <fieldset disabled={busy}>
        <legend>Embedder (retrieval)</legend>
        <label className="field">
          Embedder
          <select
            value={embedder ? embedder.id : 'other'}
            onChange={(e) => e.target.value !== 'other' && useSettings.setState({ embedderRepo: e.target.value })}
          >
            {EMBEDDERS.map((m) => (
              <option key={m.id} value={m.id}>{m.label} ({m.dims} dims, {formatBytes(m.downloadBytes.fp32)}){m.default ? ' · default' : ''}</option>
            ))}
            <option value="other">Another hub repo…</option>
          </select>
        </label>
        {!embedder && (
          <label className="field">
            Embedder hub repo
            <input type="text" spellCheck={false} value={settings.embedderRepo} onChange={(e) => useSettings.setState({ embedderRepo: e.target.value.trim() })} />
          </label>
        )}
        <p className="note asset-state" aria-label="Embedder state">
          {embedderState(s, settings.embedderRepo)}
          {embedder && ` · ${embedder.license} · ${embedder.description}`}
        </p>
      </fieldset>
      <label className="field">
        Model hub
        <input type="text" spellCheck={false} value={settings.hub} placeholder="auto" disabled={busy} onChange={(e) => useSettings.setState({ hub: e.target.value.trim() || 'auto' })} />
      </label>
      <p className="note">“auto”: this site’s own hub when it serves one (a local folder, no internet needed), else huggingface.co.</p>
      <div className="actions">
        {loading ? (
          <button type="button" onClick={cancelLoading}>Cancel</button>
        ) : (
          <button type="button" className={s.llm.status === 'loaded' ? undefined : 'primary'} onClick={() => void loadModels()} disabled={busy}>Load models</button>
        )}
        {/* The name mirrors the text, so the status is found by its text either way. */}
        <span role="status" aria-label={status} className="status-pill" data-ready={modelsReady(s) || undefined}>{status}</span>
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
    </section>
  );
}
