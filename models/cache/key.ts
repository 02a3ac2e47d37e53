/**
 * The cache key of a model: which entry folder a source's weights live in.
 *
 * Rule: identity = (source identity, weight format, lm_head format, QUANT_FORMAT_VERSION), where the source
 * identity of a Hugging Face layout URL (`.../<org>/<name>/resolve/<rev>/`, any host: the hub or a
 * local mirror of it) is `hub:<org>/<name>@<rev>`, and of anything else its kind and location (URL
 * base, absolute folder path, picked folder's name + file count + bytes). The key is a readable
 * slug of that identity plus 8 hex digits of its checksum, e.g.
 * `hongzhouyu--FineMedLM-o1@main--q4-q8head-v2-1f2e3d4c` (the lm_head's format is named only when
 * it is not the weights', e.g. `--q4-v2-` for an all-4-bit model).
 *
 * The key needs no request, so a cached load never contacts the source. The hub commit, ETags and
 * file sizes are recorded in the manifest instead and compared when a partial entry is resumed:
 * a moved branch restarts the download rather than mixing two commits. A complete entry is used
 * as is (offline first); load with cache mode 'refresh' to fetch the branch's new commit.
 */
import type { LmHeadFormat, WeightFormat } from '../api.ts';
import { resolveLmHead } from '../weights-plan.ts';
import type { ModelSource } from '../io/source.ts';
import { checksum64 } from './checksum.ts';
import { QUANT_FORMAT_VERSION, type SourceInfo } from './format.ts';

export type SourceIdentity = Pick<SourceInfo, 'kind' | 'location' | 'repo' | 'revision'>;

/** `/<org>/<name>/resolve/<rev>/` at the end of a URL path (datasets are not models). */
const HF_RESOLVE = /\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/?$/;

/**
 * What a source is, from its `origin` (or description): Hugging Face layout URLs become 'hub'.
 * @example identifySource(new UrlModelSource('https://huggingface.co/org/m/resolve/main/'))
 *   // { kind: 'hub', location: 'https://huggingface.co/org/m/resolve/main/', repo: 'org/m', revision: 'main' }
 */
export function identifySource(source: ModelSource): SourceIdentity {
  const origin = source.origin ?? { kind: /^https?:\/\//.test(source.description) ? 'url' as const : 'folder' as const, location: source.description };
  if (origin.kind === 'url') {
    let path = '';
    try {
      path = new URL(origin.location).pathname;
    } catch {
      path = origin.location;
    }
    const m = HF_RESOLVE.exec(path);
    if (m && m[1] !== 'datasets' && !path.includes('/datasets/')) {
      const dec = (s: string) => { try { return decodeURIComponent(s); } catch { return s; } };
      return { kind: 'hub', location: origin.location, repo: `${dec(m[1])}/${dec(m[2])}`, revision: dec(m[3]) };
    }
  }
  return { kind: origin.kind, location: origin.location };
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9._@-]+/g, '-').replace(/^-+|-+$/g, '').slice(-60) || 'model';

/**
 * The entry key for a source identity, weight format and lm_head format (default resolveLmHead).
 * @example cacheKey({ kind: 'hub', location: '...', repo: 'org/m', revision: 'main' }, 'q4') // "org--m@main--q4-q8head-v2-xxxxxxxx"
 */
export function cacheKey(id: SourceIdentity, weights: WeightFormat, lmHead?: LmHeadFormat): string {
  const head = resolveLmHead(weights, lmHead);
  const who = id.kind === 'hub' ? `hub:${id.repo}@${id.revision}` : `${id.kind}:${id.location}`;
  const hash = checksum64(new TextEncoder().encode(JSON.stringify([who, weights, head, QUANT_FORMAT_VERSION]))).slice(0, 8);
  const readable = id.kind === 'hub' ? `${id.repo!.replace('/', '--')}@${id.revision}` : id.location.split(/[/\\]+/).filter(Boolean).slice(-2).join('--');
  const format = head === weights ? weights : `${weights}-${head}head`;
  return `${slug(readable)}--${format}-v${QUANT_FORMAT_VERSION}-${hash}`;
}

/** cacheKey of a ModelSource (no request is made). */
export function cacheKeyFor(source: ModelSource, weights: WeightFormat, lmHead?: LmHeadFormat): string {
  return cacheKey(identifySource(source), weights, lmHead);
}
