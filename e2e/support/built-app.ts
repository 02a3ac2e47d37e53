/**
 * Serves the production build (from ./global-build.ts) with `vite preview` and the project's
 * vite.config.ts: COOP/COEP on every response, ../shared at /shared/, and the local hub at /hub/.
 *
 * The hub plugin reads `process.env.FINEMED_HUB_DIR` when vite.config.ts is evaluated, which
 * preview() does on each call: so `hubDir` is put into that variable for the duration of the call
 * only and the previous value restored. process.env is process-wide: do not start two built apps
 * with different hubs concurrently in one test file (e2e files run one at a time).
 */
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { preview } from 'vite';
import { BUILT_APP_DIR, BUILT_APP_ERROR } from './global-build.ts';
import { ROOT } from './server.ts';

export interface BuiltAppOptions {
  /** Folder served at /hub/ in Hugging Face layout (sets FINEMED_HUB_DIR while the config loads). */
  hubDir?: string;
  /** The build to serve; default: the e2e run's build (`inject('builtAppDir')`), else $E2E_BUILD_DIR. */
  buildDir?: string;
}

export interface BuiltApp {
  /** Origin with a trailing slash, e.g. "http://127.0.0.1:41234/". */
  url: string;
  /** The build folder being served. */
  buildDir: string;
  close(): Promise<void>;
}

/**
 * Starts `vite preview` over the app build on 127.0.0.1 and a free port.
 *
 * @example
 *   const app = await startBuiltApp({ hubDir: '/tmp/hub' });
 *   const page = await newPage(browser, app.url);
 *   // ...
 *   await app.close();
 */
export async function startBuiltApp(options: BuiltAppOptions = {}): Promise<BuiltApp> {
  const buildDir = options.buildDir ?? (await defaultBuildDir());
  const previousHub = process.env.FINEMED_HUB_DIR;
  if (options.hubDir !== undefined) process.env.FINEMED_HUB_DIR = resolve(options.hubDir);
  try {
    const server = await preview({
      configFile: resolve(ROOT, 'vite.config.ts'),
      root: ROOT,
      logLevel: process.env.E2E_VITE_LOG === '1' ? 'info' : 'warn',
      build: { outDir: buildDir },
      preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
    });
    const address = server.httpServer.address() as AddressInfo | string | null;
    if (!address || typeof address === 'string') {
      await server.close();
      throw new Error('vite preview did not report a TCP address.');
    }
    let closing: Promise<void> | undefined;
    // Idempotent: a test may close early and again in its finally.
    return { url: `http://127.0.0.1:${address.port}/`, buildDir, close: () => (closing ??= server.close()) };
  } finally {
    if (options.hubDir !== undefined) {
      if (previousHub === undefined) delete process.env.FINEMED_HUB_DIR;
      else process.env.FINEMED_HUB_DIR = previousHub;
    }
  }
}

/** Inside vitest: the globalSetup's build; outside (a script): $E2E_BUILD_DIR. */
async function defaultBuildDir(): Promise<string> {
  if (process.env.VITEST) {
    const { inject } = await import('vitest');
    const failure = inject(BUILT_APP_ERROR);
    if (failure) throw new Error(failure);
    const dir = inject(BUILT_APP_DIR);
    if (dir) return dir;
  }
  if (process.env.E2E_BUILD_DIR) return resolve(process.env.E2E_BUILD_DIR);
  throw new Error('No app build to serve: run under the e2e vitest project (its globalSetup builds one), set E2E_BUILD_DIR, or pass buildDir.');
}
