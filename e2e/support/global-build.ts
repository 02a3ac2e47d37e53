/**
 * vitest globalSetup of the e2e project: one production build of the app (with its service
 * worker) per test run, shared by every test file through `inject(BUILT_APP_DIR)` and served by
 * startBuiltApp() (./built-app.ts). With `E2E_BUILD_DIR=<dist>` set, that folder is used as it is
 * (no build; e.g. `npm run build -- --outDir <dist>` once, then many runs).
 *
 * A failed build does not fail the run: the dev-server e2e tests need no build, so the error is
 * handed on and thrown by startBuiltApp() in the files that do.
 *
 * Kept fast for CI: no sourcemaps, no gzip size report (the 27 MB ORT wasm dominates it).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'vite';
import type { TestProject } from 'vitest/node';
import { ROOT } from './server.ts';

/** The `inject()` key holding the build folder's absolute path ('' when the build failed). */
export const BUILT_APP_DIR = 'builtAppDir';
/** The `inject()` key holding why the build failed ('' when it did not). */
export const BUILT_APP_ERROR = 'builtAppError';

declare module 'vitest' {
  export interface ProvidedContext {
    [BUILT_APP_DIR]: string;
    [BUILT_APP_ERROR]: string;
  }
}

/**
 * Builds the app (index.html, workers, wasm, sw.js) into `outDir` with the project's config.
 *
 * @example
 *   await buildApp('/tmp/finemed-dist'); // then startBuiltApp({ buildDir: '/tmp/finemed-dist' })
 */
export async function buildApp(outDir: string): Promise<void> {
  await build({
    configFile: resolve(ROOT, 'vite.config.ts'),
    root: ROOT,
    logLevel: 'warn',
    // The workers' >500 kB chunks are expected; their warning is noise in test output.
    build: { outDir, emptyOutDir: true, sourcemap: false, reportCompressedSize: false, chunkSizeWarningLimit: 4096 },
  });
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.E2E_BUILD_DIR;
  if (given) {
    const dir = resolve(given);
    if (!existsSync(join(dir, 'index.html')) || !existsSync(join(dir, 'sw.js'))) {
      throw new Error(`E2E_BUILD_DIR=${given} holds no app build (index.html and sw.js expected): run \`npx vite build --outDir ${given}\` or unset it.`);
    }
    project.provide(BUILT_APP_DIR, dir);
    project.provide(BUILT_APP_ERROR, '');
    return undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'finemed-e2e-build-'));
  const started = performance.now();
  try {
    await buildApp(dir);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    project.provide(BUILT_APP_DIR, '');
    project.provide(BUILT_APP_ERROR, `vite build failed: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  if (process.env.E2E_VERBOSE) console.log(`[e2e] built the app into ${dir} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  project.provide(BUILT_APP_DIR, dir);
  project.provide(BUILT_APP_ERROR, '');
  return () => rm(dir, { recursive: true, force: true });
}
