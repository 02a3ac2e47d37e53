/**
 * `eval run` for real: stories260K on the CPU over 40 items of ../shared/data/eval-mcq.jsonl with
 * TTT off and on (BM25 over the traces, no embedder), writing the log, summary.json and the
 * Markdown table; then a rerun that resumes (nothing run twice), a torn last line that runs
 * again, and `eval extract` over stdin. The stand-in model's accuracy is at chance or below and is
 * not asserted; files, counts, pairing and McNemar's numbers recomputed from the log are.
 *
 * Kept CI-sized: no system prompt and a 1024-token context (PubMedQA's abstracts do not fit: those
 * items are refused and reported as skipped), 12 new tokens, one TTT step on at most 192 tokens,
 * and a corpus of the traces whose question is at most 200 characters (a longer trace's prompt
 * alone would exceed the trained length and be refused).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalLogLine } from '../../models/eval/log.ts';
import type { EvalSummary } from '../../models/eval/report.ts';
import { mcnemarExact } from '../../models/eval/stats.ts';
import { HAS_SHARED, ROOT, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

const exec = promisify(execFile);
warnIfNoShared('eval run with stories260K on 40 MCQ items');

type RunJson = EvalSummary & { run: { ran: number; resumed: number; skipped: number; ms: number } | null; selection: { sample: number; seed: number } };

async function evalCli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', ...args], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as RunJson & { error?: { name: string; code: string; message: string } };

let tmp: string;
let out: string;
const runArgs = () => [
  'run', '--model', sharedPath('golden', 'stories260K-hf', 'f32'), '--data', sharedPath('data', 'eval-mcq.jsonl'), '--corpus', join(tmp, 'short-traces.jsonl'),
  '--ttt', 'both', '--sample', '40', '--seed', '3', '--out', out, '--steps', '1', '--lr', '1e-3', '--max-new', '12', '--max-train-tokens', '192',
  '--system', 'none', '--max-context', '1024', '--backend', 'cpu', '--f32', '--no-cache', '--json',
];

async function readLog(): Promise<EvalLogLine[]> {
  return (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as EvalLogLine);
}

describe.skipIf(!HAS_SHARED)('eval run (stories260K, CPU, 40 items, --ttt both)', () => {
  let first: RunJson;
  let firstMs: number;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'eval-cli-'));
    out = join(tmp, 'out');
    const traces = (await readFile(sharedPath('data', 'traces.jsonl'), 'utf8')).split('\n').filter((l) => l.trim() !== '');
    await writeFile(join(tmp, 'short-traces.jsonl'), traces.filter((l) => (JSON.parse(l) as { question: string }).question.length <= 200).join('\n') + '\n');
    const t0 = performance.now();
    const r = await evalCli(runArgs());
    firstMs = performance.now() - t0;
    if (r.code !== 0) throw new Error(`eval run failed (${r.code}): ${r.stdout}\n${r.stderr}`);
    first = lastJson(r.stdout);
  }, 300_000);
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('writes the log, summary.json and the Markdown table; every item answered or skipped in both modes', async () => {
    console.log(`[eval-cli] 40 items x 2 modes in ${(firstMs / 1000).toFixed(1)} s; skipped off ${first.skipped.off}, on ${first.skipped.on}\n${await readFile(join(out, 'summary.md'), 'utf8')}`);
    expect(first).toMatchObject({ items: 40, modes: ['off', 'on'], missing: 0, log: join(out, 'log.jsonl'), run: { ran: 80, resumed: 0 } });
    expect(JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'))).toEqual(first);
    for (const mode of ['off', 'on'] as const) expect(first.accuracy[mode]!.n + first.skipped[mode]!).toBe(40);
    expect(first.skipped.on!).toBeLessThan(20); // most items run
    const md = await readFile(join(out, 'summary.md'), 'utf8');
    expect(md).toMatch(/^\| Benchmark \| Items \| Chance \| TTT off \| TTT on \| On − off \| b \/ c \| McNemar p \| Skipped \|/);
    for (const b of Object.keys(first.byBenchmark)) expect(md).toContain(`| ${b} | ${first.byBenchmark[b]!.items} | `);
    expect(md).toContain('| **All** | 40 | ');
    expect(first.byBenchmark.pubmedqa?.chance).toBeCloseTo(1 / 3, 12);
  });

  it('pairs each item off and on with the same settings, and McNemar equals its recount from the log', async () => {
    const lines = await readLog();
    expect(lines).toHaveLength(80);
    const keys = lines.map((l) => `${l.item}|${l.mode}`);
    expect(new Set(keys).size).toBe(80);
    const ids = [...new Set(lines.map((l) => l.item))];
    expect(ids).toHaveLength(40);
    let b = 0, c = 0, pairs = 0;
    for (const id of ids) {
      const off = lines.find((l) => l.item === id && l.mode === 'off')!;
      const on = lines.find((l) => l.item === id && l.mode === 'on')!;
      expect(off.settings).toEqual({ ...on.settings, ttt: false });
      expect(on.settings).toMatchObject({ ttt: true, steps: 1, lr: 1e-3, maxNewTokens: 12, maxTrainTokens: 192, system: 'none' });
      if (on.error === null) {
        expect(on.retrieval).toMatchObject({ retriever: 'lexical' });
        expect(on.ttt!.losses).toHaveLength(1);
      }
      if (off.correct !== null) expect(off.correct).toBe(off.letter === off.gold);
      if (off.correct !== null && on.correct !== null) {
        pairs++;
        if (off.correct && !on.correct) b++;
        if (!off.correct && on.correct) c++;
      }
    }
    expect(first.mcnemar).toEqual({ ...mcnemarExact(b, c), pairs, difference: (c - b) / pairs });
  });

  it('a rerun with the same --out resumes: nothing run again, the same numbers', async () => {
    const r = await evalCli(runArgs());
    expect(r.code).toBe(0);
    const again = lastJson(r.stdout);
    expect(again.run).toMatchObject({ ran: 0, resumed: 80 });
    expect({ ...again, run: null }).toEqual({ ...first, run: null });
    expect(r.stderr).toMatch(/80 answers in .*log\.jsonl already/);
    expect(await readLog()).toHaveLength(80);
  }, 120_000);

  it('a torn last line is dropped and that one answer runs again', async () => {
    const path = join(out, 'log.jsonl');
    const text = await readFile(path, 'utf8');
    const lastStart = text.slice(0, -1).lastIndexOf('\n') + 1;
    await truncate(path, Buffer.byteLength(text.slice(0, lastStart + 40), 'utf8'));
    const r = await evalCli(runArgs());
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/dropped the torn last line/);
    expect(lastJson(r.stdout).run).toMatchObject({ ran: 1, resumed: 79 });
    const lines = await readLog();
    expect(lines).toHaveLength(80);
    expect(new Set(lines.map((l) => `${l.item}|${l.mode}`)).size).toBe(80);
  }, 120_000);

  it('usage errors and a bad data file are typed errors on stdout', async () => {
    const noCorpus = await evalCli(runArgs().filter((a, i, all) => a !== '--corpus' && all[i - 1] !== '--corpus'));
    expect(noCorpus.code).toBe(2);
    expect(lastJson(noCorpus.stdout).error).toMatchObject({ name: 'UsageError', code: 'usage', message: expect.stringMatching(/--ttt on\/both needs --index <dir> .* or --corpus <jsonl>/) });
    const bad = join(tmp, 'bad.jsonl');
    await writeFile(bad, '{"id": "x", "question": "Q?", "options": {"A": "a", "B": "b"}, "answer": "A"}\n{"id": "y"}\n');
    const r = await evalCli(['run', '--model', sharedPath('golden', 'stories260K-hf', 'f32'), '--data', bad, '--ttt', 'off', '--out', join(tmp, 'o2'), '--backend', 'cpu', '--f32', '--json']);
    expect(r.code).toBe(1);
    expect(lastJson(r.stdout)).toMatchObject({ error: { name: 'McqFormatError', code: 'invalid-input', message: expect.stringMatching(/line 2: field "question"/) } });
    expect(existsSync(join(tmp, 'o2'))).toBe(false); // refused before anything was written
  });
});

describe('eval extract', () => {
  it('one letter line per input line, a typed error naming a bad line', async () => {
    const input = [
      { output: '**Thought**\nA and B are wrong.\n**Summarization**\nThe answer is (C).', options: { A: 'x', B: 'y', C: 'z' } },
      { output: 'No, the tendon response did not differ.', options: { A: 'yes', B: 'no', C: 'maybe' } },
      { output: 'Once upon a time there was a dog.', options: { A: 'x', B: 'y' } },
    ].map((x) => JSON.stringify(x));
    const stdin = [input[0], '', input[1], '{"output": 3}', input[2]].join('\n') + '\n';
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', 'extract'], { cwd: ROOT });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stdin.end(stdin);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toEqual({ letter: 'C' });
    expect(lines[1]).toEqual({ letter: 'B' });
    expect(lines[2]).toMatchObject({ line: 4, error: { name: 'McqFormatError', code: 'invalid-input', message: expect.stringMatching(/^Line 4: .*"output" must be a string/) } });
    expect(lines[3]).toEqual({ letter: null });
    expect(code).toBe(1);
  });
});
