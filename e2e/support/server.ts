/**
 * Starts the project's Vite dev server (vite.config.ts: React, COOP/COEP, /shared/ with Range
 * support, the e2e harness page) on a random free port of 127.0.0.1, with its dependency
 * optimizer settled before any page opens (see settleDependencies).
 */
import { readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type ViteDevServer } from 'vite';

/** Project root (this file is e2e/support/server.ts). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface TestServer {
  /** Origin with a trailing slash, e.g. "http://127.0.0.1:41234/". */
  url: string;
  close(): Promise<void>;
}

export async function startServer(): Promise<TestServer> {
  const server = await createServer({
    configFile: resolve(ROOT, 'vite.config.ts'),
    root: ROOT,
    logLevel: process.env.E2E_VITE_LOG === '1' ? 'info' : 'warn',
    clearScreen: false,
    server: {
      host: '127.0.0.1',
      port: 0,
      strictPort: false,
      // Tests never edit files, and other edits must not reload a page mid-test. (`watch: null`
      // is dropped when Vite merges configs; ignoring every path keeps the watcher idle.)
      // The HMR socket stays: Vite's client always dials it.
      watch: { ignored: ['**/*'] },
    },
  });
  try {
    await server.listen();
    const address = server.httpServer?.address() as AddressInfo | null;
    if (!address || typeof address === 'string') throw new Error('The Vite dev server did not report a TCP address.');
    await settleDependencies(server);
    return { url: `http://127.0.0.1:${address.port}/`, close: () => server.close() };
  } catch (e) {
    await server.close();
    throw e;
  }
}

/** Every module entry a test page can reach: both pages' scripts and all workers. */
function entryUrls(): string[] {
  const workers = (dir: string) => readdirSync(resolve(ROOT, dir)).filter((f) => f.endsWith('.worker.ts')).map((f) => `/${dir}/${f}`);
  return ['/app/main.tsx', '/e2e/harness.ts', ...workers('workers'), ...workers('e2e')];
}

/**
 * Vite's dependency optimizer discovers bare imports while it serves modules; finding a new one
 * after its first bundle makes it re-bundle and send a full page reload, which destroys a test's
 * page mid-evaluate. So crawl every entry now, before a page exists, and wait until the optimizer
 * is done. A reload it sends meanwhile would be buffered and hit the first page: drop those. A
 * reload sent later still goes through, with a loud warning naming the cause of a flaky test.
 */
async function settleDependencies(server: ViteDevServer): Promise<void> {
  const env = server.environments.client;
  const hot = env.hot;
  const send = hot.send.bind(hot) as (payload: unknown, data?: unknown) => void;
  let settled = false;
  hot.send = ((payload: unknown, data?: unknown) => {
    if (typeof payload === 'object' && payload !== null && (payload as { type?: unknown }).type === 'full-reload') {
      if (!settled) return;
      console.warn('[e2e] Vite sent a full page reload to the test pages (dependency optimizer); a page.evaluate in flight will fail.');
    }
    send(payload, data);
  }) as typeof hot.send;

  await Promise.all(entryUrls().map((url) => server.warmupRequest(url)));
  // Idle requests, then no optimizer run in flight, twice in a row: a run can discover more.
  for (let quiet = 0; quiet < 2; ) {
    await env.waitForRequestsIdle();
    const running = Object.values(env.depsOptimizer?.metadata.discovered ?? {}).flatMap((d) => (d.processing ? [d.processing] : []));
    await Promise.all(running);
    await new Promise((r) => setTimeout(r, 150)); // crawl-end and re-run are debounced
    quiet = running.length === 0 ? quiet + 1 : 0;
  }
  settled = true;
}
