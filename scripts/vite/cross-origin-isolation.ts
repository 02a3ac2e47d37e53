/**
 * Vite plugin: COOP/COEP on every dev and preview response. `server.headers` / `preview.headers`
 * only reach some responses (preview applies them to static files alone), while a module worker
 * under a require-corp page fails to load unless its own script carries them too.
 */
import type { Plugin } from 'vite';
import { ISOLATION_HEADERS } from './isolation-headers.ts';
import type { Middleware } from './serve-shared.ts';

const setIsolationHeaders: Middleware = (_req, res, next) => {
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
  next();
};

export function crossOriginIsolation(): Plugin {
  return {
    name: 'finemed:cross-origin-isolation',
    configureServer(server) {
      server.middlewares.use(setIsolationHeaders);
    },
    configurePreviewServer(server) {
      server.middlewares.use(setIsolationHeaders);
    },
  };
}
