import { describe, expect, it } from 'vitest';
import { EngineError, WeightsFormatError } from '../../../models/errors.ts';
import type { ByteSource } from '../../../models/io/source.ts';
import { readSafetensorsHeader } from '../../../models/safetensors/header.ts';
import { encodeSafetensors } from '../../../models/safetensors/writer.ts';

/** In-memory file; `size` may claim more than `bytes` holds (reads past `bytes` give zeros). */
function memFile(bytes: Uint8Array, size = bytes.byteLength, name = 'model.safetensors'): ByteSource {
  return {
    name,
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      out.set(bytes.subarray(offset, Math.min(offset + length, bytes.byteLength)));
      return out;
    },
  };
}

/** A file from a raw header string and `dataBytes` bytes of data. */
function rawFile(header: string, dataBytes: number, headerLen?: number): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setUint32(0, headerLen ?? json.byteLength, true);
  out.set(json, 8);
  return out;
}

async function formatError(file: ByteSource, fragment: string | RegExp): Promise<void> {
  const err = await readSafetensorsHeader(file).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WeightsFormatError);
  expect((err as EngineError).code).toBe('weights-format');
  expect((err as Error).message).toContain(file.name);
  if (typeof fragment === 'string') expect((err as Error).message).toContain(fragment);
  else expect((err as Error).message).toMatch(fragment);
}

describe('readSafetensorsHeader', () => {
  it('reads tensors with absolute offsets, dataStart and metadata', async () => {
    const bytes = encodeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
        { name: 'b', dtype: 'BF16', shape: [5], data: new Float32Array(5) },
      ],
      { format: 'pt' },
    );
    const h = await readSafetensorsHeader(memFile(bytes));
    const headerLen = new DataView(bytes.buffer).getUint32(0, true);
    expect(h.dataStart).toBe(8 + headerLen);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.tensors.get('a')).toEqual({ name: 'a', dtype: 'F32', shape: [2, 3], begin: h.dataStart, end: h.dataStart + 24 });
    expect(h.tensors.get('b')).toEqual({ name: 'b', dtype: 'BF16', shape: [5], begin: h.dataStart + 24, end: h.dataStart + 34 });
    expect(h.dataStart + 34).toBe(bytes.byteLength);
  });

  it('accepts unknown dtypes (size unchecked) and scalars', async () => {
    const h = await readSafetensorsHeader(
      memFile(rawFile('{"x":{"dtype":"F4","shape":[3],"data_offsets":[0,2]},"s":{"dtype":"F32","shape":[],"data_offsets":[2,6]}}', 6)),
    );
    expect(h.tensors.get('x')?.dtype).toBe('F4');
    expect(h.tensors.get('s')?.shape).toEqual([]);
  });

  it('rejects a file shorter than 8 bytes', async () => {
    await formatError(memFile(new Uint8Array(5)), 'only 5 bytes');
  });

  it('rejects a header length larger than the file', async () => {
    await formatError(memFile(rawFile('{}', 0, 1234567)), /header length 1234567 is larger than the file \(\d+ bytes\); the file is truncated/);
  });

  it('rejects an absurd header length even when the file is that big', async () => {
    const bytes = rawFile('{}', 0, 200 * 1024 * 1024);
    await formatError(memFile(bytes, 300 * 1024 * 1024), 'absurd');
  });

  it('rejects a header that is not JSON', async () => {
    await formatError(memFile(rawFile('{"a": {"dtype": "F32", ', 16)), 'not valid JSON');
  });

  it('rejects a header that is not valid UTF-8', async () => {
    const bytes = rawFile('{"a":1}', 0);
    bytes[10] = 0xff;
    await formatError(memFile(bytes), 'not valid JSON');
  });

  it('rejects a JSON header that is not an object', async () => {
    await formatError(memFile(rawFile('[1,2,3]', 0)), 'not a JSON object');
    await formatError(memFile(rawFile('null', 0)), 'not a JSON object');
  });

  it('rejects bad entries', async () => {
    await formatError(memFile(rawFile('{"a":5}', 0)), 'tensor "a": header entry is not an object');
    await formatError(memFile(rawFile('{"a":{"shape":[1],"data_offsets":[0,4]}}', 4)), '"dtype" is missing');
    await formatError(memFile(rawFile('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4)), '"shape"');
    await formatError(memFile(rawFile('{"__metadata__":[1]}', 0)), '__metadata__');
  });

  it('rejects negative or reversed data_offsets', async () => {
    await formatError(memFile(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', 4)), 'data_offsets');
    await formatError(memFile(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}', 8)), 'data_offsets');
    await formatError(memFile(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', 8)), 'data_offsets');
  });

  it('rejects data_offsets beyond the end of the file (truncated file)', async () => {
    await formatError(memFile(rawFile('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', 10)), 'truncated');
  });

  it('rejects offsets inconsistent with shape x dtype size', async () => {
    await formatError(memFile(rawFile('{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}', 12)), 'data_offsets span 12');
  });

  it('rejects overlapping tensors', async () => {
    const h = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    await formatError(memFile(rawFile(h, 12)), 'overlap');
  });
});
