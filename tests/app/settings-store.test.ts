/**
 * The query string preselects models (a public interface: /?model=&embedder=&weights=&backend=),
 * and the persisted settings fill in fields added later with their defaults.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';

// zustand's persist needs a localStorage: a Map-backed one for Node.
const data = new Map<string, string>();
vi.stubGlobal('localStorage', {
  getItem: (k: string) => data.get(k) ?? null,
  setItem: (k: string, v: string) => void data.set(k, v),
  removeItem: (k: string) => void data.delete(k),
});

const { applyPreset, applyQueryParams, DEFAULT_SETTINGS, useSettings } = await import('../../app/settings-store.ts');

beforeEach(() => useSettings.setState(structuredClone(DEFAULT_SETTINGS)));

describe('settings', () => {
  it('defaults: FineMedLM-o1 in 4-bit with bge-base, the o1 prompt, 3 TTT steps at 1e-4', () => {
    const s = useSettings.getState();
    expect(s).toMatchObject({ llmRepo: 'hongzhouyu/FineMedLM-o1', embedderRepo: 'Xenova/bge-base-en-v1.5', weights: 'q4', hub: 'auto', corpus: { kind: 'demo' } });
    expect(s.question).toMatchObject({ steps: 3, lr: 1e-4, rank: 8, alpha: 16, system: 'o1', temperature: 0 });
  });

  it('?model=&embedder=&weights=&backend=&hub= preselect, and bad values are ignored', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    applyQueryParams('?model=test-org/stories260K&embedder=Xenova/tiny-random-bert&weights=f32&backend=cpu&hub=http://127.0.0.1:9/hub');
    expect(useSettings.getState()).toMatchObject({ llmRepo: 'test-org/stories260K', embedderRepo: 'Xenova/tiny-random-bert', weights: 'f32', backend: 'cpu', hub: 'http://127.0.0.1:9/hub' });
    applyQueryParams('?model=not a repo&weights=q8&backend=metal');
    expect(useSettings.getState()).toMatchObject({ llmRepo: 'test-org/stories260K', weights: 'f32', backend: 'cpu' });
    expect(warn).toHaveBeenCalledTimes(3);
    warn.mockRestore();
  });

  it("the paper preset is one Adam step at 1e-5, greedy, the o1 prompt; settings persist in localStorage", () => {
    applyPreset('paper');
    expect(useSettings.getState().question).toMatchObject({ steps: 1, lr: 1e-5, temperature: 0, system: 'o1' });
    const stored = JSON.parse(data.get('finemed-ttt-settings')!) as { state: { question: { steps: number } } };
    expect(stored.state.question.steps).toBe(1);
    applyPreset('default');
    expect(useSettings.getState().question.steps).toBe(3);
  });
});
