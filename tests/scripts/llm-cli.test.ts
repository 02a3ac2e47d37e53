import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HAS_SHARED, ROOT, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

const run = promisify(execFile);
warnIfNoShared('llm CLI golden run');

async function cli(args: string[]): Promise<{ json: Record<string, unknown>; code: number }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/llm.ts', ...args], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 });
    return { json: JSON.parse(stdout.trim().split('\n').at(-1)!), code: 0 };
  } catch (e) {
    const err = e as { stdout: string; code: number };
    return { json: JSON.parse(err.stdout.trim().split('\n').at(-1)!), code: err.code };
  }
}

describe('npm run llm -- generate', () => {
  it.skipIf(!HAS_SHARED)('prints ids, text, last_logits and timings as JSON on its last line (webgpu, f32)', async () => {
    const g = JSON.parse(readFileSync(sharedPath('golden/forward-stories260K.json'), 'utf8'));
    const { json, code } = await cli(['generate', '--model', sharedPath('golden/stories260K-hf/f32'), '--ids', g.cases[0].ids.join(','), '--max-new', '32', '--greedy', '--backend', 'webgpu', '--f32', '--precision', 'f32', '--json']);
    expect(code).toBe(0);
    expect(json.ids).toEqual(g.cases[0].greedy_32);
    const last = json.last_logits as number[];
    expect(Math.max(...last.map((v, i) => Math.abs(v - g.cases[0].last_logits[i])))).toBeLessThan(1e-3);
    expect(json.timings).toHaveProperty('decodeTokensPerSecond');
  });

  it('reports a typed error as JSON and exits 1 for a missing model folder', async () => {
    const { json, code } = await cli(['generate', '--model', '/nonexistent/model', '--ids', '1', '--backend', 'cpu', '--json']);
    expect(code).toBe(1);
    expect(json).toMatchObject({ error: { name: 'NotFoundError', code: 'not-found', message: expect.stringContaining('/nonexistent/model') } });
  });
});
