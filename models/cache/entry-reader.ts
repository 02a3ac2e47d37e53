/**
 * Reading an entry of the weight cache: its tensors as EngineTensors that check size and checksum
 * as they stream, its small files as a ModelSource (the tokenizer loads from it, so a cached load
 * reads nothing from the model's source), and a full verification pass.
 */
import type { WeightFormat } from '../api.ts';
import { parseLlamaConfig } from '../config.ts';
import { CacheCorruptError, EngineError, NotFoundError, throwIfAborted, WeightsFormatError } from '../errors.ts';
import type { ByteSource, ModelSource } from '../io/source.ts';
import { Checksum64, checksum64 } from './checksum.ts';
import { corruptEntryError, filePath, tensorPath, type Manifest, type TensorEntry } from './format.ts';
import { engineTensorPlan } from './plan.ts';
import type { CacheStore } from './store.ts';
import type { EngineTensor } from './tensor-source.ts';

/** Bytes read per slice: bounds memory; large enough that per-call overhead does not matter. */
export const READ_SLICE_BYTES = 16 * 2 ** 20;

/**
 * Checks that the entry's tensors are exactly the engine's plan for its config and weight format
 * and lm_head format (names, kinds, shapes, sizes): an entry from another engine layout is never used.
 */
function checkPlan(m: Manifest): void {
  let config;
  try {
    config = parseLlamaConfig(m.config);
  } catch (e) {
    throw corruptEntryError(m.key, `its config does not parse (${(e as Error).message})`);
  }
  const plan = new Map(engineTensorPlan(config, m.weights as WeightFormat, m.lmHead).map((t) => [t.name, t]));
  if (m.tensorsTotal !== plan.size) throw corruptEntryError(m.key, `it plans ${m.tensorsTotal} tensors, the engine needs ${plan.size}`);
  for (const t of m.tensors) {
    const p = plan.get(t.name);
    if (!p || p.kind !== t.kind || p.bytes !== t.bytes || p.shape.join(',') !== t.shape.join(',')) {
      throw corruptEntryError(m.key, `tensor ${t.name} (${t.kind} [${t.shape.join(', ')}], ${t.bytes} bytes) is not what the engine expects`);
    }
  }
}

/**
 * A readable entry (complete, or partial when resuming).
 * @example
 *   const entry = new CacheEntry(store, manifest);
 *   await entry.checkSizes();               // truncated files -> CacheCorruptError
 *   const t = entry.tensor('model.norm.weight'); // EngineTensor | null
 */
export class CacheEntry {
  private readonly byName: Map<string, TensorEntry>;

  constructor(readonly store: CacheStore, readonly manifest: Manifest) {
    checkPlan(manifest);
    this.byName = new Map(manifest.tensors.map((t) => [t.name, t]));
  }

  get key(): string {
    return this.manifest.key;
  }

  private corrupt(what: string): CacheCorruptError {
    return corruptEntryError(this.key, what);
  }

  /** The names of the tensors stored so far. */
  get tensorNames(): string[] {
    return [...this.byName.keys()];
  }

  /** Every listed file has its recorded size (cheap: one stat per file). */
  async checkSizes(): Promise<void> {
    const all = [...this.manifest.tensors.map((t) => ({ what: `tensor ${t.name}`, path: tensorPath(t.name), bytes: t.bytes })),
      ...this.manifest.files.map((f) => ({ what: `file ${f.name}`, path: filePath(f.name), bytes: f.bytes }))];
    for (const f of all) {
      const size = await this.store.size(this.key, f.path);
      if (size === null) throw this.corrupt(`${f.what} is missing from the cache`);
      if (size !== f.bytes) throw this.corrupt(`${f.what} has ${size} bytes on disk, ${f.bytes} expected (truncated or overwritten)`);
    }
  }

  /** Reads every file and checks its checksum (before replacing a working model with this entry). */
  async verify(signal?: AbortSignal): Promise<void> {
    await this.checkSizes();
    for (const name of this.byName.keys()) await this.tensor(name)!.read(() => {}, signal);
    const files = this.files();
    for (const f of this.manifest.files) await files.readBytes(f.name, signal);
  }

  /** The stored tensor, or null if it is not (yet) in the entry. */
  tensor(name: string): EngineTensor | null {
    const t = this.byName.get(name);
    if (!t) return null;
    const { store, key } = this;
    const corrupt = (what: string) => this.corrupt(what);
    return {
      name: t.name, kind: t.kind, shape: t.shape, bytes: t.bytes,
      async read(onSlice, signal) {
        throwIfAborted(signal);
        const r = await store.openRead(key, tensorPath(t.name));
        if (!r) throw corrupt(`tensor ${t.name} is missing from the cache`);
        try {
          if (r.size !== t.bytes) throw corrupt(`tensor ${t.name} has ${r.size} bytes on disk, ${t.bytes} expected (truncated or overwritten)`);
          const h = new Checksum64();
          for (let off = 0; off < t.bytes; off += READ_SLICE_BYTES) {
            throwIfAborted(signal);
            const n = Math.min(READ_SLICE_BYTES, t.bytes - off);
            const b = await r.read(off, n);
            if (b.byteLength !== n) throw corrupt(`tensor ${t.name} ended after ${off + b.byteLength} of ${t.bytes} bytes while reading`);
            h.update(b);
            await onSlice(b, off);
          }
          if (h.digest() !== t.checksum) throw corrupt(`tensor ${t.name} fails its checksum (its bytes changed on disk)`);
        } finally {
          await r.close();
        }
      },
    };
  }

  /** The entry's small files (config.json, tokenizer files) as a ModelSource. */
  files(): CachedFilesSource {
    return new CachedFilesSource(this.store, this.manifest, (what) => this.corrupt(what));
  }
}

/** The cached copies of config.json, tokenizer.json, ...: checksummed, read whole. */
export class CachedFilesSource implements ModelSource {
  readonly description: string;

  constructor(private readonly store: CacheStore, private readonly manifest: Manifest, private readonly corrupt: (what: string) => CacheCorruptError) {
    this.description = `the weight cache (${manifest.source.location})`;
  }

  private entry(path: string) {
    return this.manifest.files.find((f) => f.name === path.replace(/^\.?\/+/, ''));
  }

  async readBytes(path: string, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    const f = this.entry(path);
    if (!f) throw new NotFoundError(`${path} is not in the weight cache entry ${this.manifest.key}.`);
    const bytes = await this.store.readFile(this.manifest.key, filePath(f.name));
    if (!bytes) throw this.corrupt(`file ${f.name} is missing from the cache`);
    if (bytes.byteLength !== f.bytes) throw this.corrupt(`file ${f.name} has ${bytes.byteLength} bytes on disk, ${f.bytes} expected`);
    if (checksum64(bytes) !== f.checksum) throw this.corrupt(`file ${f.name} fails its checksum`);
    return bytes;
  }

  async open(path: string, signal?: AbortSignal): Promise<ByteSource> {
    const bytes = await this.readBytes(path, signal);
    return {
      name: path,
      size: bytes.byteLength,
      read: async (offset, length) => {
        if (offset < 0 || length < 0 || offset + length > bytes.byteLength) throw new WeightsFormatError(`${path}: cannot read bytes ${offset}..${offset + length}; the file has ${bytes.byteLength} bytes.`);
        return bytes.slice(offset, offset + length);
      },
    };
  }

  async readText(path: string, signal?: AbortSignal): Promise<string> {
    return new TextDecoder().decode(await this.readBytes(path, signal));
  }

  async exists(path: string, signal?: AbortSignal): Promise<boolean> {
    throwIfAborted(signal);
    return this.entry(path) !== undefined;
  }
}

/** True for errors that mean "this entry is bad" (delete it), as opposed to cancels or I/O hiccups. */
export function isCorruption(e: unknown): e is CacheCorruptError {
  return e instanceof EngineError && e.code === 'cache-corrupt';
}
