/**
 * Safetensors dtypes: byte sizes, and decoding of the float formats the engine reads (F32, F16,
 * BF16) into Float32Array. Also the scalar f16/bf16 bit conversions used by the writer and tests.
 */
import { UnsupportedDtypeError, WeightsFormatError } from '../errors.ts';

/** Dtypes the engine can decode into f32. */
export const READABLE_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type ReadableDtype = (typeof READABLE_DTYPES)[number];

/** Bytes per element of every whole-byte dtype in the safetensors spec. */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

/**
 * Bytes per element of `dtype`, or undefined for a dtype we do not know (e.g. sub-byte F4).
 * @example dtypeByteSize('BF16'); // 2
 */
export function dtypeByteSize(dtype: string): number | undefined {
  return Object.hasOwn(DTYPE_BYTES, dtype) ? DTYPE_BYTES[dtype] : undefined;
}

/** @example isReadableDtype('BF16'); // true */
export function isReadableDtype(dtype: string): dtype is ReadableDtype {
  return (READABLE_DTYPES as readonly string[]).includes(dtype);
}

// Typed-array views use the host byte order; safetensors is little-endian. Every browser and
// Node target is little-endian, but a big-endian host falls back to DataView instead of misreading.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * float32 -> IEEE half bits, round-to-nearest-even; overflow gives infinity, NaN stays NaN.
 * @example f32ToF16Bits(1); // 0x3c00
 */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: value = full * 2^(exp-150), half unit = 2^-24, so shift right by 126-exp.
    const shift = 126 - exp;
    if (shift > 24) return sign; // below half the smallest subnormal: rounds to zero
    const full = mant | 0x800000;
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct
  return sign | h;
}

/**
 * IEEE half bits -> number (exact).
 * @example f16BitsToF32(0x3c00); // 1
 */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * float32 -> bfloat16 bits, round-to-nearest-even (what torch's `.to(torch.bfloat16)` does).
 * @example f32ToBf16Bits(1); // 0x3f80
 */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // keep NaN quiet
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * bfloat16 bits -> number (exact).
 * @example bf16BitsToF32(0x3f80); // 1
 */
export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}

// 64K-entry table: F16 decoding is one lookup per element (256 KiB, built on first use).
let f16Table: Float32Array | null = null;
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
  }
  return f16Table;
}

/** A view of `bytes` as 16-bit words, copying first when the offset is odd (views need alignment). */
function u16View(bytes: Uint8Array): Uint16Array {
  const n = bytes.byteLength >>> 1;
  if (!LITTLE_ENDIAN) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
    return out;
  }
  const b = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(b.buffer, b.byteOffset, n);
}

/**
 * Decodes little-endian F32/F16/BF16 bytes into a Float32Array. Any other dtype throws
 * UnsupportedDtypeError. For F32, when `bytes` spans its whole (fresh) buffer the result is a
 * zero-copy view of it, so a 1 GB tensor is not held twice; otherwise the result is a copy.
 * @param tensorName used in error messages only
 * @example
 *   const w = toFloat32(await file.read(t.begin, t.end - t.begin), t.dtype, t.name);
 */
export function toFloat32(bytes: Uint8Array, dtype: string, tensorName = 'tensor'): Float32Array {
  if (!isReadableDtype(dtype)) {
    throw new UnsupportedDtypeError(`${tensorName}: dtype ${dtype} is not supported; only ${READABLE_DTYPES.join(', ')} can be read.`);
  }
  const size = DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new WeightsFormatError(`${tensorName}: ${bytes.byteLength} bytes is not a whole number of ${dtype} values.`);
  }
  const n = bytes.byteLength / size;
  if (dtype === 'F32') {
    if (!LITTLE_ENDIAN) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    }
    if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) {
      return new Float32Array(bytes.buffer, 0, n);
    }
    // slice() copies into a fresh, 4-aligned buffer whatever the source offset was.
    return new Float32Array(bytes.slice().buffer, 0, n);
  }
  const src = u16View(bytes);
  const out = new Float32Array(n);
  if (dtype === 'F16') {
    const table = f16ToF32Table();
    for (let i = 0; i < n; i++) out[i] = table[src[i]];
  } else {
    const outBits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) outBits[i] = src[i] << 16;
  }
  return out;
}
