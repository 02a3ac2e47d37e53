/**
 * Vite plugin (dev and preview): the local hub (scripts/hub/local-hub.ts) at `/hub/`, serving
 * FINEMED_HUB_DIR in the Hugging Face layout so the app runs without internet. Without a folder,
 * `/hub/*` answers 404 saying how to set one up. `/local-hub.json` tells the app (its 'auto' hub
 * setting) whether this origin serves a hub, without a request to the hub itself: a load from the
 * weight cache must make no request to /hub/ at all.
 */
import { statSync } from 'node:fs';
import type { Logger, Plugin } from 'vite';
import { hubUnavailableMiddleware, localHubMiddleware, type Middleware } from '../hub/local-hub.ts';
import { ISOLATION_HEADERS } from './isolation-headers.ts';

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export const LOCAL_HUB_INFO_PATH = '/local-hub.json';

/** Answers LOCAL_HUB_INFO_PATH: `{ "hub": "/hub/" }`, or `{ "hub": null }` when no hub is served. */
function infoMiddleware(dir: string | undefined, prefix: string): Middleware {
  const body = JSON.stringify({ hub: dir !== undefined && isDir(dir) ? prefix : null });
  return (req, res, next) => {
    if ((req.url ?? '').split('?')[0] !== LOCAL_HUB_INFO_PATH) return next();
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...ISOLATION_HEADERS });
    res.end(body);
  };
}

/** The middleware for this configuration; logs once what it serves (or why it cannot). */
function hubMiddleware(dir: string | undefined, prefix: string, logger: Logger): Middleware {
  if (dir === undefined) return hubUnavailableMiddleware(prefix, 'no local hub configured (set FINEMED_HUB_DIR)');
  if (!isDir(dir)) {
    logger.warn(`[local hub] FINEMED_HUB_DIR ${dir} does not exist; ${prefix}* answers 404.`);
    return hubUnavailableMiddleware(prefix, `FINEMED_HUB_DIR ${dir} does not exist`);
  }
  logger.info(`[local hub] serving ${dir} at ${prefix}`);
  return localHubMiddleware(dir, { prefix });
}

/**
 * @example plugins: [localHub(process.env.FINEMED_HUB_DIR ? resolve(process.env.FINEMED_HUB_DIR) : undefined)]
 */
export function localHub(dir: string | undefined, prefix = '/hub/'): Plugin {
  return {
    name: 'finemed:local-hub',
    configureServer(server) {
      server.middlewares.use(infoMiddleware(dir, prefix));
      server.middlewares.use(hubMiddleware(dir, prefix, server.config.logger));
    },
    configurePreviewServer(server) {
      server.middlewares.use(infoMiddleware(dir, prefix));
      server.middlewares.use(hubMiddleware(dir, prefix, server.config.logger));
    },
  };
}
