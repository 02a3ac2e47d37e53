import { describe, expect, it } from 'vitest';
import { etaSeconds, RateMeter } from '../../app/progress-rate.ts';
import { formatDuration } from '../../app/format.ts';

describe('RateMeter', () => {
  it('measures over a sliding window, so a stall shows as a falling rate', () => {
    const m = new RateMeter(3000);
    expect(m.add(0, 0)).toBeNull();
    expect(m.add(100, 100)).toBeNull(); // too short to say
    expect(m.add(1000, 1000)).toBeCloseTo(1000, 6); // 1000 bytes in 1 s
    expect(m.add(2000, 2000)).toBeCloseTo(1000, 6);
    // stalled for 3 s: the window only sees the stall and the last progress
    expect(m.add(2000, 5000)!).toBeLessThan(500);
    expect(m.add(2000, 8000)).toBe(0);
  });

  it('etaSeconds and formatDuration', () => {
    expect(etaSeconds(25, 100, 5)).toBe(15);
    expect(etaSeconds(25, 100, null)).toBeNull();
    expect(etaSeconds(100, 100, 5)).toBeNull();
    expect(formatDuration(15)).toBe('15 s');
    expect(formatDuration(65)).toBe('1 min 5 s');
    expect(formatDuration(7380)).toBe('2 h 3 min');
    expect(formatDuration(null)).toBe('–');
  });
});
