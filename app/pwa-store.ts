/**
 * Service-worker state for the UI, in a store of its own (the app store stays about the model):
 * "offline ready" once the app shell is precached, "update waiting" when a new service worker has
 * installed and waits for this page's consent. app/pwa.ts feeds it; OfflineStatus shows it.
 */
import { create } from 'zustand';

export interface PwaState {
  /** The shell, workers and wasm are precached: the app reloads without a network. */
  offlineReady: boolean;
  /** A new service worker is installed and waiting; reloading switches to it. */
  updateWaiting: boolean;
  /** The user asked for the update; the page reloads once the new worker takes control. */
  updating: boolean;
  /** Registration failed (the app still works online); the reason, for the indicator's title. */
  registerError: string | null;
}

const INITIAL: PwaState = { offlineReady: false, updateWaiting: false, updating: false, registerError: null };

export const usePwaStore = create<PwaState>(() => ({ ...INITIAL }));

/** Activates the waiting worker; kept out of the state so the state stays serialisable. */
let applyWaitingUpdate: (() => Promise<void>) | null = null;

export function markOfflineReady(): void {
  usePwaStore.setState({ offlineReady: true });
}

/**
 * Records that a new service worker waits, with the function that activates it.
 *
 * @example
 *   markUpdateWaiting(() => updateSW(true)); // updateSW from registerSW()
 */
export function markUpdateWaiting(apply: () => Promise<void>): void {
  applyWaitingUpdate = apply;
  usePwaStore.setState({ updateWaiting: true });
}

export function markRegisterError(error: unknown): void {
  usePwaStore.setState({ registerError: error instanceof Error ? error.message : String(error) });
}

/**
 * "Reload to update": tells the waiting worker to take over; the registration reloads the page
 * when it does. A failure is kept as the register error and the prompt stays.
 *
 * @example
 *   <button onClick={() => void applyUpdate()}>Reload to update</button>
 */
export async function applyUpdate(): Promise<void> {
  if (!applyWaitingUpdate || usePwaStore.getState().updating) return;
  usePwaStore.setState({ updating: true });
  try {
    await applyWaitingUpdate();
  } catch (e) {
    markRegisterError(e);
    usePwaStore.setState({ updating: false });
  }
}

/** Back to the initial state (tests). */
export function resetPwaStore(): void {
  applyWaitingUpdate = null;
  usePwaStore.setState({ ...INITIAL });
}
