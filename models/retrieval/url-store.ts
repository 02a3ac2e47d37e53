/**
 * A read-only index served over HTTP (e.g. one the CLI built, hosted as three static files).
 */
import { NotFoundError } from '../errors.ts';
import { fetchOk, type FetchLike } from './http.ts';
import type { IndexStore } from './store.ts';
import { IndexFormatError } from './errors.ts';

/**
 * @example const data = await loadIndex(new UrlStore('/indexes/traces/'), { embedder: e.info });
 */
export class UrlStore implements IndexStore {
  readonly description: string;

  constructor(private readonly base: string, private readonly fetchImpl: FetchLike = fetch) {
    this.base = base.endsWith('/') ? base : `${base}/`;
    this.description = this.base;
  }

  async read(name: string): Promise<Uint8Array | null> {
    try {
      const res = await fetchOk(new URL(name, new URL(this.base, globalThis.location?.href)).toString(), {}, this.fetchImpl);
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  async write(): Promise<void> {
    throw new IndexFormatError(`${this.description} is read-only.`);
  }

  async clear(): Promise<void> {
    throw new IndexFormatError(`${this.description} is read-only.`);
  }
}
