/**
 * Speed and time left of a download or a build, from (done, time) samples over a sliding window,
 * so a stall shows as a falling rate instead of an average over the whole download.
 */
export class RateMeter {
  private samples: { t: number; done: number }[] = [];

  constructor(private readonly windowMs = 3000) {}

  /** Adds a sample; returns the rate per second over the window, or null while there is too little data. */
  add(done: number, t = performance.now()): number | null {
    this.samples.push({ t, done });
    while (this.samples.length > 2 && t - this.samples[0]!.t > this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const dt = t - first.t;
    return dt >= 250 && done >= first.done ? ((done - first.done) * 1000) / dt : null;
  }

  reset(): void {
    this.samples = [];
  }
}

/** Seconds left at `rate` per second; null when unknown. */
export function etaSeconds(done: number, total: number, rate: number | null): number | null {
  if (!rate || rate <= 0 || total <= done) return null;
  return (total - done) / rate;
}
