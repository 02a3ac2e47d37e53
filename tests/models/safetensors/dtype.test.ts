import { describe, expect, it } from 'vitest';
import { UnsupportedDtypeError, WeightsFormatError } from '../../../models/errors.ts';
import {
  bf16BitsToF32,
  dtypeByteSize,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  toFloat32,
} from '../../../models/safetensors/dtype.ts';

/** Bits of a float32 as a number, for building exact bf16 tie cases. */
function fromBits(u: number): number {
  return new Float32Array(new Uint32Array([u]).buffer)[0];
}

describe('dtype sizes', () => {
  it('knows the spec dtypes and not the rest', () => {
    expect(dtypeByteSize('F32')).toBe(4);
    expect(dtypeByteSize('BF16')).toBe(2);
    expect(dtypeByteSize('F16')).toBe(2);
    expect(dtypeByteSize('I64')).toBe(8);
    expect(dtypeByteSize('U8')).toBe(1);
    expect(dtypeByteSize('F4')).toBeUndefined();
    expect(dtypeByteSize('toString')).toBeUndefined();
  });
});

describe('f16 conversions', () => {
  it('converts known values with round-to-nearest-even', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(0)).toBe(0);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // halfway to 65536 rounds to even = overflow
    expect(f32ToF16Bits(1e9)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -24)).toBe(1); // smallest subnormal
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie -> even (0)
    expect(f32ToF16Bits(1.5 * 2 ** -25)).toBe(1);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(2); // 1.5 units: tie -> even (2)
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(f32ToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  });

  it('round-trips every non-NaN half exactly', () => {
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const x = f16BitsToF32(h);
      if (!Number.isNaN(x) && f32ToF16Bits(x) !== h) bad.push(h);
    }
    expect(bad).toEqual([]);
  });
});

describe('bf16 conversions', () => {
  it('rounds to nearest even and keeps NaN', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(-1)).toBe(0xbf80);
    expect(f32ToBf16Bits(fromBits(0x3f808000))).toBe(0x3f80); // tie -> even (down)
    expect(f32ToBf16Bits(fromBits(0x3f818000))).toBe(0x3f82); // tie -> even (up)
    expect(f32ToBf16Bits(fromBits(0x3f808001))).toBe(0x3f81);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
  });

  it('round-trips every non-NaN bf16 exactly', () => {
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const x = bf16BitsToF32(h);
      if (!Number.isNaN(x) && f32ToBf16Bits(x) !== h) bad.push(h);
    }
    expect(bad).toEqual([]);
  });
});

describe('toFloat32', () => {
  const values = [1, -2.5, 0.333251953125, 1024, -0.0009765625];

  function le(dtype: 'F32' | 'F16' | 'BF16', xs: number[], pad: number): Uint8Array {
    const size = dtype === 'F32' ? 4 : 2;
    const buf = new Uint8Array(pad + xs.length * size);
    const dv = new DataView(buf.buffer);
    xs.forEach((x, i) => {
      if (dtype === 'F32') dv.setFloat32(pad + 4 * i, x, true);
      else dv.setUint16(pad + 2 * i, dtype === 'F16' ? f32ToF16Bits(x) : f32ToBf16Bits(x), true);
    });
    return buf.subarray(pad);
  }

  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    for (const pad of [0, 1, 3]) {
      it(`decodes ${dtype} at byte offset ${pad}`, () => {
        const got = toFloat32(le(dtype, values, pad), dtype, 't');
        const expected = values.map((x) =>
          dtype === 'F32' ? Math.fround(x) : dtype === 'F16' ? f16BitsToF32(f32ToF16Bits(x)) : bf16BitsToF32(f32ToBf16Bits(x)),
        );
        expect([...got]).toEqual(expected);
      });
    }
  }

  it('does not alias a sub-range of a larger buffer', () => {
    const big = le('F32', values, 4);
    const got = toFloat32(big, 'F32');
    big.fill(0);
    expect(got[0]).toBe(1);
  });

  it('rejects other dtypes with UnsupportedDtypeError naming tensor and dtype', () => {
    for (const dtype of ['I32', 'F64', 'U8', 'F8_E4M3']) {
      let err: unknown;
      try {
        toFloat32(new Uint8Array(8), dtype, 'model.norm.weight');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnsupportedDtypeError);
      expect((err as UnsupportedDtypeError).code).toBe('unsupported-dtype');
      expect((err as Error).message).toContain('model.norm.weight');
      expect((err as Error).message).toContain(dtype);
    }
  });

  it('rejects a byte count that is not whole values', () => {
    expect(() => toFloat32(new Uint8Array(6), 'F32', 'x')).toThrow(WeightsFormatError);
  });
});
