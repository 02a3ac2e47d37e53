/**
 * The service-worker indicator's logic in Node (the real "new SW waiting" state needs two builds,
 * too slow for e2e): app/pwa-store.ts transitions and the indicator's markup per state.
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, describe, expect, it } from 'vitest';
import { OfflineStatusView } from '../../app/components/OfflineStatus.tsx';
import { applyUpdate, markOfflineReady, markRegisterError, markUpdateWaiting, resetPwaStore, usePwaStore } from '../../app/pwa-store.ts';

/** The indicator for the store's current state (the connected component renders the same view). */
const render = () => renderToStaticMarkup(createElement(OfflineStatusView, { ...usePwaStore.getState(), onUpdate: () => {} }));

afterEach(resetPwaStore);

describe('OfflineStatus', () => {
  it('renders nothing before the service worker reports (dev server, first paint)', () => {
    expect(render()).toBe('');
  });

  it('says "Available offline" in a labelled status once precached', () => {
    markOfflineReady();
    const html = render();
    expect(html).toContain('role="status"');
    expect(html).toContain('aria-label="App status"');
    expect(html).toContain('Available offline');
    expect(html).not.toContain('Update available');
  });

  it('offers "Reload to update" while a new worker waits', () => {
    markOfflineReady();
    markUpdateWaiting(async () => {});
    const html = render();
    expect(html).toContain('Update available');
    expect(html).toMatch(/<button[^>]*>Reload to update<\/button>/);
    expect(html).not.toMatch(/<button[^>]*disabled/);
  });

  it('disables the button while the update is being applied', () => {
    markUpdateWaiting(() => new Promise<void>(() => {}));
    void applyUpdate();
    expect(usePwaStore.getState().updating).toBe(true);
    expect(render()).toMatch(/<button[^>]*disabled/);
  });
});

describe('applyUpdate', () => {
  it('calls the waiting worker\'s activation once, even when clicked twice', async () => {
    let calls = 0;
    markUpdateWaiting(async () => {
      calls++;
    });
    await Promise.all([applyUpdate(), applyUpdate()]);
    expect(calls).toBe(1);
  });

  it('does nothing when no update waits', async () => {
    await applyUpdate();
    expect(usePwaStore.getState()).toMatchObject({ updating: false, updateWaiting: false });
  });

  it('keeps the prompt and the reason when activation fails', async () => {
    markUpdateWaiting(async () => {
      throw new Error('no waiting worker');
    });
    await applyUpdate();
    expect(usePwaStore.getState()).toMatchObject({ updateWaiting: true, updating: false, registerError: 'no waiting worker' });
    markRegisterError('again');
    expect(usePwaStore.getState().registerError).toBe('again');
  });
});
