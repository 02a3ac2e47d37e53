/// <reference types="vite-plugin-pwa/vanillajs" />
/**
 * Registers the service worker built by vite-plugin-pwa (scripts/vite/pwa.ts) and feeds
 * app/pwa-store.ts. In the dev server the virtual module is a no-op, so no SW runs there.
 */
import { registerSW } from 'virtual:pwa-register';
import { markOfflineReady, markRegisterError, markUpdateWaiting } from './pwa-store.ts';

/**
 * Call once at startup. Registration waits for the page's load event, so it never competes with
 * the first paint.
 *
 * @example
 *   registerServiceWorker(); // app/main.tsx
 */
export function registerServiceWorker(): void {
  const updateSW = registerSW({
    onOfflineReady: markOfflineReady,
    onNeedRefresh: () => markUpdateWaiting(() => updateSW(true)),
    onRegisteredSW: (_url, registration) => {
      // `installed` (and with it onOfflineReady) fires only on the visit that installs the SW;
      // an already active worker has finished precaching too.
      if (registration?.active) markOfflineReady();
    },
    onRegisterError: markRegisterError,
  });
}
