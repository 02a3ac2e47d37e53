/**
 * The service worker (vite-plugin-pwa, Workbox `generateSW`), built with `vite build` only.
 *
 * Precached: the app shell (index.html, JS/CSS chunks), the worker bundles, the WASM runtimes
 * (onnxruntime-web's .wasm/.mjs, voy-search's .wasm), public/ assets (demo corpus, icons) and the
 * web app manifest. Never precached: model weights and tokenizers (/hub/, /shared/): the engine
 * caches the quantized model in OPFS and transformers.js caches the embedder in the Cache API, so
 * there is no runtime caching here at all.
 *
 * Cross-origin isolation survives the SW: Workbox stores each precached Response with the headers
 * the server sent (COOP/COEP on every preview response, see cross-origin-isolation.ts) and serves
 * that same Response, so a page loaded from the precache is still `crossOriginIsolated`
 * (checked offline by e2e/offline.test.ts).
 */
import { VitePWA } from 'vite-plugin-pwa';
import type { Plugin, PluginOption } from 'vite';
import { ISOLATION_HEADERS } from './isolation-headers.ts';

/**
 * onnxruntime-web 1.31's asyncify wasm is 26.9 MB (the largest precached file); the limit leaves
 * headroom for a runtime update and fails the build (vite-plugin-pwa turns Workbox's "too large"
 * warning into an error) rather than silently shipping a SW that cannot run the embedder offline.
 */
const MAX_PRECACHE_FILE_BYTES = 32 * 1024 * 1024;

/** Paths the SW must never answer with the app shell: model files and the test pages. */
const NOT_THE_SHELL = [/^\/hub\//, /^\/shared\//, /^\/e2e\//];

const THEME_COLOR = '#0f766e';

/**
 * What the dev server answers at /sw.js: a worker that removes itself. `npm start` and
 * `npm run dev` share localhost:5173, and a SW left by the built app would otherwise keep serving
 * the old shell there; the browser's update check on navigation fetches this instead, which
 * unregisters, drops only Workbox's precache (the embedder's Cache API entries stay) and reloads.
 */
const DEV_SELF_DESTROYING_SW = `self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil((async () => {
  await self.registration.unregister();
  for (const name of await caches.keys()) if (name.startsWith('workbox-precache')) await caches.delete(name);
  for (const client of await self.clients.matchAll({ type: 'window' })) client.navigate(client.url);
})()));
`;

function devServiceWorkerRemover(): Plugin {
  return {
    name: 'finemed:dev-sw-remover',
    apply: 'serve',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if ((req.url ?? '').split('?')[0] !== '/sw.js') return next();
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache', ...ISOLATION_HEADERS });
        res.end(DEV_SELF_DESTROYING_SW);
      });
    },
  };
}

/**
 * The PWA plugins for vite.config.ts. Off in the dev server (`npm run dev` registers no SW,
 * `virtual:pwa-register` is a no-op there, and /sw.js removes a SW left by `npm start`).
 *
 * @example
 *   // vite.config.ts
 *   plugins: [react(), pwa()]
 */
export function pwa(): PluginOption {
  return [devServiceWorkerRemover(), VitePWA({
    registerType: 'prompt',
    // app/pwa.ts registers through `virtual:pwa-register`; nothing is injected into index.html.
    injectRegister: false,
    // public/icons/ is precached by the glob below (and the manifest by the plugin) once each.
    includeManifestIcons: false,
    devOptions: { enabled: false },
    manifest: {
      name: 'FineMed TTT',
      short_name: 'FineMed TTT',
      description: 'Medical reasoning with FineMedLM-o1 and test-time training, running entirely in your browser on WebGPU.',
      start_url: '/',
      scope: '/',
      display: 'standalone',
      theme_color: THEME_COLOR,
      background_color: '#ffffff',
      icons: [
        { src: '/icons/icon.svg', sizes: 'any', type: 'image/svg+xml' },
        { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png' },
        { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png' },
        { src: '/icons/maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
      ],
    },
    workbox: {
      // Everything the build emits and public/ holds, by extension: weights (.safetensors, .onnx,
      // .bin, .gguf) are left out by not being listed, and again by globIgnores should one appear.
      globPatterns: ['**/*.{html,js,mjs,css,wasm,jsonl,svg,png,ico}'],
      globIgnores: ['**/*.{safetensors,onnx,onnx_data,bin,gguf,pt}', 'hub/**', 'shared/**', 'e2e/**'],
      maximumFileSizeToCacheInBytes: MAX_PRECACHE_FILE_BYTES,
      navigateFallback: '/index.html',
      navigateFallbackDenylist: NOT_THE_SHELL,
      // Hashed file names carry their own revision.
      dontCacheBustURLsMatching: /^assets\//,
      cleanupOutdatedCaches: true,
      runtimeCaching: [],
    },
  })];
}
