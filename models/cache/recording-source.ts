/**
 * A ModelSource that passes everything through and keeps a copy of the small files the engine
 * reads as text (config.json, tokenizer files), so a first load can store them in the cache
 * without asking the source for them twice.
 */
import type { ByteSource, ModelSource, SourceOrigin, SourceRevision } from '../io/source.ts';

/** The small files a cache entry keeps, when the source has them. */
export const CACHED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'generation_config.json'] as const;

/**
 * @example
 *   const rec = new RecordingSource(source);
 *   const ckpt = await openCheckpoint(rec); // rec.files() now holds config.json
 */
export class RecordingSource implements ModelSource {
  readonly description: string;
  readonly origin?: SourceOrigin;
  private readonly seen = new Map<string, string>();
  private readonly absent = new Set<string>();

  constructor(private readonly inner: ModelSource) {
    this.description = inner.description;
    this.origin = inner.origin;
  }

  open(path: string, signal?: AbortSignal): Promise<ByteSource> {
    return this.inner.open(path, signal);
  }

  async readText(path: string, signal?: AbortSignal): Promise<string> {
    const text = await this.inner.readText(path, signal);
    if ((CACHED_FILES as readonly string[]).includes(path)) this.seen.set(path, text);
    return text;
  }

  async exists(path: string, signal?: AbortSignal): Promise<boolean> {
    if (this.seen.has(path)) return true;
    if (this.absent.has(path)) return false;
    const yes = await this.inner.exists(path, signal);
    if (!yes) this.absent.add(path);
    return yes;
  }

  revision(signal?: AbortSignal): Promise<SourceRevision> {
    return this.inner.revision ? this.inner.revision(signal) : Promise.resolve({ etags: {} });
  }

  /** UTF-8 bytes of a file read so far, or null. */
  bytesOf(name: string): number | null {
    const t = this.seen.get(name);
    return t === undefined ? null : new TextEncoder().encode(t).byteLength;
  }

  /** Reads the listed files not seen yet (those that exist), then returns all as bytes. */
  async collect(signal?: AbortSignal): Promise<{ name: string; bytes: Uint8Array }[]> {
    for (const name of CACHED_FILES) {
      if (!this.seen.has(name) && (await this.exists(name, signal))) await this.readText(name, signal);
    }
    const enc = new TextEncoder();
    return [...this.seen].map(([name, text]) => ({ name, bytes: enc.encode(text) }));
  }
}
