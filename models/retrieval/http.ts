/**
 * fetch with typed errors: 404 -> NotFoundError, other failures (offline, CORS, 401/403, 5xx) ->
 * NetworkError naming the URL, so the UI can say what failed and offer a retry.
 */
import { AbortError, NetworkError, NotFoundError } from '../errors.ts';

export type FetchLike = typeof fetch;

/**
 * @example const res = await fetchOk('https://huggingface.co/api/datasets/x/tree/main/data');
 */
export async function fetchOk(url: string, init: RequestInit = {}, fetchImpl: FetchLike = (u, i) => globalThis.fetch(u, i)): Promise<Response> {
  let res: Response;
  try {
    res = await fetchImpl(url, init);
  } catch (e) {
    if (init.signal?.aborted) throw new AbortError();
    throw new NetworkError(`Could not reach ${url} (${(e as Error).message}); check the connection.`, { cause: e });
  }
  if (res.ok) return res;
  if (res.status === 404) throw new NotFoundError(`Not found (HTTP 404): ${url}`);
  const hint = res.status === 401 || res.status === 403 ? ' The dataset may be gated or private: accept its terms on the hub.' : '';
  throw new NetworkError(`HTTP ${res.status} ${res.statusText} from ${url}.${hint}`);
}
