/**
 * The JSON API subset clients use: repo info (`/api/models/<repo>`, `/api/datasets/<repo>`,
 * optionally `/revision/<rev>`) and the tree listing (`/api/{models,datasets}/<repo>/tree/<rev>/<path>`,
 * `?recursive=true`), shaped like huggingface.co's answers (see models/retrieval/hub.ts).
 * No pagination: a local repo's listing is one page.
 */
import { cardLicense } from './card.ts';
import { HubHttpError } from './http.ts';
import { checkRevision, isLfs, repoPath } from './resolve.ts';
import type { RepoSnapshot } from './repo.ts';

export interface RepoInfo {
  id: string;
  sha: string;
  private: false;
  lastModified: string;
  siblings: { rfilename: string; size: number }[];
  cardData: { license?: string | string[] };
}

export interface TreeEntry {
  type: 'file' | 'directory';
  path: string;
  size: number;
  lfs?: { size: number };
}

/**
 * @example await repoInfo(snapshot, 'main'); // { id: 'test-org/traces', sha: '…', siblings: [...], cardData: { license: 'mit' } }
 */
export async function repoInfo(repo: RepoSnapshot, revision: string): Promise<RepoInfo> {
  checkRevision(repo, revision);
  const license = await cardLicense(repo.dir);
  const newest = repo.files.reduce((t, f) => Math.max(t, f.mtimeMs), 0);
  return {
    id: repo.id,
    sha: repo.sha,
    private: false,
    lastModified: new Date(newest).toISOString(),
    siblings: repo.files.map((f) => ({ rfilename: f.path, size: f.size })),
    cardData: license === undefined ? {} : { license },
  };
}

/**
 * Entries under `segments` (decoded path parts; none = the repo root): direct children, or with
 * `recursive` every file and folder below. Paths are from the repo root, as on the hub.
 * @example repoTree(snapshot, 'main', ['data'], true); // [{ type: 'file', path: 'data/train.parquet', size, lfs: { size } }]
 */
export function repoTree(repo: RepoSnapshot, revision: string, segments: string[], recursive: boolean): TreeEntry[] {
  checkRevision(repo, revision);
  const folder = segments.length === 0 || (segments.length === 1 && segments[0] === '') ? '' : repoPath(repo, segments).rel;
  if (repo.files.some((f) => f.path === folder)) throw new HubHttpError(404, `"${folder}" in ${repo.id} is a file, not a folder.`, 'EntryNotFound');
  const base = folder === '' ? '' : `${folder}/`;
  const under = repo.files.filter((f) => f.path.startsWith(base));
  if (folder !== '' && under.length === 0) throw new HubHttpError(404, `Folder not found: "${folder}" in ${repo.id} at ${revision}.`, 'EntryNotFound');
  const entries = new Map<string, TreeEntry>();
  for (const f of under) {
    const parts = f.path.slice(base.length).split('/');
    // Every folder between `folder` and the file (only the first one when not recursive).
    for (let i = 1; i < parts.length && (recursive || i === 1); i++) {
      const path = base + parts.slice(0, i).join('/');
      entries.set(path, { type: 'directory', path, size: 0 });
    }
    if (recursive || parts.length === 1) {
      entries.set(f.path, { type: 'file', path: f.path, size: f.size, ...(isLfs(f.path, f.size) ? { lfs: { size: f.size } } : {}) });
    }
  }
  return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
