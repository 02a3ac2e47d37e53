/**
 * A folder served in the Hugging Face hub's URL layout, as Connect-style middleware (Vite dev and
 * preview servers, the standalone hub server of the tests and `npm run hub`):
 *
 *   <prefix><org>/<name>/resolve/<rev>/<path>            model file (HTTP Range, X-Repo-Commit)
 *   <prefix>datasets/<org>/<name>/resolve/<rev>/<path>   dataset file
 *   <prefix>api/{models,datasets}/<org>/<name>[/revision/<rev>]       repo info JSON
 *   <prefix>api/{models,datasets}/<org>/<name>/tree/<rev>[/<path>]    listing (?recursive=true)
 *
 * from `<dir>/<org>/<name>/...` and `<dir>/datasets/<org>/<name>/...`. `<rev>` is `main` or the
 * repo's commit (see repo.ts). Every reply carries CORS, CORP and the isolation headers.
 */
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import type { Middleware } from '../vite/serve-shared.ts';
import { repoInfo, repoTree } from './api.ts';
import type { FaultPlan } from './faults.ts';
import { HUB_HEADERS, HubHttpError, PREFLIGHT_HEADERS, sendError, sendJson, sendText, sentBytes } from './http.ts';
import { listRepos, readRepo, type RepoKind, type RepoSnapshot } from './repo.ts';
import { serveResolve } from './resolve.ts';

export type { Middleware };

/** One request, logged when its response has closed (finished or cut). */
export interface HubRequestLog {
  method: string;
  /** Request path as sent (still URL-encoded), query excluded. */
  path: string;
  /** The Range header, if any. */
  range?: string;
  status: number;
  /** Body bytes written. */
  bytes: number;
  /** False when the connection closed before the response ended (client abort or injected drop). */
  complete: boolean;
}

export interface LocalHubOptions {
  /** URL path the hub is mounted at; must start and end with '/'. Default '/hub/'. */
  prefix?: string;
  onRequest?: (e: HubRequestLog) => void;
  /** Test faults (scripts/hub/faults.ts); never set by the Vite plugin. */
  faults?: FaultPlan;
}

const DEFAULT_PREFIX = '/hub/';

function normalizePrefix(p: string): string {
  const withLead = p.startsWith('/') ? p : `/${p}`;
  return withLead.endsWith('/') ? withLead : `${withLead}/`;
}

function underPrefix(pathname: string, prefix: string): boolean {
  return pathname.startsWith(prefix) || pathname === prefix.slice(0, -1);
}

function logOnClose(req: IncomingMessage, res: ServerResponse, path: string, onRequest?: (e: HubRequestLog) => void): void {
  if (!onRequest) return;
  res.once('close', () => {
    const range = req.headers.range;
    onRequest({ method: req.method ?? 'GET', path, ...(range !== undefined ? { range } : {}), status: res.statusCode, bytes: sentBytes(res), complete: res.writableFinished });
  });
}

/**
 * A middleware answering every path under `prefix` with `status` and `message` (no hub configured,
 * or its folder missing).
 * @example server.middlewares.use(hubUnavailableMiddleware('/hub/', 'no local hub configured (set FINEMED_HUB_DIR)'));
 */
export function hubUnavailableMiddleware(prefix: string, message: string, status = 404): Middleware {
  const p = normalizePrefix(prefix);
  return (req, res, next) => {
    const pathname = (req.url ?? '/').split('?')[0]!;
    if (!underPrefix(pathname, p)) return next();
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...HUB_HEADERS, ...PREFLIGHT_HEADERS });
      return void res.end();
    }
    sendText(res, status, `${message} (${pathname})`);
  };
}

/**
 * @example
 *   const log: HubRequestLog[] = [];
 *   server.use(localHubMiddleware('/data/hub', { onRequest: (e) => log.push(e) }));
 *   // GET /hub/test-org/stories260K/resolve/main/config.json
 */
export function localHubMiddleware(dir: string, options: LocalHubOptions = {}): Middleware {
  const root = resolve(dir);
  const prefix = normalizePrefix(options.prefix ?? DEFAULT_PREFIX);
  return (req, res, next) => {
    const [pathname, query = ''] = (req.url ?? '/').split('?') as [string, string?];
    if (!underPrefix(pathname, prefix)) return next();
    logOnClose(req, res, pathname, options.onRequest);
    handle(root, prefix, pathname, new URLSearchParams(query), req, res, options.faults).catch((e: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (e instanceof HubHttpError) return sendError(res, e);
      // A bad .commit file (ConfigError) or an unreadable folder: say what, as a 500.
      const msg = e instanceof Error ? e.message : String(e);
      sendError(res, new HubHttpError(500, `Local hub could not answer ${pathname}: ${msg}`));
    });
  };
}

async function handle(root: string, prefix: string, pathname: string, query: URLSearchParams, req: IncomingMessage, res: ServerResponse, faults?: FaultPlan): Promise<void> {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...HUB_HEADERS, ...PREFLIGHT_HEADERS });
    return void res.end();
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendText(res, 405, `Method ${req.method} not allowed; the local hub is read-only.`, { Allow: 'GET, HEAD, OPTIONS' });
  }
  let segments: string[];
  try {
    segments = pathname.slice(prefix.length).split('/').map(decodeURIComponent);
  } catch {
    throw new HubHttpError(400, `Bad URL encoding in ${pathname}.`);
  }
  const decodedPath = prefix + segments.join('/');
  const injected = faults?.takeStatus(decodedPath);
  if (injected) return sendText(res, injected, `Injected fault: HTTP ${injected} for ${decodedPath}.`);
  if (!(await stat(root).catch(() => null))?.isDirectory()) throw new HubHttpError(404, `The local hub folder ${root} does not exist.`);

  const notFound = (): HubHttpError =>
    new HubHttpError(404, `Not found: ${pathname}. The local hub serves ${prefix}<org>/<name>/resolve/<revision>/<path>, ${prefix}datasets/<org>/<name>/resolve/..., and ${prefix}api/{models,datasets}/<org>/<name>[/tree/<revision>/<path>].`);
  const repo = async (kind: RepoKind, org?: string, name?: string): Promise<RepoSnapshot> => {
    if (org === undefined || name === undefined) throw notFound();
    const snap = await readRepo(root, kind, org, name);
    if (!snap) throw new HubHttpError(404, `Repository not found: ${kind === 'dataset' ? 'datasets/' : ''}${org}/${name} (no such folder in the local hub).`, 'RepoNotFound');
    return snap;
  };

  const [first, ...rest] = segments;
  // The hub's root says what it is, so the app's 'auto' hub setting can find a local hub.
  if (segments.length === 1 && first === '') return sendJson(res, { hub: 'local', repos: await listRepos(root) });
  if (first === 'api') {
    const [kindName, org, name, action, rev, ...path] = rest;
    const kind: RepoKind | null = kindName === 'models' ? 'model' : kindName === 'datasets' ? 'dataset' : null;
    if (!kind) throw notFound();
    if (action === undefined) return sendJson(res, await repoInfo(await repo(kind, org, name), 'main'));
    if (action === 'revision' && rev !== undefined && path.length === 0) return sendJson(res, await repoInfo(await repo(kind, org, name), rev));
    if (action === 'tree' && rev !== undefined) {
      while (path.length && path[path.length - 1] === '') path.pop();
      const recursive = ['true', '1'].includes(query.get('recursive') ?? '');
      return sendJson(res, repoTree(await repo(kind, org, name), rev, path, recursive));
    }
    throw notFound();
  }
  const [kind, parts]: [RepoKind, string[]] = first === 'datasets' ? ['dataset', rest] : ['model', segments];
  const [org, name, action, rev, ...path] = parts;
  if (action !== 'resolve' || rev === undefined || path.length === 0) throw notFound();
  const snap = await repo(kind, org, name);
  return serveResolve(req, res, snap, rev, path, (length) => faults?.takeBody(decodedPath, length) ?? {});
}
