/**
 * Encodes tensors as a safetensors file in memory (LoRA adapters, test fixtures). Not for base
 * models: the whole file is built as one Uint8Array.
 */
import { InvalidInputError } from '../errors.ts';
import { f32ToBf16Bits, f32ToF16Bits } from './dtype.ts';

export type WritableDtype = 'F32' | 'F16' | 'BF16';

export interface TensorToWrite {
  name: string;
  dtype: WritableDtype;
  shape: number[];
  /** Row-major values; converted to `dtype` with round-to-nearest-even. */
  data: Float32Array;
}

const BYTES: Record<WritableDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/**
 * Builds a safetensors file: u64 LE header length, JSON header padded with spaces to a multiple
 * of 8 bytes (as the spec recommends, so the data is 8-aligned), then the data in the given order.
 * @example
 *   const bytes = encodeSafetensors([{ name: 'a.lora_A', dtype: 'F32', shape: [4, 64], data }], { format: 'pt' });
 *   await writeFile('adapter.safetensors', bytes);
 */
export function encodeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) {
      throw new InvalidInputError(`encodeSafetensors: tensor name "${t.name}" is reserved or repeated.`);
    }
    if (!(t.dtype in BYTES)) throw new InvalidInputError(`encodeSafetensors: ${t.name}: cannot write dtype ${t.dtype}.`);
    const count = t.shape.reduce((p, d) => p * d, 1);
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0) || count !== t.data.length) {
      throw new InvalidInputError(`encodeSafetensors: ${t.name}: shape ${JSON.stringify(t.shape)} does not match ${t.data.length} values.`);
    }
    const size = count * BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, headerLen % 2 ** 32, true);
  dv.setUint32(4, Math.floor(headerLen / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const t of tensors) {
    const n = t.data.length;
    if (t.dtype === 'F32') {
      for (let i = 0; i < n; i++) dv.setFloat32(pos + 4 * i, t.data[i], true);
    } else {
      const conv = t.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < n; i++) dv.setUint16(pos + 2 * i, conv(t.data[i]), true);
    }
    pos += n * BYTES[t.dtype];
  }
  return out;
}
