/**
 * One hub base URL serves every hub access: the embedder's files (`<base><org>/<name>/resolve/<rev>/<file>`,
 * through transformers.js' remoteHost, see transformers-env.ts), dataset files
 * (`<base>datasets/<org>/<name>/resolve/<rev>/<file>`) and the API (`<base>api/...`). The default is
 * huggingface.co; the app may use a local hub in the same layout at `<origin>/hub/`.
 *
 * The Hugging Face hub's dataset file layout: the tree API lists a folder
 * (`/api/datasets/{repo}/tree/{rev}/{path}`, paginated by a Link header), files download from
 * `/datasets/{repo}/resolve/{rev}/{path}`. A dataset stored in another format has parquet exports
 * listed by `/api/datasets/{repo}/parquet/{config}/{split}`, which we fall back to.
 */
import { InvalidInputError } from '../errors.ts';
import { fetchOk, type FetchLike } from './http.ts';

export const HUB = 'https://huggingface.co';
/** The default hub base, with the trailing slash every base gets. */
export const DEFAULT_HUB = `${HUB}/`;

/**
 * A hub base as an absolute URL ending in '/': relative bases ('/hub/') resolve against
 * `relativeTo` (the page or worker URL). InvalidInputError when it is not an http(s) URL.
 * @example hubBase('/hub', 'http://localhost:5173/app/'); // 'http://localhost:5173/hub/'
 */
export function hubBase(base: string = DEFAULT_HUB, relativeTo?: string): string {
  let url: URL;
  try {
    url = relativeTo === undefined ? new URL(base) : new URL(base, relativeTo);
  } catch {
    throw new InvalidInputError(`The hub base "${base}" is not a URL${relativeTo === undefined ? ' (give an absolute http(s) URL)' : ''}.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInputError(`The hub base "${base}" is not an http(s) URL.`);
  url.search = '';
  url.hash = '';
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

export interface HubDataset {
  /** Base URL of the hub (or a mirror, a local hub, a test server); default huggingface.co. */
  hub?: string;
  repo: string;
  revision?: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
}

export interface HubFile {
  path: string;
  /** Bytes, as the tree API lists them (absent for parquet-export URLs). */
  size?: number;
  url: string;
}

interface TreeEntry {
  type: string;
  path: string;
  size?: number;
  lfs?: { size?: number };
}

function base(d: HubDataset): string {
  return (d.hub ?? HUB).replace(/\/+$/, '');
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/**
 * Download URL of a file in a dataset repo.
 * @example resolveUrl({ repo: 'hongzhouyu/FineMed-DPO' }, 'data/train-00000-of-00001.parquet');
 */
export function resolveUrl(d: HubDataset, path: string): string {
  return `${base(d)}/datasets/${d.repo}/resolve/${encodeURIComponent(d.revision ?? 'main')}/${encodePath(path)}`;
}

/** `rel="next"` target of a Link header, if any. */
function nextLink(link: string | null): string | null {
  const m = link?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  return m ? m[1] : null;
}

/**
 * Files (not folders) under `folder`, recursively, sorted by path.
 * @example const files = await listDatasetFiles({ repo: 'hongzhouyu/FineMed-DPO' }, 'data');
 */
export async function listDatasetFiles(d: HubDataset, folder: string): Promise<HubFile[]> {
  const files: HubFile[] = [];
  let url: string | null =
    `${base(d)}/api/datasets/${d.repo}/tree/${encodeURIComponent(d.revision ?? 'main')}/${encodePath(folder)}?recursive=true`;
  while (url) {
    const res: Response = await fetchOk(url, { signal: d.signal }, d.fetch);
    const entries = (await res.json()) as TreeEntry[];
    for (const e of entries) {
      if (e.type === 'file') files.push({ path: e.path, size: e.lfs?.size ?? e.size, url: resolveUrl(d, e.path) });
    }
    const next = nextLink(res.headers.get('link'));
    url = next ? new URL(next, url).toString() : null;
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * The hub's parquet export URLs of one config/split (for datasets not stored as parquet).
 * @example await parquetExportUrls({ repo: 'hongzhouyu/FineMed-DPO' }); // ['https://huggingface.co/.../0000.parquet']
 */
export async function parquetExportUrls(d: HubDataset, config = 'default', split = 'train'): Promise<string[]> {
  const res = await fetchOk(`${base(d)}/api/datasets/${d.repo}/parquet/${config}/${split}`, { signal: d.signal }, d.fetch);
  const urls = (await res.json()) as unknown;
  return Array.isArray(urls) ? urls.filter((u): u is string => typeof u === 'string') : [];
}

/**
 * The dataset card's license (`cardData.license`), or null when the card has none.
 * @example await datasetLicense({ repo: 'hongzhouyu/FineMed-DPO' }); // e.g. 'mit'
 */
export async function datasetLicense(d: HubDataset): Promise<string | null> {
  const res = await fetchOk(`${base(d)}/api/datasets/${d.repo}`, { signal: d.signal }, d.fetch);
  const info = (await res.json()) as { cardData?: { license?: unknown } };
  const l = info.cardData?.license;
  return typeof l === 'string' ? l : Array.isArray(l) && typeof l[0] === 'string' ? l.join(', ') : null;
}
