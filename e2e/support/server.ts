/**
 * Starts the project's Vite dev server (vite.config.ts: React, COOP/COEP, /shared/ with Range
 * support, the e2e harness page) on a random free port of 127.0.0.1.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createServer } from 'vite';

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
    logLevel: 'warn',
    clearScreen: false,
    server: {
      host: '127.0.0.1',
      port: 0,
      strictPort: false,
      // Tests never edit files. The HMR socket stays: Vite's client always dials it, and it
      // carries the reload should the dependency optimizer ever need one.
      watch: null,
    },
  });
  await server.listen();
  const address = server.httpServer?.address() as AddressInfo | null;
  if (!address || typeof address === 'string') {
    await server.close();
    throw new Error('The Vite dev server did not report a TCP address.');
  }
  return { url: `http://127.0.0.1:${address.port}/`, close: () => server.close() };
}
