import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLayers, importsOf } from '../../scripts/check-layers.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

describe('check-layers', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function tree(files: Record<string, string>): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), 'layers-'));
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    return dir;
  }

  it('finds static, type-only, side-effect, dynamic and URL imports with their lines', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from '../b.ts';",
      "import './side.css';",
      'export { c } from "./c.ts";',
      "const m = await import('./lazy.ts');",
      "const w = new URL('./w.worker.ts', import.meta.url);",
    ].join('\n');
    expect(importsOf(text)).toEqual([
      { specifier: './a.ts', line: 1 },
      { specifier: '../b.ts', line: 2 },
      { specifier: './side.css', line: 3 },
      { specifier: './c.ts', line: 4 },
      { specifier: './lazy.ts', line: 5 },
      { specifier: './w.worker.ts', line: 6 },
    ]);
  });

  it('the project itself holds its layering', async () => {
    expect(await checkLayers(ROOT)).toEqual([]);
  });

  it('reports each wrong-way import and Node-only package, and accepts the allowed ones', async () => {
    const root = await tree({
      'models/ok.ts': "import { x } from './x.ts';\nimport { pipeline } from '@huggingface/transformers';",
      'models/up.ts': "import { store } from '../workers/store.ts';",
      'models/fs.ts': "import { readFile } from 'node:fs/promises';",
      'models/dawn.ts': "const gpu = await import('webgpu');",
      'workers/ok.ts': "import { m } from '../models/m.ts';\nimport wasm from '../node_modules/pkg/a.wasm?url';",
      'workers/ui.ts': "import { App } from '../app/App.tsx';",
      'app/ok.tsx': "import { c } from '../workers/client.ts';",
      'app/engine.ts': "import { m } from '../models/m.ts';",
      'node/ok.ts': "import { m } from '../models/m.ts';\nimport { readFile } from 'node:fs/promises';",
      'node/cli.ts': "import { run } from '../scripts/run.ts';",
    });
    const found = (await checkLayers(root)).map((v) => `${v.file}:${v.line} ${v.specifier}`).sort();
    expect(found).toEqual([
      'app/engine.ts:1 ../models/m.ts',
      'models/dawn.ts:1 webgpu',
      'models/fs.ts:1 node:fs/promises',
      'models/up.ts:1 ../workers/store.ts',
      'node/cli.ts:1 ../scripts/run.ts',
      'workers/ui.ts:1 ../app/App.tsx',
    ]);
  });
});
