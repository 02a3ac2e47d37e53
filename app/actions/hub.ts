/**
 * Which model hub the app downloads from: the user's setting, or with 'auto' the origin's own
 * local hub (`FINEMED_HUB_DIR=<dir> npm start` serves one at /hub/, announced by
 * /local-hub.json) when there is one, else
 * huggingface.co. The last hub that answered is remembered, so an offline reload (when /hub/ is
 * unreachable) still names the same models and finds them in the cache.
 */
import { HUGGING_FACE } from '../catalog.ts';
import type { HubChoice } from '../settings-store.ts';

const LAST_HUB_KEY = 'finemed-ttt-last-hub';

/** `<hub>/<org>/<name>/resolve/main/`: the Hugging Face URL layout of a model repo's files. */
export function repoUrl(hub: string, repo: string, revision = 'main'): string {
  return `${hub.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/`;
}

/**
 * The origin's local hub path, if it serves one: `/local-hub.json` says (`{"hub": "/hub/"}`), so
 * finding out costs no request to the hub itself (a cached load must make none).
 */
async function localHubPath(): Promise<string | null> {
  try {
    const res = await fetch(new URL('local-hub.json', document.baseURI), { cache: 'no-store' });
    if (!res.ok) return null;
    const body = (await res.json()) as { hub?: unknown };
    return typeof body.hub === 'string' ? body.hub : null;
  } catch {
    return null;
  }
}

/**
 * @param opts.probe false: no request at all, the last hub used (or huggingface.co)
 * @example await resolveHub('auto') // 'http://localhost:5173/hub' under `FINEMED_HUB_DIR=... npm start`
 */
export async function resolveHub(choice: HubChoice, opts: { probe?: boolean } = {}): Promise<string> {
  if (choice !== 'auto') return choice.replace(/\/+$/, '');
  // Without a probe (storage listings): the hub the last load used.
  if (opts.probe === false) return localStorage.getItem(LAST_HUB_KEY) ?? HUGGING_FACE;
  let hub: string;
  const local = await localHubPath();
  if (local !== null) hub = new URL(local, document.baseURI).href.replace(/\/+$/, '');
  else if (navigator.onLine) hub = HUGGING_FACE;
  else hub = localStorage.getItem(LAST_HUB_KEY) ?? HUGGING_FACE;
  localStorage.setItem(LAST_HUB_KEY, hub);
  return hub;
}
