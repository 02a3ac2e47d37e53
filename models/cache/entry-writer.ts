/**
 * Writing an entry of the weight cache while a model loads from its source: each tensor, as the
 * engine produces it, goes to its own file (hashed as it streams); once the file is flushed the
 * manifest is rewritten listing it, so an interrupted load resumes from the last finished tensor.
 * The small source files and `complete: true` come last.
 */
import type { LmHeadFormat, WeightFormat } from '../api.ts';
import { InvalidInputError, StorageQuotaError } from '../errors.ts';
import { Checksum64, checksum64 } from './checksum.ts';
import { CACHE_FORMAT, CACHE_FORMAT_VERSION, encodeManifest, filePath, MANIFEST_FILE, QUANT_FORMAT_VERSION, tensorPath, type Manifest, type SourceInfo, type TensorKind } from './format.ts';
import type { PlannedTensor } from './plan.ts';
import { formatBytes, type CacheStore } from './store.ts';
import type { TensorSink, TensorWriter } from './tensor-source.ts';

export interface NewEntry {
  key: string;
  source: SourceInfo;
  weights: WeightFormat;
  /** The lm_head's format (resolveLmHead: default q8 with 4-bit weights). */
  lmHead: LmHeadFormat;
  producer: Manifest['producer'];
  config: unknown;
  plan: PlannedTensor[];
}

/**
 * @example
 *   const w = await EntryWriter.start(store, { key, source, weights: 'q4', lmHead: 'q8', producer: 'webgpu', config, plan }, null);
 *   // ... the engine loads with `w` as its sink ...
 *   await w.finish([{ name: 'config.json', bytes }]);
 */
export class EntryWriter implements TensorSink {
  private readonly plan: Map<string, PlannedTensor>;

  private constructor(private readonly store: CacheStore, readonly manifest: Manifest, plan: PlannedTensor[]) {
    this.plan = new Map(plan.map((t) => [t.name, t]));
  }

  /**
   * Starts a new entry (deleting whatever was under the key), or continues `resume`, a partial
   * entry of the same source. Refuses with StorageQuotaError when the store says the rest will not fit.
   */
  static async start(store: CacheStore, e: NewEntry, resume: Manifest | null): Promise<EntryWriter> {
    // Tensors only: the small files are not read yet and are a rounding error next to them.
    const totalBytes = e.plan.reduce((n, t) => n + t.bytes, 0);
    const manifest: Manifest = resume
      ? { ...resume, source: e.source, complete: false }
      : {
        format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION, quantVersion: QUANT_FORMAT_VERSION, key: e.key, source: e.source,
        weights: e.weights, lmHead: e.lmHead, producer: e.producer, config: e.config, files: [], tensors: [], tensorsTotal: e.plan.length,
        complete: false, totalBytes, createdAt: new Date().toISOString(),
      };
    if (!resume) await store.deleteEntry(e.key);
    const needed = totalBytes - manifest.tensors.reduce((n, t) => n + t.bytes, 0);
    const available = await store.available();
    if (available !== null && needed > available) {
      throw new StorageQuotaError(
        `Not enough storage to cache this model: it needs ${formatBytes(needed)} more, ${formatBytes(available)} is available in ${store.description}. ` +
        'Free space (delete cached models) or load without the cache.',
      );
    }
    const w = new EntryWriter(store, manifest, e.plan);
    await w.saveManifest();
    return w;
  }

  get key(): string {
    return this.manifest.key;
  }

  private saveManifest(): Promise<void> {
    return this.store.writeFile(this.key, MANIFEST_FILE, encodeManifest(this.manifest));
  }

  async begin(name: string, kind: TensorKind, shape: number[]): Promise<TensorWriter> {
    const p = this.plan.get(name);
    if (!p || p.kind !== kind || p.shape.join(',') !== shape.join(',')) {
      throw new InvalidInputError(`weight cache: tensor ${name} (${kind} [${shape.join(', ')}]) is not in the entry's plan.`);
    }
    const file = await this.store.openWrite(this.key, tensorPath(name));
    const hash = new Checksum64();
    let bytes = 0;
    return {
      write: async (b) => {
        hash.update(b);
        bytes += b.byteLength;
        await file.write(b);
      },
      commit: async () => {
        if (bytes !== p.bytes) {
          await file.abort();
          throw new InvalidInputError(`weight cache: tensor ${name} came to ${bytes} bytes, ${p.bytes} planned.`);
        }
        await file.close();
        this.manifest.tensors = [...this.manifest.tensors.filter((t) => t.name !== name), { name, shape, kind, bytes, checksum: hash.digest() }];
        await this.saveManifest();
      },
      abort: () => file.abort(),
    };
  }

  /** Stores the small source files, then marks the entry complete (the last write). */
  async finish(files: { name: string; bytes: Uint8Array }[]): Promise<Manifest> {
    const missing = [...this.plan.keys()].filter((n) => !this.manifest.tensors.some((t) => t.name === n));
    if (missing.length) throw new InvalidInputError(`weight cache: ${missing.length} tensors were never written (${missing.slice(0, 3).join(', ')}).`);
    for (const f of files) await this.store.writeFile(this.key, filePath(f.name), f.bytes);
    this.manifest.files = files.map((f) => ({ name: f.name, bytes: f.bytes.byteLength, checksum: checksum64(f.bytes) }));
    this.manifest.totalBytes = this.manifest.tensors.reduce((n, t) => n + t.bytes, 0) + this.manifest.files.reduce((n, f) => n + f.bytes, 0);
    this.manifest.complete = true;
    await this.saveManifest();
    return this.manifest;
  }
}
