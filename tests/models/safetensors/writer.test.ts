import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../models/errors.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, toFloat32 } from '../../../models/safetensors/dtype.ts';
import { readSafetensorsHeader } from '../../../models/safetensors/header.ts';
import { encodeSafetensors, type WritableDtype } from '../../../models/safetensors/writer.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'st-writer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function roundTo(dtype: WritableDtype, x: number): number {
  if (dtype === 'F32') return Math.fround(x);
  return dtype === 'F16' ? f16BitsToF32(f32ToF16Bits(x)) : bf16BitsToF32(f32ToBf16Bits(x));
}

describe('encodeSafetensors', () => {
  it('pads the JSON header with spaces to a multiple of 8', () => {
    const bytes = encodeSafetensors([{ name: 'abc', dtype: 'F16', shape: [3], data: new Float32Array([1, 2, 3]) }], { k: 'v' });
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(/^[^ ]* *$/.test(text.slice(text.lastIndexOf('}')))).toBe(true);
    expect(JSON.parse(text)).toEqual({ __metadata__: { k: 'v' }, abc: { dtype: 'F16', shape: [3], data_offsets: [0, 6] } });
    expect(bytes.byteLength).toBe(8 + n + 6);
  });

  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`round-trips ${dtype} through NodeDirSource + header + toFloat32`, async () => {
      const rand = mulberry32(7);
      const a = new Float32Array(3 * 5).map(() => (rand() - 0.5) * 10);
      const b = new Float32Array(7).map(() => (rand() - 0.5) * 1e-3); // odd count: next tensor unaligned for F16/BF16
      const c = new Float32Array([0, -0, 1, -1, 65504, 1e-7]);
      const tensors = [
        { name: 'a', dtype, shape: [3, 5], data: a },
        { name: 'b', dtype, shape: [7], data: b },
        { name: 'c', dtype, shape: [2, 3], data: c },
      ];
      await writeFile(join(dir, `${dtype}.safetensors`), encodeSafetensors(tensors, { format: 'pt' }));
      const file = await new NodeDirSource(dir).open(`${dtype}.safetensors`);
      const header = await readSafetensorsHeader(file);
      expect(header.metadata).toEqual({ format: 'pt' });
      for (const t of tensors) {
        const info = header.tensors.get(t.name)!;
        expect(info.dtype).toBe(dtype);
        expect(info.shape).toEqual(t.shape);
        const got = toFloat32(await file.read(info.begin, info.end - info.begin), info.dtype, info.name);
        expect([...got]).toEqual([...t.data].map((x) => roundTo(dtype, x)));
      }
    });
  }

  it('writes an empty file that reads back', async () => {
    await writeFile(join(dir, 'empty.safetensors'), encodeSafetensors([]));
    const h = await readSafetensorsHeader(await new NodeDirSource(dir).open('empty.safetensors'));
    expect(h.tensors.size).toBe(0);
  });

  it('rejects a shape that does not match the data, and repeated names', () => {
    expect(() => encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }])).toThrow(InvalidInputError);
    const t = { name: 'a', dtype: 'F32' as const, shape: [1], data: new Float32Array(1) };
    expect(() => encodeSafetensors([t, t])).toThrow(/repeated/);
  });
});
