/**
 * The weight cache's per-file checksum: a fast non-cryptographic 64-bit hash, computed
 * incrementally as bytes stream through (so a tensor is never held whole just to hash it).
 *
 * Core: XXH32's four-lane stripe loop over little-endian u32 words (16 bytes per stripe), which
 * V8 runs at a few GB/s with Math.imul. The high half of the result is exactly XXH32(data, seed 0)
 * (checkable against published vectors); the low half is a second, independent finalisation of
 * the same 128-bit lane state (other rotations, other tail mixing, other seed), so the two halves
 * make 64 bits without a second pass. A single changed word always changes the lane state (each
 * lane update is a bijection of the lane for a fixed word and vice versa), so any one flipped
 * byte is always detected before the final mix. Not a defence against deliberate tampering.
 */

const P1 = 0x9e3779b1, P2 = 0x85ebca77, P3 = 0xc2b2ae3d, P4 = 0x27d4eb2f, P5 = 0x165667b1;
/** Seed of the second finalisation (any fixed odd value). */
const SEED_B = 0x5bd1e995;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function avalanche(h: number, s1: number, s2: number, s3: number): number {
  h ^= h >>> s1;
  h = Math.imul(h, P2);
  h ^= h >>> s2;
  h = Math.imul(h, P3);
  h ^= h >>> s3;
  return h >>> 0;
}

/**
 * Streaming 64-bit checksum. Feed bytes with `update` in any split; `digest()` gives 16 hex digits.
 * @example
 *   const h = new Checksum64();
 *   h.update(part1); h.update(part2);
 *   h.digest(); // e.g. "02cc5d05a7c1e3f2" for no bytes at all
 */
export class Checksum64 {
  private v1 = (P1 + P2) | 0;
  private v2 = P2 | 0;
  private v3 = 0;
  private v4 = -P1 | 0;
  private total = 0;
  /** Bytes of an unfinished stripe (fewer than 16), carried to the next update. */
  private readonly tail = new Uint8Array(16);
  private tailLen = 0;
  private readonly tailWords = new Uint32Array(this.tail.buffer);

  /** Adds bytes. Fastest when `bytes` starts 4-byte aligned (a fresh Uint8Array always does). */
  update(bytes: Uint8Array): this {
    this.total += bytes.byteLength;
    let i = 0;
    const n = bytes.byteLength;
    if (this.tailLen > 0) {
      const take = Math.min(16 - this.tailLen, n);
      this.tail.set(bytes.subarray(0, take), this.tailLen);
      this.tailLen += take;
      i = take;
      if (this.tailLen < 16) return this;
      this.stripes(this.tailWords, 0, 4);
      this.tailLen = 0;
    }
    const whole = (n - i) & ~15;
    if (whole > 0) {
      const at = bytes.byteOffset + i;
      if (at % 4 === 0) {
        this.stripes(new Uint32Array(bytes.buffer, at, whole / 4), 0, whole / 4);
      } else {
        // Unaligned view: hash a copy in bounded pieces (rare: only for odd-offset callers).
        for (let p = 0; p < whole; p += 1 << 20) {
          const len = Math.min(1 << 20, whole - p);
          const copy = bytes.slice(i + p, i + p + len);
          this.stripes(new Uint32Array(copy.buffer), 0, len / 4);
        }
      }
      i += whole;
    }
    if (i < n) {
      this.tail.set(bytes.subarray(i), 0);
      this.tailLen = n - i;
    }
    return this;
  }

  /** The XXH32 stripe loop: 4 words per stripe, one per lane. */
  private stripes(w: Uint32Array, from: number, to: number): void {
    let v1 = this.v1, v2 = this.v2, v3 = this.v3, v4 = this.v4;
    for (let i = from; i + 4 <= to; i += 4) {
      v1 = Math.imul(rotl((v1 + Math.imul(w[i], P2)) | 0, 13), P1);
      v2 = Math.imul(rotl((v2 + Math.imul(w[i + 1], P2)) | 0, 13), P1);
      v3 = Math.imul(rotl((v3 + Math.imul(w[i + 2], P2)) | 0, 13), P1);
      v4 = Math.imul(rotl((v4 + Math.imul(w[i + 3], P2)) | 0, 13), P1);
    }
    this.v1 = v1; this.v2 = v2; this.v3 = v3; this.v4 = v4;
  }

  /** 16 lowercase hex digits: XXH32 (high 32 bits) then the second finalisation (low 32 bits). */
  digest(): string {
    const len = this.total >>> 0;
    const big = this.total >= 16;
    let a = big ? (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0 : P5;
    let b = big ? (rotl(this.v1, 3) + rotl(this.v2, 11) + rotl(this.v3, 19) + rotl(this.v4, 27)) ^ P4 : (SEED_B + P5) | 0;
    a = (a + len) | 0;
    b = (b + Math.imul(len, P1)) | 0;
    const t = this.tail;
    let i = 0;
    for (; i + 4 <= this.tailLen; i += 4) {
      const word = t[i] | (t[i + 1] << 8) | (t[i + 2] << 16) | (t[i + 3] << 24);
      a = Math.imul(rotl((a + Math.imul(word, P3)) | 0, 17), P4);
      b = Math.imul(rotl((b ^ Math.imul(word, P2)) | 0, 15), P1);
    }
    for (; i < this.tailLen; i++) {
      a = Math.imul(rotl((a + Math.imul(t[i], P5)) | 0, 11), P1);
      b = Math.imul(rotl((b ^ Math.imul(t[i], P3)) | 0, 7), P2);
    }
    const hi = avalanche(a, 15, 13, 16);
    const lo = avalanche(b, 16, 13, 15);
    return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
  }
}

/**
 * The checksum of a whole byte array.
 * @example checksum64(new TextEncoder().encode('abc')).slice(0, 8) // "32d153ff" = XXH32("abc")
 */
export function checksum64(bytes: Uint8Array): string {
  return new Checksum64().update(bytes).digest();
}
