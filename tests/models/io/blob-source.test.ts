import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../models/checkpoint.ts';
import { AbortError, NotFoundError, WeightsFormatError } from '../../../models/errors.ts';
import { BlobModelSource } from '../../../models/io/blob-source.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { writeRandomLlama, type RandomLlama } from '../../helpers/random-model.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'blob-src-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Files as `<input webkitdirectory>` gives them: webkitRelativePath starts with the picked folder. */
async function pickedFolder(dir: string, files: string[], top = 'my-model'): Promise<File[]> {
  return Promise.all(
    files.map(async (f) => {
      const file = new File([await readFile(join(dir, f))], f.split('/').pop()!);
      Object.defineProperty(file, 'webkitRelativePath', { value: `${top}/${f}` });
      return file;
    }),
  );
}

describe('BlobModelSource', () => {
  it('reads ranges from a Map of Blobs', async () => {
    const bytes = new Uint8Array(300).map((_, i) => i & 0xff);
    const src = new BlobModelSource(new Map([['./w.bin', new Blob([bytes])]]));
    const f = await src.open('w.bin');
    expect(f.size).toBe(300);
    expect(await f.read(250, 50)).toEqual(bytes.slice(250));
    expect(await src.exists('/w.bin')).toBe(true);
    await expect(f.read(290, 20)).rejects.toThrow(WeightsFormatError);
    await expect(src.open('x.bin')).rejects.toThrow(NotFoundError);
    await expect(src.readText('config.json')).rejects.toMatchObject({ code: 'not-found' });
    const ac = new AbortController();
    ac.abort();
    await expect(f.read(0, 1, ac.signal)).rejects.toThrow(AbortError);
  });

  it('maps File names: webkitRelativePath minus the top folder, else the name', async () => {
    const a = new File(['{}'], 'config.json');
    Object.defineProperty(a, 'webkitRelativePath', { value: 'Llama/config.json' });
    const b = new File(['x'], 'tokenizer.json');
    const c = new File(['y'], 'x.json');
    Object.defineProperty(c, 'webkitRelativePath', { value: 'Llama/sub/x.json' });
    const src = new BlobModelSource([a, b, c]);
    expect(src.paths().sort()).toEqual(['config.json', 'sub/x.json', 'tokenizer.json']);
    expect(await src.readText('config.json')).toBe('{}');
  });

  for (const sharded of [false, true]) {
    it(`reads a generated ${sharded ? 'sharded ' : ''}model identically to NodeDirSource`, async () => {
      const dir = join(root, sharded ? 'sharded' : 'single');
      const written: RandomLlama = await writeRandomLlama(dir, {
        seed: 3, hiddenSize: 32, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 4, vocabSize: 50, dtype: 'BF16', sharded,
      });
      const fromBlob = await openCheckpoint(new BlobModelSource(await pickedFolder(dir, written.files)));
      const fromDisk = await openCheckpoint(new NodeDirSource(dir));
      expect(fromBlob.config).toEqual(fromDisk.config);
      expect(fromBlob.totalBytes).toBe(fromDisk.totalBytes);
      for (const name of fromDisk.tensors.keys()) {
        expect(await fromBlob.readTensor(name)).toEqual(await fromDisk.readTensor(name));
      }
      expect(await fromBlob.readRows('model.embed_tokens.weight', 7, 3)).toEqual(await fromDisk.readRows('model.embed_tokens.weight', 7, 3));
    });
  }
});
