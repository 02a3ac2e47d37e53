/**
 * Vite plugin (dev and preview) serving a folder, by default `../shared`, under `/shared/` with
 * real HTTP Range support, so the app's UrlModelSource reads golden models exactly as it reads a
 * Hugging Face repo: HEAD -> Content-Length, `Range: bytes=a-b` -> 206 + Content-Range,
 * unsatisfiable or malformed ranges -> 416, missing files -> 404. Written on node:fs streams
 * rather than sirv so the range semantics are ours (checked by e2e/shared-server.test.ts).
 */
import { createReadStream, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Plugin } from 'vite';
import { ISOLATION_HEADERS } from './isolation-headers.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'application/x-ndjson; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.wasm': 'application/wasm',
};

type Next = (err?: unknown) => void;
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/** A byte range to send, `null` for "send the whole file", or 'unsatisfiable' for a 416. */
export type ParsedRange = { start: number; end: number } | null | 'unsatisfiable';

/**
 * Parses a `Range` header against a file of `size` bytes (RFC 9110 section 14). Other units and
 * multi-range requests are ignored (a whole-file 200 is a valid answer to those); a malformed or
 * unsatisfiable bytes range is rejected, which RFC 9110 also allows.
 */
export function parseRange(header: string | undefined, size: number): ParsedRange {
  if (header === undefined) return null;
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return null;
  if (m[1]!.includes(',')) return null;
  const r = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(m[1]!);
  if (!r || (r[1] === '' && r[2] === '')) return 'unsatisfiable';
  if (r[1] === '') {
    const suffix = Number(r[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(r[1]);
  const end = r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1);
  if (start >= size || Number(r[2] === '' ? start : r[2]) < start) return 'unsatisfiable';
  return { start, end };
}

function sendStatus(res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(message), ...ISOLATION_HEADERS, ...extra });
  res.end(message);
}

async function statFile(path: string): Promise<Stats | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s : null;
  } catch {
    return null;
  }
}

/** Connect middleware serving `dir` under `prefix` (which must end with '/'). */
export function sharedFilesMiddleware(dir: string, prefix = '/shared/'): Middleware {
  const root = resolve(dir);
  return (req, res, next) => {
    const pathname = (req.url ?? '/').split('?')[0]!;
    if (!pathname.startsWith(prefix)) return next();
    serve(root, pathname.slice(prefix.length), req, res).catch((e: unknown) => {
      // Client aborts (a cancelled fetch) end here too; there is nobody left to answer.
      if (!res.headersSent) sendStatus(res, 500, `Could not read ${pathname}: ${(e as Error).message}`);
      else res.destroy();
    });
  };
}

async function serve(root: string, encodedPath: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendStatus(res, 405, 'Method not allowed.', { Allow: 'GET, HEAD' });
  }
  let rel: string;
  try {
    rel = decodeURIComponent(encodedPath);
  } catch {
    return sendStatus(res, 400, 'Bad path encoding.');
  }
  const file = resolve(root, rel);
  // resolve() collapses "..": anything outside the root is simply not there.
  const inside = file.startsWith(root + sep) && !rel.includes('\0');
  const info = inside ? await statFile(file) : null;
  if (!info) return sendStatus(res, 404, `Not found: /shared/${rel}`);

  const size = info.size;
  const headers: Record<string, string | number> = {
    ...ISOLATION_HEADERS,
    'Accept-Ranges': 'bytes',
    'Content-Type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Last-Modified': info.mtime.toUTCString(),
    ETag: `W/"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`,
    'Cache-Control': 'no-cache',
  };
  const body = writeRangeHead(res, headers, size, parseRange(req.headers.range, size));
  if (!body || req.method === 'HEAD') return void res.end();
  await pipeline(createReadStream(file, { start: body.start, end: body.end }), res);
}

/**
 * Writes the status and headers of a (ranged) file response: 416 for an unsatisfiable range,
 * 206 with Content-Range for a range, 200 for the whole file. Returns the body's byte range to
 * send, or null when there is no body (416, empty file).
 * @example const body = writeRangeHead(res, headers, size, parseRange(req.headers.range, size));
 */
export function writeRangeHead(res: ServerResponse, headers: Record<string, string | number>, size: number, range: ParsedRange): { start: number; end: number } | null {
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
    return null;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  const length = size === 0 ? 0 : end - start + 1;
  res.writeHead(range ? 206 : 200, {
    ...headers,
    'Content-Length': length,
    ...(range ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
  });
  return length === 0 ? null : { start, end };
}

/** The plugin: the middleware in both the dev and the preview server, ahead of Vite's own. */
export function serveShared(dir: string, prefix = '/shared/'): Plugin {
  const middleware = sharedFilesMiddleware(dir, prefix);
  return {
    name: 'finemed:serve-shared',
    configureServer(server) {
      server.middlewares.use(middleware);
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware);
    },
  };
}
