/**
 * A remote parquet file as hyparquet's AsyncBuffer, on the engine's UrlModelSource (HTTP Range
 * reads checked byte for byte, idle timeouts, typed errors). Each slice is one Range request, so
 * the reader fetches only the footer and the column chunks it needs (FineMed-DPO's `prompt` and
 * `chosen`, not `rejected` or `text`). Body bytes are counted as they stream, for progress.
 */
import type { AsyncBuffer } from 'hyparquet';
import { UrlModelSource } from '../io/url-source.ts';

export interface ParquetUrlOptions {
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Called with the size of every body chunk received. */
  onBytes?: (bytes: number) => void;
}

/** fetch whose response bodies report their chunks to `onBytes` as they arrive. */
function countingFetch(base: typeof fetch, onBytes: (n: number) => void): typeof fetch {
  return async (input, init) => {
    const res = await base(input, init);
    if (!res.body) return res;
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, out) {
          onBytes(chunk.byteLength);
          out.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/**
 * Opens `url` (probing its size) as an AsyncBuffer.
 * @example
 *   const file = await openParquetUrl(url, { onBytes: (n) => (loaded += n) });
 *   const rows = await parquetReadObjects({ file, columns: ['prompt', 'chosen'] });
 */
export async function openParquetUrl(url: string, options: ParquetUrlOptions = {}): Promise<AsyncBuffer> {
  const cut = url.lastIndexOf('/') + 1;
  const base = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const source = new UrlModelSource(url.slice(0, cut), { fetch: options.onBytes ? countingFetch(base, options.onBytes) : base });
  const file = await source.open(decodeURIComponent(url.slice(cut)), options.signal);
  return {
    byteLength: file.size,
    async slice(start: number, end = file.size): Promise<ArrayBuffer> {
      const b = await file.read(start, end - start, options.signal);
      return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? (b.buffer as ArrayBuffer) : (b.slice().buffer as ArrayBuffer);
    },
  };
}
