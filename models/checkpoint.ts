/**
 * Opens a Hugging Face Llama checkpoint (config.json + safetensors, single file or shards) from any
 * ModelSource, validates every tensor the config needs, and reads tensors or row blocks by range.
 * All checks happen in openCheckpoint: a checkpoint that opened is complete and readable, and a
 * failure leaves nothing behind (only headers were read).
 */
import { parseLlamaConfig, expectedTensors, type LlamaConfig } from './config.ts';
import {
  ConfigError,
  InvalidInputError,
  NotFoundError,
  UnsupportedDtypeError,
  WeightsFormatError,
  WeightsMismatchError,
  throwIfAborted,
} from './errors.ts';
import type { ByteSource, ModelSource } from './io/source.ts';
import { isReadableDtype, READABLE_DTYPES, toFloat32 } from './safetensors/dtype.ts';
import { readSafetensorsHeader, type TensorInfo } from './safetensors/header.ts';

/** A tensor and the file holding it. */
export interface TensorRef extends TensorInfo {
  file: ByteSource;
}

export interface Checkpoint {
  config: LlamaConfig;
  /** config.json as parsed JSON, for fields the engine does not model. */
  rawConfig: unknown;
  /** Exactly the tensors `expectedTensors(config)` lists, in that order, all validated. */
  tensors: Map<string, TensorRef>;
  /** Bytes of all those tensors as stored (for download/load progress). */
  totalBytes: number;
  /** Rows [rowStart, rowStart + rowCount) of a 2-D tensor as f32; a 1-D tensor is one row. */
  readRows(name: string, rowStart: number, rowCount: number, signal?: AbortSignal): Promise<Float32Array>;
  /** A whole tensor as f32 (small tensors, CPU path). */
  readTensor(name: string, signal?: AbortSignal): Promise<Float32Array>;
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

const fmtShape = (s: number[]) => `[${s.join(', ')}]`;

async function readConfig(source: ModelSource, signal?: AbortSignal): Promise<{ raw: unknown; config: LlamaConfig }> {
  let text: string;
  try {
    text = await source.readText('config.json', signal);
  } catch (e) {
    if (e instanceof NotFoundError) throw new NotFoundError(`${source.description}: no config.json; is this a Hugging Face model folder? (${e.message})`);
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config.json is not valid JSON: ${(e as Error).message}`);
  }
  return { raw, config: parseLlamaConfig(raw) };
}

/** Tensor name -> shard file, from the index; only string entries are accepted. */
async function readIndex(source: ModelSource, signal?: AbortSignal): Promise<Map<string, string>> {
  const text = await source.readText(INDEX_FILE, signal);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WeightsFormatError(`${INDEX_FILE} is not valid JSON: ${(e as Error).message}`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new WeightsFormatError(`${INDEX_FILE} has no "weight_map" object.`);
  }
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || !file) throw new WeightsFormatError(`${INDEX_FILE}: weight_map["${name}"] is not a file name.`);
    out.set(name, file);
  }
  return out;
}

/** Which file each needed tensor should be in, and the files searched (for messages). */
async function locateTensors(
  source: ModelSource,
  needed: string[],
  signal?: AbortSignal,
): Promise<{ sharded: boolean; location: Map<string, string | undefined> }> {
  if (await source.exists(INDEX_FILE, signal)) {
    const index = await readIndex(source, signal);
    return { sharded: true, location: new Map(needed.map((n) => [n, index.get(n)])) };
  }
  if (await source.exists(SINGLE_FILE, signal)) {
    return { sharded: false, location: new Map(needed.map((n) => [n, SINGLE_FILE])) };
  }
  const bin = (await source.exists('pytorch_model.bin', signal)) || (await source.exists('pytorch_model.bin.index.json', signal));
  throw new NotFoundError(
    `${source.description}: neither ${SINGLE_FILE} nor ${INDEX_FILE} found` +
      (bin ? '; only PyTorch .bin weights are there, and only safetensors can be read (convert them, or pick a repo with safetensors).' : '.'),
  );
}

function checkTensor(t: TensorInfo, file: string, shape: number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new WeightsMismatchError(`${file}: tensor "${t.name}" has shape ${fmtShape(t.shape)}, expected ${fmtShape(shape)} for this config.json.`);
  }
  if (!isReadableDtype(t.dtype)) {
    throw new UnsupportedDtypeError(`${file}: tensor "${t.name}" is stored as ${t.dtype}; only ${READABLE_DTYPES.join(', ')} are supported.`);
  }
}

function missingError(missing: { name: string; file?: string }[], searched: string[], sharded: boolean): WeightsMismatchError {
  const where = (m: { file?: string }) => (!sharded ? '' : m.file ? ` (the index says ${m.file})` : ` (not in ${INDEX_FILE})`);
  const list = missing.slice(0, 5).map((m) => `"${m.name}"${where(m)}`);
  const more = missing.length > 5 ? ` and ${missing.length - 5} more` : '';
  return new WeightsMismatchError(
    `${missing.length === 1 ? 'tensor' : `${missing.length} tensors`} missing for this config.json: ${list.join(', ')}${more}; searched ${searched.join(', ')}.`,
  );
}

/**
 * Opens and validates a checkpoint. Throws ConfigError (bad config.json), NotFoundError (no
 * weights), WeightsFormatError (corrupt/truncated file), WeightsMismatchError (missing tensor,
 * wrong shape) or UnsupportedDtypeError (a needed tensor not in F32/F16/BF16).
 * @example
 *   const ckpt = await openCheckpoint(new NodeDirSource('../shared/golden/stories260K-hf/f32'));
 *   const norm = await ckpt.readTensor('model.norm.weight'); // Float32Array(64)
 *   const rows = await ckpt.readRows('model.embed_tokens.weight', 10, 2); // 2 x hidden
 */
export async function openCheckpoint(source: ModelSource, signal?: AbortSignal): Promise<Checkpoint> {
  const { raw, config } = await readConfig(source, signal);
  const expected = expectedTensors(config);
  const { sharded, location } = await locateTensors(source, [...expected.keys()], signal);

  const files = [...new Set([...location.values()].filter((f): f is string => f !== undefined))];
  // Shards are independent: open them and read their headers in parallel (one round trip each).
  const opened = await Promise.all(
    files.map(async (f) => {
      const file = await source.open(f, signal);
      return { file, header: await readSafetensorsHeader(file, signal) };
    }),
  );
  throwIfAborted(signal);
  const byFile = new Map(files.map((f, i) => [f, opened[i]]));

  const tensors = new Map<string, TensorRef>();
  const missing: { name: string; file?: string }[] = [];
  let totalBytes = 0;
  for (const [name, shape] of expected) {
    const fileName = location.get(name);
    const shard = fileName === undefined ? undefined : byFile.get(fileName);
    const info = shard?.header.tensors.get(name);
    if (!shard || !info) {
      missing.push({ name, file: fileName });
      continue;
    }
    checkTensor(info, shard.file.name, shape);
    tensors.set(name, { ...info, file: shard.file });
    totalBytes += info.end - info.begin;
  }
  if (missing.length) throw missingError(missing, sharded ? [INDEX_FILE, ...files] : files, sharded);
  return new LoadedCheckpoint(config, raw, tensors, totalBytes);
}

class LoadedCheckpoint implements Checkpoint {
  constructor(
    readonly config: LlamaConfig,
    readonly rawConfig: unknown,
    readonly tensors: Map<string, TensorRef>,
    readonly totalBytes: number,
  ) {}

  private get(name: string): TensorRef {
    const t = this.tensors.get(name);
    if (!t) throw new InvalidInputError(`tensor "${name}" is not part of this checkpoint.`);
    return t;
  }

  async readRows(name: string, rowStart: number, rowCount: number, signal?: AbortSignal): Promise<Float32Array> {
    const t = this.get(name);
    const rows = t.shape.length === 1 ? 1 : t.shape[0];
    if (t.shape.length > 2 || !Number.isInteger(rowStart) || !Number.isInteger(rowCount) || rowStart < 0 || rowCount < 0 || rowStart + rowCount > rows) {
      throw new InvalidInputError(`readRows("${name}", ${rowStart}, ${rowCount}): out of range for shape ${fmtShape(t.shape)}.`);
    }
    const rowBytes = (t.end - t.begin) / Math.max(rows, 1);
    const bytes = await t.file.read(t.begin + rowStart * rowBytes, rowCount * rowBytes, signal);
    return toFloat32(bytes, t.dtype, name);
  }

  async readTensor(name: string, signal?: AbortSignal): Promise<Float32Array> {
    const t = this.get(name);
    const bytes = await t.file.read(t.begin, t.end - t.begin, signal);
    return toFloat32(bytes, t.dtype, name);
  }
}
