import type { FormEvent } from 'react';
import type { Backend, WeightFormat } from '../../workers/protocol.ts';
import { loadModel, pickFolder, stop } from '../actions.ts';
import { formatBytes } from '../format.ts';
import { setField, useApp, type SourceKind } from '../store.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { LoadProgressBar } from './LoadProgressBar.tsx';
import { ModelSummary } from './ModelSummary.tsx';

/** `webkitdirectory` is not in React's input typings; set it on the element instead. */
function asDirectoryPicker(el: HTMLInputElement | null): void {
  el?.setAttribute('webkitdirectory', '');
}

export function ModelPanel() {
  const s = useApp();
  const loading = s.loadStatus === 'loading';
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void loadModel();
  };
  return (
    <section className="panel" aria-labelledby="model-heading">
      <h2 id="model-heading">Model</h2>
      <form onSubmit={onSubmit}>
        <fieldset disabled={loading}>
          <legend>Source</legend>
          {(['url', 'folder'] as SourceKind[]).map((kind) => (
            <label key={kind} className="inline">
              <input type="radio" name="source" value={kind} checked={s.sourceKind === kind} onChange={() => setField('sourceKind', kind)} />
              {kind === 'url' ? 'From a URL' : 'From a folder on this device'}
            </label>
          ))}
          {s.sourceKind === 'url' ? (
            <label className="field">
              {/* type=text, not url: relative URLs such as /shared/... are valid here. */}
              Model URL
              <input key="url" type="text" inputMode="url" spellCheck={false} autoComplete="off" placeholder="https://huggingface.co/<org>/<repo>/resolve/main/" value={s.url} onChange={(e) => setField('url', e.target.value)} />
            </label>
          ) : (
            <label className="field">
              Model folder
              <input key="folder" type="file" multiple ref={asDirectoryPicker} onChange={(e) => pickFolder([...(e.target.files ?? [])])} />
              {s.folder && (
                <span className="note">
                  {s.folder.name}: {s.folder.files} files, {formatBytes(s.folder.bytes)}
                </span>
              )}
            </label>
          )}
          <div className="row">
            <label className="field">
              Backend
              <select value={s.backend} onChange={(e) => setField('backend', e.target.value as Backend)}>
                <option value="webgpu">WebGPU</option>
                <option value="cpu">CPU (small models only)</option>
              </select>
            </label>
            <label className="field">
              Weights
              <select value={s.weights} onChange={(e) => setField('weights', e.target.value as WeightFormat)}>
                <option value="q4">4-bit (q4)</option>
                <option value="f32">Full precision (f32)</option>
              </select>
            </label>
          </div>
        </fieldset>
        <div className="actions">
          {loading ? (
            <button type="button" onClick={stop}>
              Cancel loading
            </button>
          ) : (
            <button type="submit">Load model</button>
          )}
        </div>
      </form>
      {loading && <LoadProgressBar progress={s.progress} />}
      {s.loadStatus === 'error' && s.loadError && <ErrorAlert title="The model could not be loaded." error={s.loadError} />}
      {s.loadStatus === 'ready' && s.model && <ModelSummary info={s.model} />}
    </section>
  );
}
