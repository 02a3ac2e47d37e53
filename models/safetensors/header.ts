/**
 * Reads and validates the header of a safetensors file: `u64 LE header length`, then a JSON object
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then the data.
 * Only the header is read; all checks (including truncation) happen here, so a file whose header
 * parsed can be read by range without surprises.
 */
import { WeightsFormatError, throwIfAborted } from '../errors.ts';
import type { ByteSource } from '../io/source.ts';
import { dtypeByteSize } from './dtype.ts';

/** One tensor of a safetensors file; `begin`/`end` are absolute byte offsets in the file. */
export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Tensors in file order of their data. */
  tensors: Map<string, TensorInfo>;
  /** Absolute offset of the data section (8 + header length). */
  dataStart: number;
  /** The `__metadata__` entries (string -> string in the spec; other values are JSON-encoded). */
  metadata: Record<string, string>;
}

/** Real headers are a few hundred KiB at most (8B models: ~30 KiB); more means garbage. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function fail(file: string, what: string): never {
  throw new WeightsFormatError(`${file}: ${what}`);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Reads the header of a safetensors file and checks it against the file size.
 * Throws WeightsFormatError (message names the file and the problem) for a file shorter than
 * 8 bytes, an absurd or too-large header length, a header that is not a JSON object, and tensors
 * whose offsets are out of the file, overlapping or inconsistent with shape x dtype size.
 * @example
 *   const file = await source.open('model.safetensors');
 *   const { tensors } = await readSafetensorsHeader(file);
 *   const t = tensors.get('model.norm.weight')!; // { dtype: 'F32', shape: [64], begin, end }
 */
export async function readSafetensorsHeader(file: ByteSource, signal?: AbortSignal): Promise<SafetensorsHeader> {
  const name = file.name;
  if (file.size < 8) fail(name, `the file is only ${file.size} bytes; a safetensors file starts with an 8-byte header length.`);
  throwIfAborted(signal);
  const lenBytes = await file.read(0, 8, signal);
  const dv = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  // u64 LE; a high word > 0 is beyond any real file, so the JS number loses nothing that matters.
  const headerLen = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  if (8 + headerLen > file.size) {
    fail(name, `header length ${headerLen} is larger than the file (${file.size} bytes); the file is truncated or not a safetensors file.`);
  }
  if (headerLen > MAX_HEADER_BYTES) {
    fail(name, `header length ${headerLen} is absurd (over ${MAX_HEADER_BYTES} bytes); this is not a safetensors file.`);
  }
  throwIfAborted(signal);
  const headerBytes = await file.read(8, headerLen, signal);
  return parseSafetensorsHeader(name, headerBytes, file.size);
}

/**
 * Validates header JSON bytes (without the 8-byte length) against the size of their file.
 * @example parseSafetensorsHeader('a.safetensors', bytes.subarray(8, 8 + n), bytes.length);
 */
export function parseSafetensorsHeader(name: string, headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + headerBytes.byteLength;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(name, `the header is not valid JSON (${(e as Error).message}); the file is corrupt or not a safetensors file.`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    fail(name, 'the header is not a JSON object; the file is corrupt or not a safetensors file.');
  }
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (key === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(name, '"__metadata__" is not an object.');
      for (const [k, v] of Object.entries(value)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
      continue;
    }
    tensors.push(parseEntry(name, key, value, dataStart));
  }
  // Checked on the last tensor so the message gives the full shortfall of a cut download.
  const dataEnd = tensors.reduce((m, t) => Math.max(m, t.end), dataStart);
  if (dataEnd > fileSize) {
    fail(name, `the header says the data ends at byte ${dataEnd} but the file has only ${fileSize} bytes; the file is truncated (incomplete download?).`);
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < tensors.length; i++) {
    const prev = tensors[i - 1];
    const t = tensors[i];
    if (t.begin < prev.end) {
      fail(name, `tensors "${prev.name}" and "${t.name}" overlap (bytes ${prev.begin - dataStart}..${prev.end - dataStart} and ${t.begin - dataStart}..${t.end - dataStart} of the data); the header is corrupt.`);
    }
  }
  return { tensors: new Map(tensors.map((t) => [t.name, t])), dataStart, metadata };
}

function parseEntry(file: string, key: string, value: unknown, dataStart: number): TensorInfo {
  const where = `tensor "${key}"`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(file, `${where}: header entry is not an object.`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(file, `${where}: "dtype" is missing or not a string.`);
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
    fail(file, `${where}: "shape" must be a list of non-negative integers, got ${JSON.stringify(shape)}.`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt) || offsets[0] > offsets[1]) {
    fail(file, `${where}: "data_offsets" must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}.`);
  }
  const [b, e] = offsets as [number, number];
  const elemBytes = dtypeByteSize(dtype);
  // Unknown (e.g. sub-byte) dtypes skip the size check; they are rejected only if a reader needs them.
  if (elemBytes !== undefined) {
    const count = (shape as number[]).reduce((p, d) => p * d, 1);
    if (count * elemBytes !== e - b) {
      fail(file, `${where}: shape ${JSON.stringify(shape)} x ${dtype} (${elemBytes} bytes) is ${count * elemBytes} bytes but data_offsets span ${e - b}.`);
    }
  }
  return { name: key, dtype, shape: [...(shape as number[])], begin: dataStart + b, end: dataStart + e };
}
