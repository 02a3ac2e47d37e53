/** A progress bar with bytes (or items), speed and time left. */
import { etaSeconds } from '../progress-rate.ts';
import { formatBytes, formatDuration } from '../format.ts';
import type { ProgressView } from '../store.ts';

export function ProgressLine({ progress, label }: { progress: ProgressView; label: string }) {
  const { done, total, rate, unit } = progress;
  const amount = (n: number) => (unit === 'bytes' ? formatBytes(n) : n.toLocaleString());
  const eta = etaSeconds(done, total, rate);
  return (
    <div className="progress">
      <progress aria-label={label} max={total || undefined} value={total ? done : undefined} />
      <p className="progress-text">
        {progress.label}
        {total > 0 && ` · ${amount(done)} of ${amount(total)}`}
        {rate !== null && ` · ${unit === 'bytes' ? `${formatBytes(rate)}/s` : `${rate.toFixed(1)}/s`}`}
        {eta !== null && ` · ${formatDuration(eta)} left`}
        {progress.detail && <span className="tensor"> · {progress.detail}</span>}
      </p>
    </div>
  );
}
