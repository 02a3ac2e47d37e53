/**
 * Storage on this device: the weight cache's entries (OPFS, through the LLM worker), the stored
 * corpus indexes (through the retrieval worker), the origin's usage and quota, persistence, and
 * delete (which frees the space).
 */
import { patch, toUiError, useApp } from '../store.ts';
import { useSettings } from '../settings-store.ts';
import { llmClient, retrievalClient } from './clients.ts';
import { resolveHub } from './hub.ts';

/** Reads usage, quota, persistence and the stored entries. */
export async function refreshStorage(): Promise<void> {
  try {
    const settings = useSettings.getState();
    const [estimate, persisted, models, indexes, embedder] = await Promise.all([
      navigator.storage?.estimate?.() ?? Promise.resolve(null),
      navigator.storage?.persisted?.() ?? Promise.resolve(null),
      llmClient().listCachedModels(),
      retrievalClient().listIndexes(),
      resolveHub(settings.hub, { probe: false }).then((hub) => retrievalClient().checkEmbedder({ model: settings.embedderRepo, hub: `${hub}/` })),
    ]);
    patch('storage', { read: true, usage: estimate?.usage ?? null, quota: estimate?.quota ?? null, persisted, models, indexes, embedder, error: null });
  } catch (e) {
    patch('storage', { read: true, error: toUiError(e) });
  }
}

/**
 * Asks the browser to keep this origin's data under storage pressure (a 16 GB download should not
 * be evicted). Chrome grants it silently for installed or frequently used apps, else refuses.
 */
export async function requestPersistence(): Promise<void> {
  const granted = (await navigator.storage?.persist?.()) ?? false;
  patch('storage', { persisted: granted });
  if (!granted) patch('storage', { error: { code: 'storage-quota', message: 'The browser did not grant persistent storage; it may evict the cached models when space runs low. Installing the app usually allows it.' } });
}

/** The loaded model keeps running (its weights are on the GPU); the next load downloads again. */
export async function deleteCachedModel(key: string): Promise<void> {
  await llmClient().deleteCachedModel(key).catch((e: unknown) => patch('storage', { error: toUiError(e) }));
  await refreshStorage();
}

export async function deleteIndex(key: string): Promise<void> {
  await retrievalClient().deleteIndex(key).catch((e: unknown) => patch('storage', { error: toUiError(e) }));
  const info = useApp.getState().corpus.info;
  if (info && (info.key === key || info.corpus.key === key)) patch('corpus', { status: 'none', info: null, name: null, retrievers: null });
  await refreshStorage();
}

/** Removes the chosen embedder's files from the browser cache (it downloads again on the next load). */
export async function deleteEmbedderFiles(model: string): Promise<void> {
  const hub = await resolveHub(useSettings.getState().hub, { probe: false });
  await retrievalClient().deleteEmbedder({ model, hub: `${hub}/` }).catch((e: unknown) => patch('storage', { error: toUiError(e) }));
  await refreshStorage();
}
