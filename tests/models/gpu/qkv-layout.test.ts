/**
 * qkvLayout (models/gpu/buffer-sizes.ts): where q, k and v sit in the one buffer pair decode reads
 * as one matvec. Every part starts on a 256-byte boundary of the weights and of the scales (so it
 * binds as a matrix of its own), parts do not overlap, and the 8B model needs no padding at all.
 */
import { describe, expect, it } from 'vitest';
import { finemedLayerConfig } from '../../../scripts/bench/synthetic-checkpoint.ts';
import type { LlamaConfig } from '../../../models/config.ts';
import { q4BufferBytes, qkvLayout, STORAGE_OFFSET_ALIGN, type QkvLayout } from '../../../models/gpu/buffer-sizes.ts';

const shape = (hiddenSize: number, numHeads: number, numKvHeads: number, headDim: number) => ({ hiddenSize, numHeads, numKvHeads, headDim }) as LlamaConfig;

/** Each part's range: aligned start, its own matrix's bytes, inside the buffer, after the previous part. */
function expectRanges(l: QkvLayout, format: 'f32' | 'q4', K: number): void {
  const rows = [l.qRows, l.kvRows, l.kvRows];
  const bytes = (n: number) => (format === 'f32' ? { qweight: n * K * 4, scales: 0 } : q4BufferBytes(n, K));
  const check = (ranges: QkvLayout['w'], total: number, size: (n: number) => number) => {
    expect(ranges.length).toBe(3);
    let end = 0;
    for (const [i, [offset, n]] of ranges.entries()) {
      expect(offset % STORAGE_OFFSET_ALIGN).toBe(0);
      expect(n).toBe(size(rows[i]));
      expect(offset).toBeGreaterThanOrEqual(end);
      end = offset + n;
    }
    expect(end).toBeLessThanOrEqual(total);
  };
  check(l.w, l.wBytes, (n) => bytes(n).qweight);
  if (format === 'q4') check(l.sc!, l.scBytes, (n) => bytes(n).scales);
  else expect(l.sc).toBeNull();
  expect(l.rows).toBe(l.vStart + l.kvRows);
}

describe('qkvLayout', () => {
  it('FineMedLM-o1 (4,096 q rows, 1,024 k and v rows of 4,096): no padding, the bytes of the three matrices', () => {
    for (const format of ['q4', 'f32'] as const) {
      const l = qkvLayout(finemedLayerConfig(), format)!;
      expect([l.qRows, l.kvRows, l.kStart, l.vStart, l.rows]).toEqual([4096, 1024, 4096, 5120, 6144]);
      expectRanges(l, format, 4096);
      if (format === 'q4') {
        const sum = (f: 'qweight' | 'scales') => q4BufferBytes(4096, 4096)[f] + 2 * q4BufferBytes(1024, 4096)[f];
        expect([l.wBytes, l.scBytes]).toEqual([sum('qweight'), sum('scales')]);
      } else expect(l.wBytes).toBe(6144 * 4096 * 4);
    }
  });

  it('small shapes: padding rows bring k and v to aligned starts (stories260K q4: k at row 64, v at 128)', () => {
    const s = qkvLayout(shape(64, 8, 4, 8), 'q4')!;
    expect([s.kStart, s.vStart, s.rows]).toEqual([64, 128, 160]);
    expectRanges(s, 'q4', 64);
    expect(qkvLayout(shape(64, 8, 4, 8), 'f32')!.rows).toBe(128); // 256-byte f32 rows: no padding
    for (const [K, H, KV, D] of [[300, 5, 3, 9], [172, 4, 2, 7], [100, 2, 1, 50]] as const) {
      for (const format of ['q4', 'f32'] as const) expectRanges(qkvLayout(shape(K, H, KV, D), format)!, format, K);
    }
  });

  it('null where the fused buffer would pass the binding limit (q, k and v then stay apart)', () => {
    const c = finemedLayerConfig();
    const f32 = qkvLayout(c, 'f32')!; // 100.7 MB
    expect(qkvLayout(c, 'f32', { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 27 })).not.toBeNull();
    expect(qkvLayout(c, 'f32', { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: f32.wBytes - 4 })).toBeNull();
    expect(qkvLayout(c, 'f32', { maxBufferSize: f32.wBytes - 4, maxStorageBufferBindingSize: 2 ** 32 })).toBeNull();
  });
});
