/**
 * Every retrieval hub access through one hub base, against the project's local hub server
 * (scripts/hub, the Hugging Face layout served at <origin>/hub/): FineMed-DPO's listing, card and
 * parquet ranges under `<base>/api/datasets/...` and `<base>/datasets/...`, and the embedder's
 * files under `<base>/<org>/<name>/resolve/main/...`; a cached embedder asks the hub nothing.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFineMedDpo } from '../../../models/retrieval/finemed-loader.ts';
import { loadNodeEmbedder } from '../../../node/retrieval/node-embedder.ts';
import { startHubServer } from '../../../scripts/hub/hub-server.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';
import { fineMedParquet, fineMedRows } from './finemed-fixture.ts';

warnIfNoShared('the embedder through the local hub (tiny-random-bert as test-org/tiny-bge)');

const dir = mkdtempSync(join(tmpdir(), 'retrieval-local-hub-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dataset(root: string): void {
  const d = join(root, 'datasets', 'hongzhouyu', 'FineMed-DPO');
  mkdirSync(join(d, 'data'), { recursive: true });
  writeFileSync(join(d, 'README.md'), '---\nlicense: apache-2.0\n---\n# FineMed-DPO (test copy)\n');
  writeFileSync(join(d, 'data', 'train-00000-of-00001.parquet'), fineMedParquet(fineMedRows(30)));
}

describe('retrieval through the local hub', () => {
  it('downloads FineMed-DPO from <base>/api and <base>/datasets, only the needed columns', async () => {
    const root = join(dir, 'hub-a');
    dataset(root);
    const hub = await startHubServer(root);
    try {
      const r = await loadFineMedDpo({ hub: hub.url });
      expect(r.records).toHaveLength(30);
      expect(r).toMatchObject({ license: 'apache-2.0', skipped: 0, records: expect.arrayContaining([expect.objectContaining({ id: 'finemed-dpo-7' })]) });
      const paths = hub.requests.map((x) => x.path);
      expect(paths).toEqual(expect.arrayContaining(['/hub/api/datasets/hongzhouyu/FineMed-DPO/tree/main/data', '/hub/api/datasets/hongzhouyu/FineMed-DPO']));
      expect(hub.requests.some((x) => x.path.startsWith('/hub/datasets/hongzhouyu/FineMed-DPO/resolve/main/data/') && x.range)).toBe(true);
      expect(hub.requests.every((x) => x.status < 400)).toBe(true);
    } finally {
      await hub.close();
    }
  });

  it.skipIf(!HAS_SHARED)('loads the embedder from <base>/<org>/<name>/resolve/main, then from the cache with no request', async () => {
    const root = join(dir, 'hub-b');
    cpSync(sharedPath('models', 'tiny-random-bert'), join(root, 'test-org', 'tiny-bge'), { recursive: true });
    const cacheDir = join(dir, 'models-cache');
    const hub = await startHubServer(root);
    try {
      const first = await loadNodeEmbedder('test-org/tiny-bge', { remoteHost: hub.url, cacheDir });
      const v = await first.embed(['What causes gout?']);
      await first.dispose();
      expect(hub.requests.map((x) => x.path)).toEqual(expect.arrayContaining(['/hub/test-org/tiny-bge/resolve/main/onnx/model.onnx']));
      expect(first.source).toEqual({ kind: 'hub', hub: `${hub.url}/`, repo: 'test-org/tiny-bge', revision: 'main' });
      hub.requests.length = 0;
      const again = await loadNodeEmbedder('test-org/tiny-bge', { remoteHost: hub.url, cacheDir });
      expect(Array.from(await again.embed(['What causes gout?']))).toEqual(Array.from(v));
      await again.dispose();
      expect(hub.requests).toEqual([]);
      expect(again.fromCache).toBe(true);
    } finally {
      await hub.close();
    }
  });
});
