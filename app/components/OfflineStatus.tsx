import { applyUpdate, usePwaStore, type PwaState } from '../pwa-store.ts';
import './OfflineStatus.css';

/**
 * Always-visible service-worker indicator: "Available offline" once the app is precached (never
 * "ready": the "Ready" and "Index ready" statuses are public names checked by text), and an
 * "Update available" prompt with a reload button while a new version waits. Renders nothing
 * before either (e.g. in the dev server, which has no service worker).
 *
 * @example
 *   <OfflineStatus /> // once, anywhere in App
 */
export function OfflineStatus() {
  const state = usePwaStore();
  return <OfflineStatusView {...state} onUpdate={() => void applyUpdate()} />;
}

/** The indicator for a given state (the store-free part, rendered in Node tests). */
export function OfflineStatusView({ offlineReady, updateWaiting, updating, registerError, onUpdate }: PwaState & { onUpdate: () => void }) {
  if (!offlineReady && !updateWaiting) return null;
  return (
    <div className="offline-status" role="status" aria-label="App status" title={registerError ?? undefined}>
      {offlineReady && <span className="offline-ready">Available offline</span>}
      {updateWaiting && (
        <span className="offline-update">
          Update available
          <button type="button" onClick={onUpdate} disabled={updating}>
            Reload to update
          </button>
        </span>
      )}
    </div>
  );
}
