/**
 * A ModelSource wrapper that counts every call and every byte read, to prove a cached load reads
 * nothing from the source and a resumed load reads only the missing tensors.
 */
import type { ByteSource, ModelSource, SourceOrigin, SourceRevision } from '../../../models/io/source.ts';

export interface ReadLog {
  file: string;
  offset: number;
  length: number;
}

export class CountingSource implements ModelSource {
  readonly description: string;
  readonly origin?: SourceOrigin;
  calls = 0;
  reads: ReadLog[] = [];

  constructor(private readonly inner: ModelSource) {
    this.description = inner.description;
    this.origin = inner.origin;
  }

  /** Bytes read at or after `from` in each file (e.g. the data section, past the header). */
  bytesRead(from: (file: string) => number = () => 0): number {
    return this.reads.filter((r) => r.offset >= from(r.file)).reduce((n, r) => n + r.length, 0);
  }

  reset(): void {
    this.calls = 0;
    this.reads = [];
  }

  async open(path: string, signal?: AbortSignal): Promise<ByteSource> {
    this.calls++;
    const f = await this.inner.open(path, signal);
    return {
      name: f.name,
      size: f.size,
      read: (offset, length, s) => {
        this.reads.push({ file: f.name, offset, length });
        return f.read(offset, length, s);
      },
    };
  }

  readText(path: string, signal?: AbortSignal): Promise<string> {
    this.calls++;
    return this.inner.readText(path, signal);
  }

  exists(path: string, signal?: AbortSignal): Promise<boolean> {
    this.calls++;
    return this.inner.exists(path, signal);
  }

  revision(signal?: AbortSignal): Promise<SourceRevision> {
    this.calls++;
    return this.inner.revision ? this.inner.revision(signal) : Promise.resolve({ etags: {} });
  }
}
