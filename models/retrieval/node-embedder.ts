/**
 * `--embedder <dir|repo>` for Node (CLI, benchmark, tests): a folder on disk is loaded offline as
 * a local model (its parent becomes transformers.js' localModelPath, its name the model id); any
 * other value is a hub repo id, downloaded once into a cache folder when downloads are allowed.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { NotFoundError } from '../errors.ts';
import { createEmbedder, type EmbedderOptions } from './embedder.ts';
import type { Embedder } from './embedder-types.ts';
import { configureTransformers } from './transformers-env.ts';

export interface NodeEmbedderOptions extends Omit<EmbedderOptions, 'model'> {
  /** Allow hub downloads for a repo id (default true; a folder never downloads). */
  allowRemote?: boolean;
  cacheDir?: string;
  /** Hub mirror (default https://huggingface.co/). */
  remoteHost?: string;
}

/**
 * @example
 *   const e = await loadNodeEmbedder('../shared/models/tiny-random-bert'); // e.info.model === 'tiny-random-bert'
 *   const bge = await loadNodeEmbedder('Xenova/bge-small-en-v1.5');       // from the hub, then cached
 */
export async function loadNodeEmbedder(spec: string, options: NodeEmbedderOptions = {}): Promise<Embedder> {
  const path = resolve(spec);
  const isDir = existsSync(path) && statSync(path).isDirectory();
  if (isDir) {
    // transformers.js gives an unhelpful TypeError for a folder without config.json: check first.
    if (!existsSync(join(path, 'config.json'))) throw new NotFoundError(`${path} has no config.json; it is not a transformers.js model folder.`);
    configureTransformers({ allowRemoteModels: false, localModelPath: dirname(path) });
    return createEmbedder({ ...options, model: basename(path) });
  }
  if (spec.startsWith('.') || spec.startsWith('/')) throw new NotFoundError(`Embedder folder ${path} does not exist.`);
  const cacheDir = options.cacheDir ?? join(homedir(), '.cache', 'finemed-ttt', 'models');
  // transformers.js caches hub files as <cacheDir>/<org>/<name>/<file>, the layout of a local
  // model folder: reading the cache as localModelPath makes a downloaded model work offline.
  configureTransformers({ allowRemoteModels: options.allowRemote ?? true, cacheDir, localModelPath: cacheDir, remoteHost: options.remoteHost });
  return createEmbedder({ ...options, model: spec });
}
