import { describe, expect, it } from 'vitest';
import { Checksum64, checksum64 } from '../../../models/cache/checksum.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

const text = (s: string) => new TextEncoder().encode(s);

function randomBytes(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

describe('checksum64', () => {
  it('its high half is XXH32 (published vectors); the whole value is pinned', () => {
    // XXH32 seed 0: "" -> 02cc5d05, "abc" -> 32d153ff, python-xxhash's doc example -> e2293b2f.
    expect(checksum64(text('')).slice(0, 8)).toBe('02cc5d05');
    expect(checksum64(text('abc')).slice(0, 8)).toBe('32d153ff');
    expect(checksum64(text('Nobody inspects the spammish repetition')).slice(0, 8)).toBe('e2293b2f');
    // The low half is this format's own: pinned so a change to it cannot go unnoticed (it would
    // invalidate every cache entry on disk).
    expect(checksum64(text(''))).toBe('02cc5d051d5b4e8e');
    expect(checksum64(text('abc'))).toBe('32d153ff9a2bc918');
    expect(checksum64(text('Nobody inspects the spammish repetition'))).toBe('e2293b2f18e4d99f');
  });

  it('is the same however the bytes are split, aligned or not', () => {
    const data = randomBytes(10_000, 7);
    const whole = checksum64(data);
    for (const step of [1, 3, 7, 16, 33, 4096]) {
      const h = new Checksum64();
      for (let i = 0; i < data.length; i += step) h.update(data.subarray(i, i + step));
      expect(h.digest(), `step ${step}`).toBe(whole);
    }
    const shifted = new Uint8Array(data.length + 1);
    shifted.set(data, 1);
    expect(checksum64(shifted.subarray(1))).toBe(whole); // unaligned view
  });

  it('changes with any flipped bit, any length change, and word order', () => {
    const data = randomBytes(1000, 3);
    const base = checksum64(data);
    const seen = new Set([base]);
    for (const i of [0, 1, 15, 16, 500, 998, 999]) {
      for (const bit of [0, 7]) {
        const d = data.slice();
        d[i] ^= 1 << bit;
        seen.add(checksum64(d));
      }
    }
    expect(seen.size).toBe(15);
    expect(checksum64(data.subarray(0, 999))).not.toBe(base);
    const longer = new Uint8Array(1001);
    longer.set(data);
    expect(checksum64(longer)).not.toBe(base); // a trailing zero byte counts
    const swapped = data.slice();
    swapped.set(data.subarray(0, 4), 4);
    swapped.set(data.subarray(4, 8), 0);
    expect(checksum64(swapped)).not.toBe(base);
    expect(checksum64(new Uint8Array(64))).not.toBe(checksum64(new Uint8Array(68)));
  });

  it('hashes fast enough not to matter next to a 4.5 GB load (figure printed)', () => {
    const buf = randomBytes(1 << 16, 1);
    const big = new Uint8Array(64 * 2 ** 20);
    for (let i = 0; i < big.length; i += buf.length) big.set(buf, i);
    checksum64(big); // warm-up (JIT)
    const t = performance.now();
    checksum64(big);
    const mbps = big.length / 1e6 / ((performance.now() - t) / 1000);
    console.log(`[checksum64] ${mbps.toFixed(0)} MB/s in V8 (Node ${process.version}); 4.5 GB would take ${(4500 / mbps).toFixed(1)} s`);
    expect(mbps).toBeGreaterThan(300);
  });
});
