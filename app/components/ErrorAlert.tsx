import type { UiError } from '../store.ts';

/** What to try next, per engine error code; the message itself always comes first. */
const HINTS: Partial<Record<string, string>> = {
  'not-found': 'Check the URL or folder: it must contain config.json and the .safetensors weights.',
  network: 'The files could not be fetched. Check the connection and the URL, then retry.',
  'gpu-unavailable': 'This browser gives no WebGPU adapter here. Try the CPU backend (small models only).',
  'gpu-oom': 'The GPU ran out of memory. Try 4-bit weights, a shorter context, or close other tabs.',
  'device-lost': 'The GPU device was lost. Load the model again.',
  'gpu-validation': 'The GPU rejected a command, so no answer was shown. Please report this with your browser and GPU; reloading the model may help.',
  'gpu-internal': 'The GPU driver failed a command. Load the model again; if it repeats, update the browser or the GPU driver.',
  tokenizer: 'The model folder needs a usable tokenizer.json.',
  config: 'config.json describes a model this app cannot run.',
};

export function ErrorAlert({ title, error }: { title: string; error: UiError }) {
  const hint = HINTS[error.code];
  return (
    <div role="alert" className="alert">
      <strong>{title}</strong> <span className="code">({error.code})</span>
      <p className="alert-message">{error.message}</p>
      {hint && <p className="hint">{hint}</p>}
    </div>
  );
}
