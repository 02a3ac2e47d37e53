/**
 * `<repo>/resolve/<revision>/<path>`: one file with HTTP Range (parseRange from serve-shared),
 * the hub's `X-Repo-Commit`, a size+mtime ETag (If-None-Match -> 304, If-Range honoured), and
 * the test faults applied to the body as it streams.
 */
import { createReadStream, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { parseRange, writeRangeHead } from '../vite/serve-shared.ts';
import type { BodyFault } from './faults.ts';
import { countSent, HUB_HEADERS, HubHttpError } from './http.ts';
import { isSafeSegment, type RepoSnapshot } from './repo.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'application/x-ndjson; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** Extensions huggingface.co's default .gitattributes stores in LFS (plus anything over 10 MB). */
const LFS_EXTENSIONS = new Set([
  '.7z', '.arrow', '.bin', '.bz2', '.ckpt', '.ftz', '.gguf', '.gz', '.h5', '.joblib', '.model', '.msgpack', '.npy', '.npz',
  '.onnx', '.ot', '.parquet', '.pb', '.pickle', '.pkl', '.pt', '.pth', '.rar', '.safetensors', '.tar', '.tflite', '.tgz',
  '.wasm', '.xz', '.zip', '.zst',
]);

/** Whether the real hub would keep this file in LFS (it then lists `lfs: { size }`). */
export function isLfs(path: string, size: number): boolean {
  return size > 10 * 1024 * 1024 || LFS_EXTENSIONS.has(extname(path).toLowerCase());
}

/** The quoted, strong-looking ETag of a file version (size and mtime; not a content hash). */
export function fileEtag(st: { size: number; mtimeMs: number }): string {
  return `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
}

/** Checks the revision: only `main` and the repo's commit exist here. */
export function checkRevision(repo: RepoSnapshot, revision: string): void {
  if (revision === 'main' || revision.toLowerCase() === repo.sha) return;
  throw new HubHttpError(404, `Revision not found: "${revision}" in ${repo.id}. This local hub has only "main" (= commit ${repo.sha}).`, 'RevisionNotFound');
}

/** Validated path parts inside a repo ('/'-joined, decoded); throws 404 on anything that could escape. */
export function repoPath(repo: RepoSnapshot, segments: string[]): { rel: string; abs: string } {
  const parts = segments.join('/').split('/');
  const rel = parts.join('/');
  const bad = parts.some((p) => !isSafeSegment(p)) || rel === '.commit';
  const abs = resolve(repo.dir, ...parts);
  if (bad || !abs.startsWith(repo.dir + sep)) throw new HubHttpError(404, `Entry not found: "${rel}" in ${repo.id}.`, 'EntryNotFound');
  return { rel, abs };
}

function write(res: ServerResponse, chunk: Buffer, flush: boolean): Promise<void> {
  return new Promise((ok, fail) => {
    if (res.destroyed) return fail(new Error('connection closed'));
    const onClose = (): void => fail(new Error('connection closed'));
    res.once('close', onClose);
    const done = (): void => {
      res.off('close', onClose);
      ok();
    };
    countSent(res, chunk.byteLength);
    // `flush` waits until the bytes reached the socket (before a deliberate cut); otherwise
    // only for back-pressure.
    if (flush) res.write(chunk, done);
    else if (res.write(chunk)) done();
    else res.once('drain', done);
  });
}

function pause(res: ServerResponse, ms: number): Promise<void> {
  return new Promise((ok) => {
    const t = setTimeout(done, ms);
    res.once('close', done);
    function done(): void {
      clearTimeout(t);
      res.off('close', done);
      ok();
    }
  });
}

/** Streams bytes [start, end] of `abs`, applying `fault`. */
async function sendBody(res: ServerResponse, abs: string, start: number, end: number, fault: BodyFault): Promise<void> {
  const stream = createReadStream(abs, { start, end, highWaterMark: 64 * 1024 });
  let sent = 0;
  try {
    for await (const data of stream as AsyncIterable<Buffer>) {
      let chunk = data;
      if (fault.stallAfter !== undefined && sent + chunk.byteLength > fault.stallAfter) {
        const head = chunk.subarray(0, fault.stallAfter - sent);
        if (head.byteLength) await write(res, head, true);
        sent += head.byteLength;
        chunk = chunk.subarray(head.byteLength);
        fault.stallAfter = undefined;
        await pause(res, fault.stallMs ?? 0);
        if (res.destroyed) return;
      }
      if (fault.dropAfter !== undefined && sent + chunk.byteLength >= fault.dropAfter) {
        const head = chunk.subarray(0, fault.dropAfter - sent);
        if (head.byteLength) await write(res, head, true);
        res.socket?.destroy();
        return;
      }
      await write(res, chunk, false);
      sent += chunk.byteLength;
    }
  } finally {
    stream.destroy();
  }
  res.end();
}

async function statFile(abs: string): Promise<Stats | null> {
  const st = await stat(abs).catch(() => null);
  return st?.isFile() ? st : null;
}

/**
 * Answers one resolve request for `segments` (the decoded path parts after the revision).
 * @example await serveResolve(req, res, snapshot, 'main', ['onnx', 'model.onnx'], (len) => plan.takeBody(path, len));
 */
export async function serveResolve(
  req: IncomingMessage,
  res: ServerResponse,
  repo: RepoSnapshot,
  revision: string,
  segments: string[],
  bodyFault: (length: number) => BodyFault,
): Promise<void> {
  checkRevision(repo, revision);
  const { rel, abs } = repoPath(repo, segments);
  const st = await statFile(abs);
  if (!st) throw new HubHttpError(404, `Entry not found: "${rel}" in ${repo.id} at ${revision}.`, 'EntryNotFound');
  const size = st.size;
  const etag = fileEtag(st);
  const headers: Record<string, string | number> = {
    ...HUB_HEADERS,
    'Accept-Ranges': 'bytes',
    'Content-Type': CONTENT_TYPES[extname(abs).toLowerCase()] ?? 'application/octet-stream',
    'Last-Modified': st.mtime.toUTCString(),
    ETag: etag,
    'X-Repo-Commit': repo.sha,
    'Cache-Control': 'no-cache',
    ...(isLfs(rel, size) ? { 'X-Linked-Size': size, 'X-Linked-Etag': etag } : {}),
  };
  const inm = req.headers['if-none-match'];
  if (inm && (inm.trim() === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag))) {
    res.writeHead(304, headers);
    return void res.end();
  }
  // If-Range with another version: the client's partial copy is stale, so send it all.
  const ifRange = req.headers['if-range'];
  const range = ifRange && ifRange !== etag ? null : parseRange(req.headers.range, size);
  const body = writeRangeHead(res, headers, size, range);
  if (!body || req.method === 'HEAD') return void res.end();
  await sendBody(res, abs, body.start, body.end, bodyFault(body.end - body.start + 1));
}
