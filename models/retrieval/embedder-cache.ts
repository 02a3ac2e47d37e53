/**
 * The embedder's files in the browser's Cache API, where transformers.js keeps them (cache
 * `transformers-cache`, keyed by the URL each file was fetched from): state and size for the model
 * manager, and delete. It reads the cache alone, never the network: transformers.js' own registry
 * helpers may ask the hub, and they memoise a "missing" answer for the rest of the session.
 */
import { env } from '@huggingface/transformers';
import { EngineError } from '../errors.ts';
import type { EmbedderDtype } from './catalog.ts';

const SUFFIX: Record<EmbedderDtype, string> = { fp32: '', fp16: '_fp16', q8: '_quantized' };

/**
 * The files the feature-extraction pipeline reads for a BERT embedder.
 * @example embedderFiles('q8'); // ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_quantized.onnx']
 */
export function embedderFiles(dtype: EmbedderDtype): string[] {
  return ['config.json', 'tokenizer.json', 'tokenizer_config.json', `onnx/model${SUFFIX[dtype]}.onnx`];
}

export interface EmbedderCacheQuery {
  model: string;
  dtype?: EmbedderDtype;
  revision?: string;
  /** Hub base the files were downloaded from (absolute, with '/'); default transformers.js' env.remoteHost. */
  hub?: string;
  /** Same-origin folder the files may have come from instead (absolute path or URL, with '/'). */
  localModelPath?: string;
}

export interface EmbedderCacheState {
  model: string;
  /** Every file is cached: the embedder loads with no request. */
  cached: boolean;
  files: { file: string; cached: boolean; bytes: number | null }[];
  /** Sum of the cached files' sizes. */
  bytes: number;
}

/** Both keys transformers.js may have stored a file under: the hub URL, and the local-folder path. */
function keys(q: EmbedderCacheQuery, file: string): string[] {
  const hub = q.hub ?? env.remoteHost;
  const out = [`${hub.endsWith('/') ? hub : `${hub}/`}${q.model}/resolve/${encodeURIComponent(q.revision ?? 'main')}/${file}`];
  if (q.localModelPath) out.push(`${q.localModelPath.endsWith('/') ? q.localModelPath : `${q.localModelPath}/`}${q.model}/${file}`);
  return out;
}

async function openCache(): Promise<Cache | null> {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(env.cacheKey);
  } catch {
    return null; // storage blocked (some private modes): nothing is cached
  }
}

/**
 * @example
 *   const s = await embedderCacheState({ model: 'Xenova/bge-base-en-v1.5', hub: 'http://localhost:5173/hub/' });
 *   // { cached: true, bytes: 437_500_000, files: [...] }
 */
export async function embedderCacheState(q: EmbedderCacheQuery): Promise<EmbedderCacheState> {
  const cache = await openCache();
  const files = await Promise.all(
    embedderFiles(q.dtype ?? 'fp32').map(async (file) => {
      for (const key of keys(q, file)) {
        const hit = await cache?.match(key);
        if (hit) {
          const len = Number(hit.headers.get('content-length'));
          return { file, cached: true, bytes: Number.isFinite(len) && len > 0 ? len : null };
        }
      }
      return { file, cached: false, bytes: null };
    }),
  );
  return { model: q.model, cached: files.every((f) => f.cached), files, bytes: files.reduce((n, f) => n + (f.bytes ?? 0), 0) };
}

/**
 * Deletes the embedder's cached files; returns how many entries were deleted.
 * @example await deleteEmbedderCache({ model: 'Xenova/bge-base-en-v1.5' }); // 4
 */
export async function deleteEmbedderCache(q: EmbedderCacheQuery): Promise<number> {
  const cache = await openCache();
  if (!cache) return 0;
  let deleted = 0;
  try {
    for (const file of embedderFiles(q.dtype ?? 'fp32')) {
      for (const key of keys(q, file)) if (await cache.delete(key)) deleted++;
    }
  } catch (e) {
    throw new EngineError('internal', `Could not delete the cached files of ${q.model}: ${(e as Error).message}`, { cause: e });
  }
  return deleted;
}
