/**
 * The local hub as a standalone node:http server on 127.0.0.1, for tests (Node CLI, browser tests
 * pointing the app's hub base at it) and `npm run hub`. Logs every request and can inject faults.
 *
 * URL shape: `url` is the hub base, `http://127.0.0.1:PORT/hub` (no trailing slash, like
 * `https://huggingface.co`): model files at `${url}/<org>/<name>/resolve/main/<file>`, datasets at
 * `${url}/datasets/<org>/<name>/resolve/main/<file>`, the API at `${url}/api/...`.
 */
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { NotFoundError } from '../../models/errors.ts';
import { FaultPlan, type HubFaults } from './faults.ts';
import { sendText, sentBytes } from './http.ts';
import { localHubMiddleware, type HubRequestLog } from './local-hub.ts';

export interface HubServerOptions {
  faults?: HubFaults;
  /** Default 0: any free port. */
  port?: number;
  /** Called for each request as it closes (the CLI prints them). */
  onRequest?: (e: HubRequestLog) => void;
}

export interface HubServer {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** Hub base: `${origin}/hub`. */
  url: string;
  port: number;
  /** Every request so far, in the order they closed; clear with `requests.length = 0`. */
  readonly requests: HubRequestLog[];
  /** The live fault rules; `faults.pending` is 0 once all fired. */
  readonly faults: FaultPlan;
  /**
   * Resolves once every request received so far has closed and been logged. A client can finish
   * reading a body before the server sees the response close, so read `requests` after this.
   */
  settled(): Promise<void>;
  /** Replaces the fault rules (and their counts). */
  setFaults(faults: HubFaults): void;
  /** `${url}/<repo>/resolve/<revision>/` (for UrlModelSource). */
  modelBase(repo: string, revision?: string): string;
  /** Stops listening and cuts open keep-alive connections. */
  close(): Promise<void>;
}

const PREFIX = '/hub/';

/**
 * @example
 *   const hub = await startHubServer(dir, { faults: { dropAfterBytes: { path: 'model.safetensors', bytes: 4096 } } });
 *   const source = new UrlModelSource(hub.modelBase('test-org/stories260K'));
 *   // ... hub.requests.filter((r) => r.path.endsWith('model.safetensors'))
 *   await hub.close();
 */
export async function startHubServer(dir: string, options: HubServerOptions = {}): Promise<HubServer> {
  const root = resolve(dir);
  if (!(await stat(root).catch(() => null))?.isDirectory()) throw new NotFoundError(`Hub folder ${root} does not exist.`);
  const requests: HubRequestLog[] = [];
  const faults = new FaultPlan(options.faults);
  // Counted apart from `requests`, which callers clear.
  let received = 0;
  let logged = 0;
  const waiters: (() => void)[] = [];
  const onRequest = (e: HubRequestLog): void => {
    requests.push(e);
    logged++;
    options.onRequest?.(e);
    if (logged >= received) for (const w of waiters.splice(0)) w();
  };
  const middleware = localHubMiddleware(root, { prefix: PREFIX, onRequest, faults });
  const server = createServer((req, res) => {
    received++;
    middleware(req, res, () => {
      const path = (req.url ?? '/').split('?')[0]!;
      res.once('close', () => onRequest({ method: req.method ?? 'GET', path, status: res.statusCode, bytes: sentBytes(res), complete: res.writableFinished }));
      sendText(res, 404, `Not found: ${path}. This server serves only the local hub under ${PREFIX}.`);
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}/hub`;
  return {
    origin,
    url,
    port,
    requests,
    faults,
    settled: () => (logged >= received ? Promise.resolve() : new Promise<void>((ok) => void waiters.push(ok))),
    setFaults: (f) => faults.set(f),
    modelBase: (repo, revision = 'main') => `${url}/${repo}/resolve/${encodeURIComponent(revision)}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
