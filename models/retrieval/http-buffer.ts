/**
 * A remote file as hyparquet's AsyncBuffer: each slice is one HTTP Range request, so a parquet
 * reader fetches only the footer and the column chunks it needs (FineMed-DPO's `prompt` and
 * `chosen`, not `rejected` or `text`). A server that ignores Range gets downloaded once, whole.
 */
import type { AsyncBuffer } from 'hyparquet';
import { NetworkError } from '../errors.ts';
import { fetchOk, type FetchLike } from './http.ts';

export interface HttpBufferOptions {
  fetch?: FetchLike;
  signal?: AbortSignal;
  /** Called with the size of every body received. */
  onBytes?: (bytes: number) => void;
}

/**
 * @example
 *   const file = httpBuffer(url, size, { onBytes: (n) => (loaded += n) });
 *   const rows = await parquetReadObjects({ file, columns: ['prompt', 'chosen'] });
 */
export function httpBuffer(url: string, byteLength: number, options: HttpBufferOptions = {}): AsyncBuffer {
  let whole: Promise<ArrayBuffer> | null = null;
  return {
    byteLength,
    async slice(start: number, end = byteLength): Promise<ArrayBuffer> {
      if (whole) return (await whole).slice(start, end);
      if (end <= start) return new ArrayBuffer(0);
      const res = await fetchOk(url, { headers: { Range: `bytes=${start}-${end - 1}` }, signal: options.signal }, options.fetch);
      if (res.status === 206) {
        const body = await readBody(res, end - start, options.onBytes);
        if (body.byteLength !== end - start) {
          throw new NetworkError(`${url}: asked for ${end - start} bytes at ${start}, got ${body.byteLength}; the file changed or the download broke.`);
        }
        return body;
      }
      // 200: the server sent the whole file; keep it for the next slices.
      whole = readBody(res, byteLength, options.onBytes).then((b) => {
        if (b.byteLength !== byteLength) throw new NetworkError(`${url}: expected ${byteLength} bytes, got ${b.byteLength}.`);
        return b;
      });
      return (await whole).slice(start, end);
    },
  };
}

/** The body, read chunk by chunk so a 100 MB column chunk reports progress as it arrives. */
async function readBody(res: Response, expected: number, onBytes?: (n: number) => void): Promise<ArrayBuffer> {
  if (!res.body) {
    const b = await res.arrayBuffer();
    onBytes?.(b.byteLength);
    return b;
  }
  const out = new Uint8Array(expected);
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.byteLength > expected) {
      await reader.cancel();
      throw new NetworkError(`${res.url}: the server sent more than the ${expected} bytes expected.`);
    }
    out.set(value, n);
    n += value.byteLength;
    onBytes?.(value.byteLength);
  }
  return n === expected ? out.buffer : out.buffer.slice(0, n);
}

/**
 * Size of a remote file: Content-Length of a HEAD (after redirects), else the total of a
 * `Content-Range` answer to a one-byte range request.
 * @example const size = await remoteSize(url);
 */
export async function remoteSize(url: string, options: { fetch?: FetchLike; signal?: AbortSignal } = {}): Promise<number> {
  const head = await fetchOk(url, { method: 'HEAD', signal: options.signal }, options.fetch);
  const len = Number(head.headers.get('x-linked-size') ?? head.headers.get('content-length'));
  if (Number.isFinite(len) && len > 0) return len;
  const res = await fetchOk(url, { headers: { Range: 'bytes=0-0' }, signal: options.signal }, options.fetch);
  const total = Number(res.headers.get('content-range')?.split('/')[1]);
  await res.body?.cancel();
  if (!Number.isFinite(total) || total <= 0) throw new NetworkError(`${url}: the server does not tell the file's size.`);
  return total;
}
