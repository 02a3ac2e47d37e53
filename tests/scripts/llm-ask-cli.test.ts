/**
 * `llm ask`: the TTT pipeline from the command line, on an index built by `index build` from the
 * short-traces fixture (tiny-random-bert) and stories260K on the CPU. The index's embedder is
 * found from its manifest (no --embedder, no network).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompareResult } from '../../models/ask/pipeline.ts';
import type { AskRecord } from '../../models/ask/types.ts';
import { HAS_SHARED, ROOT, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

const run = promisify(execFile);
warnIfNoShared('llm ask with stories260K and tiny-random-bert');

const FIXTURE = join(ROOT, 'tests', 'fixtures', 'short-traces.jsonl');
let tmp: string;
let index: string;

async function cli(script: string, args: string[]): Promise<{ json: unknown; code: number }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 });
    return { json: JSON.parse(stdout.trim().split('\n').at(-1)!), code: 0 };
  } catch (e) {
    const err = e as { stdout: string; code: number };
    return { json: JSON.parse(err.stdout.trim().split('\n').at(-1)!), code: err.code };
  }
}

const model = () => sharedPath('golden', 'stories260K-hf', 'f32');
const common = () => ['--model', model(), '--index', index, '--steps', '2', '--lr', '0.01', '--max-new', '12', '--max-train-tokens', '128', '--backend', 'cpu', '--f32', '--no-cache', '--json'];

describe.skipIf(!HAS_SHARED)('llm ask', () => {
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'llm-ask-'));
    index = join(tmp, 'index');
    const built = await cli('scripts/index.ts', ['build', FIXTURE, '--embedder', sharedPath('models', 'tiny-random-bert'), '--out', index]);
    expect(built.code).toBe(0);
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('prints the record: exact question retrieved first, losses per step, answer, adapters cleared', async () => {
    const { json, code } = await cli('scripts/llm.ts', ['ask', ...common(), '--question', 'Fever and a stiff neck in a student?']);
    expect(code).toBe(0);
    const r = json as AskRecord;
    expect(r).toMatchObject({ version: 1, mode: 'ttt', status: 'done', restored: true, question: 'Fever and a stiff neck in a student?' });
    expect(r.retrieval!.results[0]).toMatchObject({ id: 'short-meningitis', rank: 0 });
    expect(r.retrieval!.results[0]!.score).toBeGreaterThan(0.999);
    expect(r.retrieval!.results).toHaveLength(5); // k defaults to 5; the fixture has 6 records
    expect(r.retrieval!.top!.reasoning).toContain('neck stiffness');
    expect(r.ttt!.losses).toHaveLength(2);
    expect(r.ttt!.finalLoss).toBeLessThan(r.ttt!.losses[0]!);
    expect(r.prompt).toMatchObject({ requested: 'o1', style: 'card' });
    expect(r.prompt.fallback).toMatch(/512-token context/);
    expect(r.answer.tokens).toBeGreaterThan(0);
    expect(r.answer.summary).toBe(r.answer.text.trim()); // stories writes no Thought/Summarization markers
    for (const k of ['retrieveMs', 'trainMs', 'ttftMs', 'generateMs', 'restoreMs', 'totalMs'] as const) expect(r.timings[k]).toBeGreaterThanOrEqual(0);
  });

  it('--ttt compare: the same settings twice; the TTT-off answer equals a plain --ttt off run', async () => {
    const q = 'Why is a child with diabetes so thirsty?';
    const [cmp, off] = await Promise.all([
      cli('scripts/llm.ts', ['ask', ...common(), '--question', q, '--ttt', 'compare']),
      cli('scripts/llm.ts', ['ask', ...common(), '--question', q, '--ttt', 'off']),
    ]);
    const c = cmp.json as CompareResult;
    expect(c.without.mode).toBe('base');
    expect(c.with.mode).toBe('ttt');
    expect(c.without.settings).toEqual({ ...c.with.settings, ttt: false });
    expect(c.differ).toBe(c.without.answer.text !== c.with.answer.text);
    expect((off.json as AskRecord).answer.text).toBe(c.without.answer.text);
    expect((off.json as AskRecord).retrieval).toBeNull();
  });

  it('the paper preset and bad flags', async () => {
    const paper = (await cli('scripts/llm.ts', ['ask', ...common().filter((a, i, all) => a !== '--steps' && all[i - 1] !== '--steps' && a !== '--lr' && all[i - 1] !== '--lr'), '--question', 'What makes a tired patient pale?', '--preset', 'paper'])).json as AskRecord;
    expect(paper.settings).toMatchObject({ steps: 1, lr: 1e-5 });
    expect(paper.ttt!.losses).toHaveLength(1);
    const noIndex = await cli('scripts/llm.ts', ['ask', '--model', model(), '--question', 'Q?', '--backend', 'cpu', '--json']);
    expect(noIndex.code).toBe(2);
    expect(noIndex.json).toMatchObject({ error: { name: 'UsageError', code: 'usage', message: expect.stringMatching(/--index is required/) } });
    const badSystem = await cli('scripts/llm.ts', ['ask', ...common(), '--question', 'Q?', '--system', 'loud']);
    expect(badSystem).toMatchObject({ code: 2, json: { error: { code: 'usage', message: expect.stringMatching(/--system must be one of o1, card, none, custom/) } } });
    const empty = await cli('scripts/llm.ts', ['ask', ...common(), '--question', '   ', '--ttt', 'off']);
    expect(empty).toMatchObject({ code: 1, json: { error: { code: 'invalid-input', message: expect.stringMatching(/question is empty/) } } });
  });
});
