/**
 * A ModelSource whose `model.safetensors` is generated on demand from syntheticCheckpoint's seeded
 * rows (F32): a 32 GB "file" that is never written or held whole. Each read makes only the rows
 * it covers, so LlamaModel.load runs its real path (openCheckpoint, the memory-plan check, the
 * uploader's row blocks) on FineMedLM-o1's full shape with no download and no disk. config.json
 * comes from the config; the tokenizer files, when given a folder, from that folder (Node only).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedTensors, type LlamaConfig } from '../../models/config.ts';
import { NotFoundError, WeightsFormatError, throwIfAborted } from '../../models/errors.ts';
import type { ByteSource, ModelSource } from '../../models/io/source.ts';
import { syntheticCheckpoint } from './synthetic-checkpoint.ts';
import { hfConfig } from './synthetic-model.ts';

/** The tokenizer files a folder may hold (loadTokenizer reads these). */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'];

interface Span {
  name: string;
  /** Byte offset of the tensor's data in the file. */
  begin: number;
  rows: number;
  rowBytes: number;
}

/** The virtual safetensors file: header bytes, then every tensor's rows made when read. */
class SyntheticSafetensors implements ByteSource {
  readonly name = 'model.safetensors';
  readonly size: number;
  private readonly lead: Uint8Array;
  private readonly spans: Span[] = [];
  private readonly ckpt;

  constructor(config: LlamaConfig, seed: number) {
    this.ckpt = syntheticCheckpoint(config, seed);
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    const shapes = [...expectedTensors(config)];
    for (const [name, shape] of shapes) {
      const bytes = shape.reduce((a, b) => a * b, 1) * 4;
      header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    }
    const text = JSON.stringify(header); // ASCII: its length is its byte length
    const json = new TextEncoder().encode(text.padEnd(Math.ceil(text.length / 8) * 8, ' ')); // 8-aligned data
    this.lead = new Uint8Array(8 + json.byteLength);
    new DataView(this.lead.buffer).setBigUint64(0, BigInt(json.byteLength), true);
    this.lead.set(json, 8);
    let at = this.lead.byteLength;
    for (const [name, shape] of shapes) {
      const rows = shape.length === 1 ? 1 : shape[0];
      const cols = shape.length === 1 ? shape[0] : shape[1];
      this.spans.push({ name, begin: at, rows, rowBytes: cols * 4 });
      at += rows * cols * 4;
    }
    this.size = at;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new WeightsFormatError(`${this.name}: cannot read bytes ${offset}..${offset + length}; the file has ${this.size} bytes.`);
    }
    const out = new Uint8Array(length);
    const end = offset + length;
    if (offset < this.lead.byteLength) out.set(this.lead.subarray(offset, Math.min(end, this.lead.byteLength)));
    // Whole rows of every tensor the range touches; loaders read whole rows, so nothing is wasted.
    for (const s of this.spans) {
      const sEnd = s.begin + s.rows * s.rowBytes;
      if (sEnd <= offset || s.begin >= end) continue;
      const from = Math.max(offset, s.begin), to = Math.min(end, sEnd);
      const r0 = Math.floor((from - s.begin) / s.rowBytes), r1 = Math.ceil((to - s.begin) / s.rowBytes);
      const rows = await this.ckpt.readRows(s.name, r0, r1 - r0, signal);
      const bytes = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength);
      const base = s.begin + r0 * s.rowBytes;
      out.set(bytes.subarray(from - base, to - base), from - offset);
    }
    return out;
  }
}

export interface SyntheticSourceOptions {
  seed?: number;
  /** A folder with tokenizer.json and tokenizer_config.json (e.g. ../shared's Llama 3.1 tokenizer); none: no tokenizer. */
  tokenizerDir?: string;
}

/**
 * A model folder of seeded random weights in `config`'s shape, generated as it is read.
 * @example
 *   const model = await LlamaModel.load(syntheticSource(finemedLayerConfig(32, 128256)), { backend: 'webgpu', gpu: nodeGpu() });
 */
export function syntheticSource(config: LlamaConfig, opts: SyntheticSourceOptions = {}): ModelSource {
  const file = new SyntheticSafetensors(config, opts.seed ?? 1);
  const configText = JSON.stringify(hfConfig(config), null, 2);
  const description = `synthetic ${config.numLayers}-layer model (vocab ${config.vocabSize})`;
  const tokenizerPath = (path: string) => (opts.tokenizerDir && TOKENIZER_FILES.includes(path) ? join(opts.tokenizerDir, path) : null);
  const readText = async (path: string): Promise<string> => {
    if (path === 'config.json') return configText;
    const p = tokenizerPath(path);
    if (p) {
      try {
        return await readFile(p, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    throw new NotFoundError(`${description}: no ${path}`);
  };
  return {
    description,
    open: async (path) => {
      if (path === file.name) return file;
      const text = new TextEncoder().encode(await readText(path));
      return { name: path, size: text.byteLength, read: async (o, l) => text.slice(o, o + l) };
    },
    readText,
    exists: async (path) => {
      if (path === 'config.json' || path === file.name) return true;
      try {
        await readText(path);
        return true;
      } catch (e) {
        if (e instanceof NotFoundError) return false;
        throw e;
      }
    },
  };
}
