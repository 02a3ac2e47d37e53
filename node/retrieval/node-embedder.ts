/**
 * `--embedder <dir|repo>` for Node (CLI, benchmark, tests): a folder on disk is loaded offline as
 * a local model (its parent becomes transformers.js' localModelPath, its name the model id); any
 * other value is a hub repo id, read from the cache folder when every file is there (no request),
 * else downloaded from the hub base into it when downloads are allowed. The embedder records its
 * source, so an index built with it can load it again (loadSourceEmbedder).
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { NotFoundError } from '../../models/errors.ts';
import { createEmbedder, type EmbedderOptions } from '../../models/retrieval/embedder.ts';
import type { EmbedderSource } from '../../models/retrieval/embedder-source.ts';
import type { Embedder } from '../../models/retrieval/embedder-types.ts';
import type { IndexManifest } from '../../models/retrieval/manifest.ts';
import { DEFAULT_HUB, hubBase } from '../../models/retrieval/hub.ts';
import { configureTransformers } from '../../models/retrieval/transformers-env.ts';

export interface NodeEmbedderOptions extends Omit<EmbedderOptions, 'model' | 'source'> {
  /** Allow hub downloads for a repo id (default true; a folder never downloads). */
  allowRemote?: boolean;
  /** The folder hub files are cached in; default defaultModelCache(). */
  cacheDir?: string;
  /** Hub base URL (default https://huggingface.co/, or FINEMED_HUB when set). */
  remoteHost?: string;
}

/**
 * Where hub embedders are cached: `models/` in the project's cache folder (the one the LLM CLI's
 * weight cache uses): $XDG_CACHE_HOME/finemed-ttt, else ~/.cache/finemed-ttt.
 * @example defaultModelCache(); // '/home/me/.cache/finemed-ttt/models'
 */
export function defaultModelCache(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'finemed-ttt', 'models');
}

/** The hub base: the option, else FINEMED_HUB, else huggingface.co. */
function hubOf(remoteHost: string | undefined): string {
  return hubBase(remoteHost ?? process.env.FINEMED_HUB ?? DEFAULT_HUB);
}

/**
 * @example
 *   const e = await loadNodeEmbedder('../shared/models/tiny-random-bert'); // e.info.model === 'tiny-random-bert'
 *   const bge = await loadNodeEmbedder('Xenova/bge-base-en-v1.5');        // from the hub, then cached
 */
export async function loadNodeEmbedder(spec: string, options: NodeEmbedderOptions = {}): Promise<Embedder> {
  const path = resolve(spec);
  const isDir = existsSync(path) && statSync(path).isDirectory();
  if (isDir) {
    // transformers.js gives an unhelpful TypeError for a folder without config.json: check first.
    if (!existsSync(join(path, 'config.json'))) throw new NotFoundError(`${path} has no config.json; it is not a transformers.js model folder.`);
    configureTransformers({ allowRemoteModels: false, localModelPath: dirname(path) });
    return createEmbedder({ ...options, model: basename(path), source: { kind: 'local', path } });
  }
  if (spec.startsWith('.') || spec.startsWith('/')) throw new NotFoundError(`Embedder folder ${path} does not exist.`);
  const cacheDir = options.cacheDir ?? defaultModelCache();
  const hub = hubOf(options.remoteHost);
  const revision = options.revision ?? 'main';
  // transformers.js caches hub files as <cacheDir>/<org>/<name>/<file>, the layout of a local
  // model folder, so reading the cache as localModelPath works too. With every file cached,
  // createEmbedder loads with downloads off: no request, even when the hub is unreachable.
  configureTransformers({ allowRemoteModels: options.allowRemote ?? true, cacheDir, localModelPath: cacheDir, remoteHost: hub });
  const source: EmbedderSource = { kind: 'hub', hub, repo: spec, revision };
  return createEmbedder({ ...options, model: spec, source });
}

/**
 * The embedder an index manifest names, from where it was loaded: a local folder, or the hub
 * repo (cache first). A hub source's base is replaced by `remoteHost` when given.
 * @example const e = await loadSourceEmbedder(manifest.embedderSource!, { dtype: manifest.embedder.dtype });
 */
export async function loadSourceEmbedder(source: EmbedderSource, options: NodeEmbedderOptions = {}): Promise<Embedder> {
  if (source.kind === 'local') {
    if (!existsSync(source.path)) throw new NotFoundError(`The index was built with the embedder folder ${source.path}, which no longer exists; pass --embedder.`);
    return loadNodeEmbedder(source.path, options);
  }
  return loadNodeEmbedder(source.repo, { ...options, revision: source.revision, remoteHost: options.remoteHost ?? source.hub });
}

/**
 * The embedder of a stored index: `override` (a folder or repo) when given; else where the
 * manifest says it came from, cache first (no request when it is there); else its model id.
 * @example const embedder = await loadIndexEmbedder(await readManifest(store), { override: args.embedder });
 */
export async function loadIndexEmbedder(
  manifest: Pick<IndexManifest, 'embedder' | 'embedderSource'>,
  options: NodeEmbedderOptions & { override?: string } = {},
): Promise<Embedder> {
  const { override, ...o } = options;
  if (override) return loadNodeEmbedder(override, o);
  const dtype = manifest.embedder.dtype as NodeEmbedderOptions['dtype'];
  if (manifest.embedderSource) return loadSourceEmbedder(manifest.embedderSource, { dtype, ...o });
  return loadNodeEmbedder(manifest.embedder.model, { dtype, ...o });
}
