/**
 * ModelSource over HTTP(S): a base URL in Hugging Face `resolve/<revision>/` layout or any static
 * folder. Files are read with `Range` requests, so a 5 GB shard streams in pieces. Every wait
 * (headers, each body chunk) has an idle timeout, so a stalled connection fails instead of hanging.
 *
 * Transient failures (HTTP 5xx / 429 / 408, a connection refused or reset, a body cut mid-way, a
 * stall) are retried with exponential backoff and jitter (0.5 s doubling, 5 tries by default); a
 * range read continues from the bytes already received, so nothing received is fetched twice.
 * Other 4xx answers are not retried; cancelling stops at once, also during a backoff wait.
 */
import { AbortError, EngineError, NetworkError, NotFoundError, WeightsFormatError, throwIfAborted } from '../errors.ts';
import type { ByteSource, ModelSource, SourceOrigin, SourceRevision } from './source.ts';

export interface RetryOptions {
  /** Attempts in all, the first included (default 5; 1 = no retry). */
  tries?: number;
  /** Wait before the first retry; doubles each time (default 500 ms). */
  baseDelayMs?: number;
  /** Longest wait between tries (default 8 s; a server's Retry-After may ask for up to 30 s). */
  maxDelayMs?: number;
  /** Random spread of each wait, as a fraction (default 0.2: +-20%). */
  jitter?: number;
}

/** One retry about to happen. */
export interface RetryEvent {
  url: string;
  /** The attempt that failed (1-based), of `tries`. */
  attempt: number;
  tries: number;
  delayMs: number;
  /** What failed (the error message). */
  reason: string;
  /** For a range read: bytes of the range already received, which the next attempt skips. */
  receivedBytes?: number;
}

export interface UrlSourceOptions {
  /** fetch to use (tests, proxies); default the global fetch. */
  fetch?: typeof fetch;
  /** Extra request headers, e.g. `{ Authorization: 'Bearer hf_...' }` for gated repos. */
  headers?: Record<string, string>;
  /** Fail when no response or body bytes arrive for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** Retry policy for transient failures; false = never retry. */
  retry?: RetryOptions | false;
  /** Called before each retry (e.g. to show "retrying in 2 s"). */
  onRetry?: (e: RetryEvent) => void;
}

/** Errors worth another try; everything else fails at once. */
const transientErrors = new WeakSet<object>();
/** A server's Retry-After, in ms, for the error it caused. */
const retryAfterOf = new WeakMap<object, number>();

function transient<E extends Error>(e: E, retryAfterMs?: number): E {
  transientErrors.add(e);
  if (retryAfterMs !== undefined) retryAfterOf.set(e, retryAfterMs);
  return e;
}

/** True for errors a retry may cure (5xx, 429, resets, stalls). */
export function isTransient(e: unknown): boolean {
  return typeof e === 'object' && e !== null && transientErrors.has(e);
}

/** Retry-After as ms (seconds or an HTTP date), undefined when absent or unreadable. */
function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** Waits `ms`, rejecting with AbortError at once when the signal aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A server that ignores `Range` sends the whole file; accept that only for small files. */
export const MAX_UNRANGED_BYTES = 16 * 1024 * 1024;
/** readText() limit: tokenizer.json of Llama 3 is ~9 MB. */
const MAX_TEXT_BYTES = 64 * 1024 * 1024;

/** Links the caller's signal to one request and aborts the request when it goes idle. */
class Watchdog {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly onAbort = () => this.controller.abort();

  constructor(private readonly signal: AbortSignal | undefined, private readonly ms: number) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.kick();
  }

  /** Restarts the idle timer; call whenever progress was made. */
  kick(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.ms);
  }

  done(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}

function httpError(url: string, res: Response): EngineError {
  if (res.status === 404 || res.status === 410) return new NotFoundError(`Not found (HTTP ${res.status}): ${url}`);
  const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
  const hint =
    res.status === 401 || res.status === 403
      ? ' The repository may be gated or private: accept its license on huggingface.co and pass an access token.'
      : retryable
        ? ' The server failed or is busy; try again later.'
        : '';
  const e = new NetworkError(`HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''} for ${url}.${hint}`);
  return retryable ? transient(e, retryAfterMs(res)) : e;
}

/** Parses a Content-Range value "bytes a-b/total" (a 416 reply has "*" in place of "a-b"). */
function parseContentRange(v: string | null): { start: number; end: number; total: number } | null {
  const m = v && /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(v);
  if (!m) return null;
  return { start: m[1] ? Number(m[1]) : -1, end: m[2] ? Number(m[2]) : -1, total: m[3] === '*' ? -1 : Number(m[3]) };
}

/** Content-Length is the file size only when the body is not content-encoded (gzip etc.). */
function plainLength(res: Response): number | null {
  const enc = res.headers.get('content-encoding');
  const len = res.headers.get('content-length');
  if ((enc && enc.toLowerCase() !== 'identity') || len === null || !/^\d+$/.test(len)) return null;
  return Number(len);
}

/**
 * Reads a range's body into `out` from byte `progress.received` on, advancing it as chunks land,
 * so a retry after a cut connection asks only for the rest. The body must fill `out` exactly.
 */
async function readBodyInto(res: Response, url: string, out: Uint8Array, progress: { received: number }, wd: Watchdog): Promise<void> {
  const start = progress.received;
  if (!res.body) {
    const buf = new Uint8Array(await res.arrayBuffer());
    if (buf.byteLength !== out.byteLength - start) throw new WeightsFormatError(`${url}: got ${buf.byteLength} bytes, expected ${out.byteLength - start}.`);
    out.set(buf, start);
    progress.received = out.byteLength;
    return;
  }
  const reader = res.body.getReader();
  try {
    for (;;) {
      wd.kick();
      const { done, value } = await reader.read();
      if (done) break;
      if (progress.received + value.byteLength > out.byteLength) throw new WeightsFormatError(`${url}: the server sent more than the ${out.byteLength - start} bytes asked for.`);
      out.set(value, progress.received);
      progress.received += value.byteLength;
    }
  } catch (e) {
    void reader.cancel().catch(() => {});
    throw e;
  }
  if (progress.received !== out.byteLength) {
    throw new WeightsFormatError(`${url}: the response ended after ${progress.received - start} of ${out.byteLength - start} bytes; the file on the server is shorter than announced or the download was cut.`);
  }
}

/**
 * Reads a body, stopping at `max` bytes. With `exact`, anything other than exactly `max` bytes is
 * an error; without it, more than `max` is (the body is cancelled, not downloaded).
 */
async function readBody(res: Response, url: string, max: number, exact: boolean, wd: Watchdog): Promise<Uint8Array> {
  if (!res.body) {
    const buf = new Uint8Array(await res.arrayBuffer());
    if (exact ? buf.byteLength !== max : buf.byteLength > max) {
      throw new WeightsFormatError(`${url}: got ${buf.byteLength} bytes, expected ${exact ? '' : 'at most '}${max}.`);
    }
    return buf;
  }
  const reader = res.body.getReader();
  // Exact reads land straight in one buffer: a large range is never held twice.
  const out = exact ? new Uint8Array(max) : null;
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      wd.kick();
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.byteLength > max) {
        throw exact
          ? new WeightsFormatError(`${url}: the server sent more than the ${max} bytes asked for.`)
          : new NetworkError(`${url}: the response is larger than ${max} bytes, too large to read whole (does the server support Range requests?).`);
      }
      if (out) out.set(value, n);
      else chunks.push(value);
      n += value.byteLength;
    }
  } catch (e) {
    void reader.cancel().catch(() => {});
    throw e;
  }
  if (out) {
    if (n !== max) {
      throw new WeightsFormatError(`${url}: the response ended after ${n} of ${max} bytes; the file on the server is shorter than announced or the download was cut.`);
    }
    return out;
  }
  const joined = new Uint8Array(n);
  let pos = 0;
  for (const c of chunks) {
    joined.set(c, pos);
    pos += c.byteLength;
  }
  return joined;
}

/**
 * A model folder behind a URL.
 * @example
 *   const source = new UrlModelSource('https://huggingface.co/hongzhouyu/FineMedLM-o1/resolve/main/', {
 *     headers: { Authorization: `Bearer ${token}` },
 *   });
 *   const ckpt = await openCheckpoint(source);
 */
export class UrlModelSource implements ModelSource {
  readonly description: string;
  readonly origin: SourceOrigin;
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  private readonly headers: Record<string, string>;
  private readonly idleMs: number;
  private readonly retry: Required<RetryOptions>;
  private readonly onRetry?: (e: RetryEvent) => void;
  /** Response headers seen, by URL: `X-Repo-Commit` and `ETag` (for revision()). */
  private readonly commits = new Map<string, string>();
  private readonly etags = new Map<string, string>();

  constructor(baseUrl: string, options: UrlSourceOptions = {}) {
    this.base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
    this.description = this.base;
    this.origin = { kind: 'url', location: this.base };
    // Bound: calling a bare `fetch` reference throws "Illegal invocation" in browsers.
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.headers = { ...options.headers };
    this.idleMs = options.idleTimeoutMs ?? 60_000;
    const r = options.retry === false ? { tries: 1 } : (options.retry ?? {});
    this.retry = { tries: Math.max(1, r.tries ?? 5), baseDelayMs: r.baseDelayMs ?? 500, maxDelayMs: r.maxDelayMs ?? 8000, jitter: r.jitter ?? 0.2 };
    this.onRetry = options.onRetry;
  }

  /**
   * Runs `attempt` until it succeeds, fails for good, or the tries are used up, waiting with
   * exponential backoff and jitter between tries. `received` reports a range read's progress.
   * @internal (used by UrlFile)
   */
  async withRetry<T>(url: string, signal: AbortSignal | undefined, attempt: () => Promise<T>, received?: () => number): Promise<T> {
    const { tries, baseDelayMs, maxDelayMs, jitter } = this.retry;
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (e) {
        if (n >= tries || !isTransient(e) || signal?.aborted) throw e;
        const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1)) * (1 + jitter * (2 * Math.random() - 1));
        const delayMs = Math.round(Math.min(30_000, Math.max(backoff, retryAfterOf.get(e as object) ?? 0)));
        this.onRetry?.({ url, attempt: n, tries, delayMs, reason: (e as Error).message, ...(received ? { receivedBytes: received() } : {}) });
        await sleep(delayMs, signal);
      }
    }
  }

  /** Keeps the version headers of a response (same-origin, or exposed by CORS). */
  private noteHeaders(url: string, res: Response): void {
    const commit = res.headers.get('x-repo-commit');
    const etag = res.headers.get('etag');
    if (commit) this.commits.set(url, commit);
    if (etag) this.etags.set(url, etag);
  }

  /**
   * The files' version: the hub commit from config.json's response (any response's as a fallback)
   * and the ETags seen so far. Makes one HEAD request for config.json if it was never fetched.
   * @example const { commit } = await source.revision(); // "7d1a0c..." from X-Repo-Commit
   */
  async revision(signal?: AbortSignal): Promise<SourceRevision> {
    const cfg = this.urlOf('config.json');
    if (!this.commits.has(cfg) && !this.etags.has(cfg)) {
      await this.withRetry(cfg, signal, () => this.request(cfg, { method: 'HEAD' }, signal, async (res) => {
        if (!res.ok && res.status !== 405) throw httpError(cfg, res);
      }));
    }
    const commit = this.commits.get(cfg) ?? this.commits.values().next().value;
    const etags: Record<string, string> = {};
    for (const [url, tag] of this.etags) etags[url.startsWith(this.base) ? decodeURIComponent(url.slice(this.base.length)) : url] = tag;
    return { ...(commit ? { commit } : {}), etags };
  }

  /** URL of a file inside the folder (path segments are URL-encoded). */
  urlOf(path: string): string {
    return this.base + path.replace(/^\.?\/+/, '').split('/').map(encodeURIComponent).join('/');
  }

  /**
   * @internal (used by UrlFile) One request with the watchdog; `use` reads what it needs from
   * the response before the watchdog is released. Maps rejections to AbortError / NetworkError.
   */
  async request<T>(url: string, init: RequestInit, signal: AbortSignal | undefined, use: (res: Response, wd: Watchdog) => Promise<T>): Promise<T> {
    throwIfAborted(signal);
    const wd = new Watchdog(signal, this.idleMs);
    let responded = false;
    try {
      const res = await this.fetchFn(url, { ...init, headers: { ...this.headers, ...(init.headers as Record<string, string>) }, signal: wd.controller.signal });
      responded = true;
      wd.kick();
      if (res.ok) this.noteHeaders(url, res);
      return await use(res, wd);
    } catch (e) {
      if (signal?.aborted) throw new AbortError();
      if (wd.timedOut) throw transient(new NetworkError(`${url}: no data for ${this.idleMs / 1000} s; the connection stalled.`, { cause: e }));
      if (e instanceof EngineError) throw e;
      const msg = e instanceof Error ? e.message + (e.cause instanceof Error ? ` (${e.cause.message})` : '') : String(e);
      const hint = responded ? 'the connection broke during the download' : 'offline, or blocked by CORS?';
      throw transient(new NetworkError(`Could not fetch ${url}: ${msg} (${hint}).`, { cause: e }));
    } finally {
      wd.done();
    }
  }

  /** Size of a file: HEAD, else a 1-byte range GET. A small unranged reply is kept as the body. */
  private async probe(url: string, signal?: AbortSignal): Promise<{ size: number; body?: Uint8Array }> {
    const head = await this.withRetry(url, signal, () => this.request(url, { method: 'HEAD' }, signal, async (res) => {
      if (res.status === 404 || res.status === 410 || res.status >= 500 || res.status === 429) throw httpError(url, res);
      return res.ok ? plainLength(res) : null; // e.g. 405: HEAD not allowed, try GET
    }));
    if (head !== null) return { size: head };
    return this.withRetry(url, signal, () => this.request(url, { method: 'GET', headers: { Range: 'bytes=0-0' } }, signal, async (res, wd) => {
      if (res.status === 206 || res.status === 416) {
        const total = parseContentRange(res.headers.get('content-range'))?.total ?? -1;
        void res.body?.cancel().catch(() => {});
        if (total < 0) throw new NetworkError(`${url}: the server did not report the file size (no readable Content-Range; a CORS Access-Control-Expose-Headers problem?).`);
        return { size: total };
      }
      if (!res.ok) {
        void res.body?.cancel().catch(() => {});
        throw httpError(url, res);
      }
      // 200: Range ignored. Learn the size from the headers, or read a small body once.
      const len = plainLength(res);
      if (len !== null && len > MAX_UNRANGED_BYTES) {
        void res.body?.cancel().catch(() => {});
        return { size: len };
      }
      const body = await readBody(res, url, len ?? MAX_UNRANGED_BYTES, len !== null, wd);
      return { size: body.byteLength, body };
    }));
  }

  async open(path: string, signal?: AbortSignal): Promise<ByteSource> {
    const url = this.urlOf(path);
    const { size, body } = await this.probe(url, signal);
    return new UrlFile(this, path, url, size, body);
  }

  async readText(path: string, signal?: AbortSignal): Promise<string> {
    const url = this.urlOf(path);
    const bytes = await this.withRetry(url, signal, () => this.request(url, { method: 'GET' }, signal, async (res, wd) => {
      if (!res.ok) {
        void res.body?.cancel().catch(() => {});
        throw httpError(url, res);
      }
      return readBody(res, url, MAX_TEXT_BYTES, false, wd);
    }));
    return new TextDecoder().decode(bytes);
  }

  async exists(path: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.probe(this.urlOf(path), signal);
      return true;
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    }
  }
}

/**
 * One remote file; a read is a Range request whose reply is checked byte for byte, continued
 * from the bytes received when a transient failure cuts it.
 */
class UrlFile implements ByteSource {
  constructor(
    private readonly source: UrlModelSource,
    readonly name: string,
    private readonly url: string,
    readonly size: number,
    private whole?: Uint8Array,
  ) {}

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new WeightsFormatError(`${this.name}: cannot read bytes ${offset}..${offset + length}; the file has ${this.size} bytes.`);
    }
    if (length === 0) return new Uint8Array(0);
    if (this.whole) return this.whole.slice(offset, offset + length);
    const last = offset + length - 1;
    const url = this.url;
    const out = new Uint8Array(length);
    const progress = { received: 0 };
    return this.source.withRetry(url, signal, () => {
      const from = offset + progress.received;
      return this.source.request(url, { method: 'GET', headers: { Range: `bytes=${from}-${last}` } }, signal, async (res, wd) => {
        if (res.status === 206) {
          const cr = parseContentRange(res.headers.get('content-range'));
          // Content-Range may be hidden by CORS; when visible it must match what we asked for.
          if (cr && (cr.start !== from || cr.end !== last)) {
            void res.body?.cancel().catch(() => {});
            throw new WeightsFormatError(`${url}: asked for bytes ${from}-${last}, the server sent ${cr.start}-${cr.end}.`);
          }
          await readBodyInto(res, url, out, progress, wd);
          return out;
        }
        return this.unranged(res, offset, length, wd);
      });
    }, () => progress.received);
  }

  /** A reply other than 206: the whole (small) file when the server ignores Range, else the error. */
  private async unranged(res: Response, offset: number, length: number, wd: Watchdog): Promise<Uint8Array> {
    const url = this.url;
    if (res.status === 200) {
      if (this.size > MAX_UNRANGED_BYTES) {
        void res.body?.cancel().catch(() => {});
        throw new NetworkError(`${url}: the server ignores Range requests, so this ${this.size}-byte file cannot be streamed.`);
      }
      this.whole = await readBody(res, url, this.size, true, wd);
      return this.whole.slice(offset, offset + length);
    }
    void res.body?.cancel().catch(() => {});
    throw httpError(url, res);
  }
}
