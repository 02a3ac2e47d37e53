/**
 * Where an embedder's files came from, stored in the index manifest so that a query (CLI) or a
 * reopened index (worker) loads the same embedder again without being told, from the cache first.
 */

export type EmbedderSource =
  /** A model folder: a path on disk (Node), or a same-origin URL path (browser, e.g. '/shared/models/x'). */
  | { kind: 'local'; path: string }
  /** A Hugging Face-layout hub: files at `<hub><repo>/resolve/<revision>/<file>`. */
  | { kind: 'hub'; hub: string; repo: string; revision: string };

/**
 * One line for messages and the model manager.
 * @example describeSource({ kind: 'hub', hub: 'https://huggingface.co/', repo: 'Xenova/bge-base-en-v1.5', revision: 'main' });
 *   // 'Xenova/bge-base-en-v1.5@main from https://huggingface.co/'
 */
export function describeSource(s: EmbedderSource): string {
  return s.kind === 'local' ? `local folder ${s.path}` : `${s.repo}@${s.revision} from ${s.hub}`;
}

/** Checks a parsed value (manifest field); null when it is not a source. */
export function parseSource(v: unknown): EmbedderSource | null {
  const o = v as Partial<Record<string, unknown>> | null;
  if (typeof o !== 'object' || o === null) return null;
  if (o.kind === 'local' && typeof o.path === 'string') return { kind: 'local', path: o.path };
  if (o.kind === 'hub' && typeof o.hub === 'string' && typeof o.repo === 'string' && typeof o.revision === 'string') {
    return { kind: 'hub', hub: o.hub, repo: o.repo, revision: o.revision };
  }
  return null;
}
