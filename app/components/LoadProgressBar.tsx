import type { LoadProgress } from '../../workers/protocol.ts';
import { formatBytes } from '../format.ts';

const PHASES: Record<LoadProgress['phase'], string> = {
  config: 'Reading config',
  tokenizer: 'Loading tokenizer',
  weights: 'Loading weights',
  ready: 'Ready',
};

export function LoadProgressBar({ progress }: { progress: LoadProgress | null }) {
  const total = progress?.totalBytes ?? 0;
  const loaded = progress?.loadedBytes ?? 0;
  return (
    <div className="progress">
      {/* Without a byte total yet the bar is indeterminate (no value). */}
      <progress aria-label="Loading progress" max={total || undefined} value={total ? loaded : undefined} />
      <p className="progress-text" aria-live="polite">
        {progress ? PHASES[progress.phase] : 'Starting'}
        {total > 0 && ` · ${formatBytes(loaded)} of ${formatBytes(total)}`}
        {progress?.tensor && <span className="tensor"> · {progress.tensor}</span>}
      </p>
    </div>
  );
}
