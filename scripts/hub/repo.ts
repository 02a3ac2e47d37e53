/**
 * The repos of a local hub folder: `<dir>/<org>/<name>` (models) and `<dir>/datasets/<org>/<name>`
 * (datasets), symlinks followed. A repo's file list and the commit id the hub reports for it: the
 * 40-hex id in `<repo>/.commit` when present, else a hash of the file list (paths, sizes, mtimes),
 * so the id changes whenever a file does, as a real hub commit would.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../models/errors.ts';

export type RepoKind = 'model' | 'dataset';

export interface RepoFile {
  /** Path inside the repo, '/'-separated. */
  path: string;
  size: number;
  mtimeMs: number;
}

export interface RepoSnapshot {
  /** `org/name` */
  id: string;
  kind: RepoKind;
  dir: string;
  /** Sorted by path; excludes `.commit` and `.git/`. */
  files: RepoFile[];
  sha: string;
}

/** Holds a pinned commit id; our metadata, not a repo file (never listed or served). */
export const COMMIT_FILE = '.commit';
/** Top-level folder of dataset repos; `api` is the API. Neither can be a model org. */
const RESERVED_ORGS = new Set(['datasets', 'api']);

/** One path segment that cannot climb out of its folder or name a hidden git folder. */
export function isSafeSegment(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && s !== '.git' && !s.includes('/') && !s.includes('\\') && !s.includes('\0');
}

/** Folder of a repo, or null when org/name are not plain names. */
export function repoDir(root: string, kind: RepoKind, org: string, name: string): string | null {
  if (!isSafeSegment(org) || !isSafeSegment(name)) return null;
  if (kind === 'model' && RESERVED_ORGS.has(org)) return null;
  return kind === 'dataset' ? join(root, 'datasets', org, name) : join(root, org, name);
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

/** Every file under `dir` (symlinks followed, broken links and symlink loops skipped). */
export async function listRepoFiles(dir: string): Promise<RepoFile[]> {
  const out: RepoFile[] = [];
  const walk = async (abs: string, rel: string, ancestors: Set<string>): Promise<void> => {
    for (const e of await readdir(abs, { withFileTypes: true })) {
      if (e.name === '.git' || (rel === '' && e.name === COMMIT_FILE)) continue;
      const childAbs = join(abs, e.name);
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      const st = await stat(childAbs).catch(() => null);
      if (st?.isFile()) out.push({ path: childRel, size: st.size, mtimeMs: st.mtimeMs });
      else if (st?.isDirectory()) {
        const real = await realpath(childAbs);
        if (!ancestors.has(real)) await walk(childAbs, childRel, new Set([...ancestors, real]));
      }
    }
  };
  await walk(dir, '', new Set([await realpath(dir)]));
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The commit id to report for a repo.
 * @example await repoCommit('/hub/test-org/stories260K', await listRepoFiles('/hub/test-org/stories260K'));
 */
export async function repoCommit(dir: string, files: RepoFile[]): Promise<string> {
  let pinned: string | null = null;
  try {
    pinned = await readFile(join(dir, COMMIT_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (pinned !== null) {
    const sha = pinned.trim().toLowerCase();
    if (!/^[0-9a-f]{40}$/.test(sha)) throw new ConfigError(`${join(dir, COMMIT_FILE)} must hold a 40-hex commit id, not "${pinned.trim().slice(0, 60)}".`);
    return sha;
  }
  const h = createHash('sha1');
  for (const f of files) h.update(`${f.path}\0${f.size}\0${Math.floor(f.mtimeMs)}\n`);
  return h.digest('hex');
}

/**
 * A repo's files and commit, or null when there is no such repo folder.
 * @example const snap = await readRepo('/hub', 'dataset', 'test-org', 'traces'); // snap?.sha
 */
export async function readRepo(root: string, kind: RepoKind, org: string, name: string): Promise<RepoSnapshot | null> {
  const dir = repoDir(root, kind, org, name);
  if (!dir || !(await isDir(dir))) return null;
  const files = await listRepoFiles(dir);
  return { id: `${org}/${name}`, kind, dir, files, sha: await repoCommit(dir, files) };
}

async function subdirs(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const dirs: string[] = [];
  for (const n of names.sort()) if (isSafeSegment(n) && (await isDir(join(dir, n)))) dirs.push(n);
  return dirs;
}

/**
 * The repo ids a hub folder holds (for the CLI's startup listing).
 * @example await listRepos('/hub'); // { models: ['test-org/stories260K'], datasets: ['test-org/traces'] }
 */
export async function listRepos(root: string): Promise<{ models: string[]; datasets: string[] }> {
  const models: string[] = [];
  const datasets: string[] = [];
  for (const org of await subdirs(root)) {
    if (RESERVED_ORGS.has(org)) continue;
    for (const name of await subdirs(join(root, org))) models.push(`${org}/${name}`);
  }
  for (const org of await subdirs(join(root, 'datasets'))) {
    for (const name of await subdirs(join(root, 'datasets', org))) datasets.push(`${org}/${name}`);
  }
  return { models, datasets };
}
