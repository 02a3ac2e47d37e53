/**
 * The question settings, persisted: TTT steps, learning rate, LoRA rank/alpha/targets, trained
 * tokens, answer length, decoding, k and the system prompt; "Defaults" and "Paper preset".
 */
import { useEffect, useState } from 'react';
import { PROJECTIONS, type Projection, type SystemPromptChoice } from '../../workers/ask-session.ts';
import { applyPreset, setQuestionSetting, useSettings, type QuestionSettings } from '../settings-store.ts';

type NumberKey = { [K in keyof QuestionSettings]: QuestionSettings[K] extends number ? K : never }[keyof QuestionSettings];

/** A number field that keeps the last valid value in the store while its text does not parse (or is out of range). */
function NumberField({ label, k, min, max, step }: { label: string; k: NumberKey; min: number; max?: number; step?: number | 'any' }) {
  const value = useSettings((s) => s.question[k]);
  const [text, setText] = useState(String(value));
  // A preset (or another tab) changed the value: show it, unless the text already means it.
  useEffect(() => setText((t) => (Number(t) === value ? t : String(value))), [value]);
  const integer = step === undefined || step === 1;
  return (
    <label className="field narrow">
      {label}
      <input
        type="number"
        min={min}
        max={max}
        step={step ?? 1}
        value={text}
        onBlur={() => setText(String(value))}
        onChange={(e) => {
          setText(e.target.value);
          const v = Number(e.target.value);
          if (e.target.value !== '' && Number.isFinite(v) && v >= min && (max === undefined || v <= max) && (!integer || Number.isInteger(v))) setQuestionSetting(k, v);
        }}
      />
    </label>
  );
}

const SYSTEMS: { value: SystemPromptChoice; label: string }[] = [
  { value: 'o1', label: "FineMedLM-o1's training prompt (long)" },
  { value: 'card', label: "The model card's short prompt" },
  { value: 'none', label: 'No system prompt' },
  { value: 'custom', label: 'Custom' },
];

const SHORT: Record<Projection, string> = { q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down' };

export function SettingsPanel() {
  const q = useSettings((s) => s.question);
  const toggleTarget = (p: Projection, on: boolean) => {
    const next = on ? [...q.targets, p] : q.targets.filter((t) => t !== p);
    if (next.length > 0) setQuestionSetting('targets', PROJECTIONS.filter((t) => next.includes(t)));
  };
  return (
    <section className="panel settings" aria-labelledby="settings-heading">
      <h2 id="settings-heading">Settings</h2>
      <details>
        <summary>Test-time training, decoding and prompt</summary>
        <fieldset>
          <legend>Test-time training</legend>
          <div className="row">
            <NumberField label="Steps" k="steps" min={0} max={100} />
            <NumberField label="Learning rate" k="lr" min={1e-8} max={1} step="any" />
            <NumberField label="LoRA rank" k="rank" min={1} max={256} />
            <NumberField label="LoRA alpha" k="alpha" min={0.01} max={1024} step="any" />
            <NumberField label="Max trained tokens" k="maxTrainTokens" min={2} max={32768} />
            <NumberField label="Retrieved traces (k)" k="k" min={1} max={50} />
          </div>
          <div className="row targets" role="group" aria-label="LoRA targets">
            {PROJECTIONS.map((p) => (
              <label key={p} className="inline">
                <input type="checkbox" checked={q.targets.includes(p)} onChange={(e) => toggleTarget(p, e.target.checked)} />
                {SHORT[p]}
              </label>
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>Answer</legend>
          <div className="row">
            <NumberField label="Max new tokens" k="maxNewTokens" min={1} max={32768} />
            <NumberField label="Temperature (0 = greedy)" k="temperature" min={0} max={5} step="any" />
            <NumberField label="Top-p" k="topP" min={0.01} max={1} step="any" />
            <NumberField label="Seed" k="seed" min={0} max={2 ** 31 - 1} />
          </div>
          <label className="field">
            System prompt
            <select value={q.system} onChange={(e) => setQuestionSetting('system', e.target.value as SystemPromptChoice)}>
              {SYSTEMS.map((s) => <option key={s.value} value={s.value}>{s.label}</option>)}
            </select>
          </label>
          {q.system === 'custom' && (
            <label className="field">
              Custom system prompt
              <textarea rows={3} value={q.customSystem} onChange={(e) => setQuestionSetting('customSystem', e.target.value)} />
            </label>
          )}
          <p className="note">A prompt too long for the model's context falls back to a shorter one; the answer says which was used.</p>
        </fieldset>
        <div className="actions">
          <button type="button" onClick={() => applyPreset('default')}>Defaults</button>
          <button type="button" onClick={() => applyPreset('paper')}>Paper preset</button>
          <span className="note">Paper: one Adam step at lr 1e-5, greedy, the o1 prompt.</span>
        </div>
      </details>
    </section>
  );
}
