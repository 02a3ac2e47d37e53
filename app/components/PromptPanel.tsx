import type { FormEvent } from 'react';
import { generate, stop } from '../actions.ts';
import { setField, useApp, type SamplingMode } from '../store.ts';

/** Number inputs hand back '' while being edited; keep the old value until they parse. */
function numberSetter(key: 'maxNewTokens' | 'temperature' | 'topP' | 'seed') {
  return (raw: string) => {
    const v = Number(raw);
    if (raw !== '' && Number.isFinite(v)) setField(key, v);
  };
}

export function PromptPanel() {
  const s = useApp();
  const running = s.genStatus === 'running';
  const ready = s.loadStatus === 'ready';
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void generate();
  };
  return (
    <section className="panel" aria-labelledby="prompt-heading">
      <h2 id="prompt-heading">Ask</h2>
      <form onSubmit={onSubmit}>
        <label className="field">
          Prompt
          <textarea rows={4} value={s.prompt} placeholder="Describe the case or ask a question" onChange={(e) => setField('prompt', e.target.value)} />
        </label>
        <div className="row">
          <label className="inline">
            <input type="checkbox" checked={s.chat} onChange={(e) => setField('chat', e.target.checked)} />
            Chat template
          </label>
          <label className="field narrow">
            Max new tokens
            <input type="number" min={1} max={8192} value={s.maxNewTokens} onChange={(e) => numberSetter('maxNewTokens')(e.target.value)} />
          </label>
        </div>
        {s.chat && (
          <label className="field">
            System message
            <textarea rows={2} value={s.system} placeholder="Optional" onChange={(e) => setField('system', e.target.value)} />
          </label>
        )}
        <fieldset>
          <legend>Decoding</legend>
          {(['greedy', 'sample'] as SamplingMode[]).map((mode) => (
            <label key={mode} className="inline">
              <input type="radio" name="sampling" value={mode} checked={s.samplingMode === mode} onChange={() => setField('samplingMode', mode)} />
              {mode === 'greedy' ? 'Greedy' : 'Sample'}
            </label>
          ))}
          {s.samplingMode === 'sample' && (
            <div className="row">
              <label className="field narrow">
                Temperature
                <input type="number" min={0.01} max={5} step={0.05} value={s.temperature} onChange={(e) => numberSetter('temperature')(e.target.value)} />
              </label>
              <label className="field narrow">
                Top-p
                <input type="number" min={0.01} max={1} step={0.01} value={s.topP} onChange={(e) => numberSetter('topP')(e.target.value)} />
              </label>
              <label className="field narrow">
                Seed
                <input type="number" min={0} step={1} value={s.seed} onChange={(e) => numberSetter('seed')(e.target.value)} />
              </label>
            </div>
          )}
        </fieldset>
        <div className="actions">
          <button type="submit" disabled={!ready || running}>
            Generate
          </button>
          <button type="button" onClick={stop} disabled={!running}>
            Stop
          </button>
          {!ready && <span className="note">Load a model first.</span>}
        </div>
      </form>
    </section>
  );
}
