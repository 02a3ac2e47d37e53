/**
 * Vite plugin (dev and preview): the local hub (scripts/hub/local-hub.ts) at `/hub/`, serving
 * FINEMED_HUB_DIR in the Hugging Face layout so the app runs without internet. Without a folder,
 * `/hub/*` answers 404 saying how to set one up.
 */
import { statSync } from 'node:fs';
import type { Logger, Plugin } from 'vite';
import { hubUnavailableMiddleware, localHubMiddleware, type Middleware } from '../hub/local-hub.ts';

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
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
      server.middlewares.use(hubMiddleware(dir, prefix, server.config.logger));
    },
    configurePreviewServer(server) {
      server.middlewares.use(hubMiddleware(dir, prefix, server.config.logger));
    },
  };
}
