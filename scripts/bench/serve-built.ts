/**
 * Builds one benchmark page with the app's Vite config into a temporary folder and serves it with
 * `vite preview` (COOP/COEP and /shared/ as in dev), so a long browser benchmark never meets the
 * dev server's dependency optimizer reloading the page mid-run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build, preview } from 'vite';
import { ROOT } from '../../e2e/support/index.ts';

export async function serveBuiltPage(page: string): Promise<{ url: string; close(): Promise<void> }> {
  const outDir = await mkdtemp(join(tmpdir(), 'bench-build-'));
  const configFile = resolve(ROOT, 'vite.config.ts');
  await build({ configFile, root: ROOT, logLevel: 'warn', build: { outDir, emptyOutDir: true, rolldownOptions: { input: resolve(ROOT, page) } } });
  const server = await preview({ configFile, root: ROOT, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
  const url = server.resolvedUrls?.local[0] ?? '';
  return {
    url: url.endsWith('/') ? url : url + '/',
    close: async () => {
      await new Promise<void>((r) => server.httpServer.close(() => r()));
      await rm(outDir, { recursive: true, force: true });
    },
  };
}
