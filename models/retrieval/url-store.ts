/**
 * A read-only index served over HTTP (e.g. one the CLI built, hosted as its three static files),
 * read through the engine's UrlModelSource.
 */
import { NotFoundError } from '../errors.ts';
import { UrlModelSource } from '../io/url-source.ts';
import { IndexFormatError } from './errors.ts';
import type { IndexStore } from './store.ts';

/**
 * @example const data = await loadIndex(new UrlStore('https://example.org/indexes/traces/'), { embedder: e.info });
 */
export class UrlStore implements IndexStore {
  readonly description: string;
  private readonly source: UrlModelSource;

  /** @param base absolute URL of the folder holding manifest.json */
  constructor(base: string, options: { fetch?: typeof fetch } = {}) {
    this.source = new UrlModelSource(base, options);
    this.description = this.source.description;
  }

  async read(name: string): Promise<Uint8Array | null> {
    try {
      const file = await this.source.open(name);
      return await file.read(0, file.size);
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  async write(): Promise<void> {
    throw new IndexFormatError(`${this.description} is read-only.`);
  }

  async remove(): Promise<void> {
    throw new IndexFormatError(`${this.description} is read-only.`);
  }

  async clear(): Promise<void> {
    throw new IndexFormatError(`${this.description} is read-only.`);
  }
}
