/** The training loss per step as a small SVG line chart (plain SVG: no chart library needed for a few points). */
export function LossChart({ losses }: { losses: number[] }) {
  if (losses.length === 0) return null;
  const W = 220, H = 64, pad = 6;
  const max = Math.max(...losses), min = Math.min(...losses);
  const span = max - min || 1;
  const x = (i: number) => pad + (losses.length === 1 ? (W - 2 * pad) / 2 : (i * (W - 2 * pad)) / (losses.length - 1));
  const y = (l: number) => pad + ((max - l) * (H - 2 * pad)) / span;
  const points = losses.map((l, i) => `${x(i).toFixed(1)},${y(l).toFixed(1)}`).join(' ');
  return (
    <svg className="loss-chart" width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Training loss by step: ${losses.map((l) => l.toFixed(4)).join(', ')}`}>
      <polyline points={points} fill="none" stroke="currentColor" strokeWidth="2" />
      {losses.map((l, i) => <circle key={i} cx={x(i)} cy={y(l)} r="3" fill="currentColor" />)}
    </svg>
  );
}
