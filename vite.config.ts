import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { browserOnly } from './scripts/vite/browser-only.ts';
import { crossOriginIsolation } from './scripts/vite/cross-origin-isolation.ts';
import { ISOLATION_HEADERS } from './scripts/vite/isolation-headers.ts';
import { localHub } from './scripts/vite/local-hub.ts';
import { pwa } from './scripts/vite/pwa.ts';
import { serveShared } from './scripts/vite/serve-shared.ts';

const root = dirname(fileURLToPath(import.meta.url));
/** Golden models and data beside the checkout; absent on a fresh clone (then /shared/* is 404). */
const sharedDir = resolve(root, '..', 'shared');

export default defineConfig({
  root,
  // No SPA fallback: a missing file must be a 404 (model sources rely on it), and the e2e
  // harness page (e2e/harness.html) is a second page next to index.html.
  appType: 'mpa',
  plugins: [react(), browserOnly(), crossOriginIsolation(), serveShared(sharedDir),
    // FINEMED_HUB_DIR=<dir>: <dir> served at /hub/ in the Hugging Face layout (no internet needed).
    localHub(process.env.FINEMED_HUB_DIR ? resolve(process.env.FINEMED_HUB_DIR) : undefined), pwa()],
  worker: {
    format: 'es',
  },
  server: {
    headers: { ...ISOLATION_HEADERS },
    // Transform the page and the workers at startup, so the dependency optimizer sees every
    // bare import before the first page load (a late discovery means a full page reload).
    warmup: { clientFiles: ['./app/main.tsx', './workers/*.worker.ts'] },
  },
  preview: {
    headers: { ...ISOLATION_HEADERS },
  },
  optimizeDeps: {
    // Pre-bundle what the pages and the worker import up front, so the dev server never
    // discovers a dependency mid-test and reloads the page.
    entries: ['index.html', 'e2e/*.html', 'scripts/bench/*.html', 'workers/*.worker.ts'],
    include: ['react', 'react-dom', 'react-dom/client', 'react/jsx-runtime', 'react/jsx-dev-runtime', 'zustand'],
    // They locate their .wasm files relative to import.meta.url; pre-bundling breaks that.
    exclude: ['onnxruntime-web', '@huggingface/transformers'],
  },
  build: {
    target: 'es2022',
    // The app is index.html alone; e2e/harness.html is dev-server only.
    rolldownOptions: { input: resolve(root, 'index.html') },
  },
});
