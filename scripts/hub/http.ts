/**
 * Headers and small replies shared by every local-hub route: CORS and cross-origin resource policy
 * (the app page is cross-origin isolated, so a hub on another port must opt in), the project's
 * isolation headers, and a per-response count of body bytes for the request log.
 */
import type { ServerResponse } from 'node:http';
import { ISOLATION_HEADERS } from '../vite/isolation-headers.ts';

export const HUB_HEADERS: Record<string, string> = {
  ...ISOLATION_HEADERS,
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers':
    'Content-Range, Content-Length, ETag, X-Repo-Commit, Accept-Ranges, Link, X-Error-Code, X-Error-Message, X-Linked-Size, X-Linked-Etag',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

/** Added to the answer of an OPTIONS preflight. */
export const PREFLIGHT_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Allow-Headers': 'Range, Authorization, Content-Type',
  'Access-Control-Max-Age': '86400',
};

/**
 * A reply other than a file: status plus the hub's `X-Error-Code` (as huggingface.co sends:
 * RepoNotFound, RevisionNotFound, EntryNotFound) so clients can tell the cases apart.
 */
export class HubHttpError extends Error {
  constructor(readonly status: number, message: string, readonly errorCode?: string) {
    super(message);
    this.name = 'HubHttpError';
  }
}

const sent = new WeakMap<ServerResponse, number>();

/** Records `n` more body bytes written to `res`. */
export function countSent(res: ServerResponse, n: number): void {
  sent.set(res, (sent.get(res) ?? 0) + n);
}

/** Body bytes written to `res` so far. */
export function sentBytes(res: ServerResponse): number {
  return sent.get(res) ?? 0;
}

function sendBody(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string>): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...HUB_HEADERS, 'Content-Type': type, 'Content-Length': bytes.byteLength, ...extra });
  if (res.req?.method === 'HEAD') return void res.end();
  countSent(res, bytes.byteLength);
  res.end(bytes);
}

export function sendText(res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  sendBody(res, status, 'text/plain; charset=utf-8', message, extra);
}

export function sendJson(res: ServerResponse, value: unknown, extra: Record<string, string> = {}): void {
  sendBody(res, 200, 'application/json; charset=utf-8', JSON.stringify(value), { 'Cache-Control': 'no-cache', ...extra });
}

export function sendError(res: ServerResponse, e: HubHttpError): void {
  const extra: Record<string, string> = { 'X-Error-Message': e.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 500) };
  if (e.errorCode) extra['X-Error-Code'] = e.errorCode;
  sendText(res, e.status, e.message, extra);
}
