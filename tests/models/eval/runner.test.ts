/**
 * The evaluation runner over the real pipeline (askQuestion / askCompare) with a scripted model and
 * retriever: both-mode pairing, refusals logged as skipped, resume after an interruption (no
 * duplicate, no loss, also halfway through a compare), a torn last log line, a log written with
 * other settings, and a failure that is not a refusal.
 */
import { mkdtemp, readFile, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AskModel, AskRetriever, GenerateOutcome } from '../../../models/ask/types.ts';
import { AbortError, EngineError, InvalidInputError } from '../../../models/errors.ts';
import { EvalLogError } from '../../../models/eval/errors.ts';
import { mcqQuestionText, type McqItem } from '../../../models/eval/items.ts';
import { logKey, MemoryEvalLog, type EvalLogLine } from '../../../models/eval/log.ts';
import { NodeEvalLog } from '../../../node/eval/node-log.ts';
import { summarizeEval } from '../../../models/eval/report.ts';
import { runEval, type EvalProgress } from '../../../models/eval/runner.ts';
import { promptFormat } from '../../../models/prompt-format.ts';
import type { CorpusRecord } from '../../../models/retrieval/record.ts';

const TRACE: CorpusRecord = { id: 't1', question: 'Gout?', reasoning: 'Urate.', answer: 'Urate crystals.', source: 'test', license: 'CC0', department: null };

/**
 * Item i: gold letter cycles A-D; without TTT the model answers per `plan[i][0]`, with TTT per
 * `plan[i][1]` (true = the gold letter, false = a wrong one). "too-long" items are refused by
 * preparePrompt like planPrompt does; "nothing" items retrieve nothing.
 */
const PLAN: [boolean, boolean][] = [
  [true, true], [true, false], [false, true], [false, true], [false, true], [false, false], [true, true], [false, false],
];
const GOLD = ['A', 'B', 'C', 'D'];

function makeItems(extra: { tooLong?: number[]; nothing?: number[] } = {}): McqItem[] {
  return PLAN.map((_, i) => ({
    id: `it${i}`, benchmark: i % 2 === 0 ? 'medqa' : 'pubmedqa',
    question: `Stem ${i}${extra.tooLong?.includes(i) ? ' TOO-LONG' : ''}${extra.nothing?.includes(i) ? ' NOTHING' : ''}?`,
    options: (i % 2 === 0 ? { A: 'alpha', B: 'beta', C: 'gamma', D: 'delta' } : { A: 'yes', B: 'no', C: 'maybe' }) as Record<string, string>,
    answer: i % 2 === 0 ? GOLD[i % 4]! : GOLD[i % 3]!, source: 'test', license: 'CC0', subject: null, context: null,
  }));
}

interface FakeOptions {
  /** Abort `controller` when generating this (item, mode). */
  abortAt?: { item: number; mode: 'off' | 'on'; controller: AbortController };
  /** Throw a non-refusal error when training for this item. */
  failTrainAt?: number;
}

function fake(items: McqItem[], o: FakeOptions = {}) {
  const calls: string[] = [];
  const queries: string[] = [];
  const byQuestion = new Map(items.map((it, i) => [mcqQuestionText(it), i]));
  let trained = false;
  const model: AskModel = {
    description: { source: 'fake', backend: 'cpu', weights: 'f32', precision: 'f32' },
    preparePrompt: async (question, req) => {
      if (question.includes('TOO-LONG')) throw new InvalidInputError('The question is too long for this model: 900 tokens, context 512.');
      const i = byQuestion.get(question);
      if (i === undefined) throw new Error(`unexpected question ${question}`);
      return { ids: [i], format: promptFormat('none'), requested: req.system ?? 'o1', fallback: null, contextTokens: 512, answerTokens: Math.min(req.maxNewTokens, 500) };
    },
    ensureAdapter: async () => {},
    train: async (trace, _f, onStep, signal) => {
      calls.push(`train:${trace.id}`);
      if (signal?.aborted) throw new AbortError();
      onStep({ step: 1, steps: 1, loss: 2.5, ms: 1 });
      trained = true;
      return { losses: [2.5], finalLoss: 2.0, stepMs: [1], tokensTrained: 5, sequenceTokens: 9, truncated: false };
    },
    generate: async (ids, _opts, onToken, signal): Promise<GenerateOutcome> => {
      const i = ids[0]!;
      const mode = trained ? 'on' : 'off';
      calls.push(`generate:${i}:${mode}`);
      if (o.failTrainAt === i && trained) throw new EngineError('device-lost', 'The GPU device was lost.');
      const item = items[i]!;
      const right = PLAN[i]![mode === 'on' ? 1 : 0];
      const letters = Object.keys(item.options);
      const letter = right ? item.answer : letters.find((l) => l !== item.answer)!;
      const text = `**Thought**\nWeighing ${letters.join(', ')}.\n**Summarization**\nThe answer is (${letter}).`;
      onToken(text.slice(0, 4), 1);
      if (o.abortAt && o.abortAt.item === i && o.abortAt.mode === mode) o.abortAt.controller.abort();
      if (signal?.aborted) return { ids: [9], text: text.slice(0, 4), stopReason: 'aborted', timings: timings() };
      onToken(text.slice(4), 2); // token events carry the new text only
      return { ids: [9, 9], text, stopReason: 'eos', timings: timings() };
    },
    resetAdapter: async () => {
      trained = false;
      calls.push('reset');
    },
  };
  const retriever: AskRetriever = {
    retrieve: async (q, k) => {
      queries.push(q);
      return { results: q.includes('NOTHING') ? [] : [{ record: TRACE, score: 0.8, rank: 0 }].slice(0, k), retriever: 'lexical', ms: 1 };
    },
  };
  return { model, retriever, calls, queries };
}

function timings() {
  return { prefillTokens: 1, prefillMs: 1, decodeTokens: 1, decodeMs: 1, prefillTokensPerSecond: 1000, decodeTokensPerSecond: 1000 };
}

const SETTINGS = { steps: 1, maxNewTokens: 64 };

function keys(lines: readonly EvalLogLine[]): string[] {
  return lines.map((l) => logKey(l.item, l.mode));
}

describe('runEval', () => {
  it('both: one off and one on line per item, paired through askCompare, letters extracted, McNemar from them', async () => {
    const items = makeItems();
    const f = fake(items);
    const log = new MemoryEvalLog();
    const progress: EvalProgress[] = [];
    const r = await runEval(items, { modes: 'both', settings: SETTINGS, deps: f, log, onProgress: (p) => progress.push(p) });
    expect(r).toMatchObject({ ran: 16, resumed: 0, skipped: 0 });
    expect(keys(r.lines)).toEqual(items.flatMap((it) => [logKey(it.id, 'off'), logKey(it.id, 'on')]));
    for (const [i, item] of items.entries()) {
      const off = r.lines[2 * i]!, on = r.lines[2 * i + 1]!;
      expect(off).toMatchObject({ mode: 'off', gold: item.answer, correct: PLAN[i]![0], method: 'statement', retrieval: null, ttt: null, error: null });
      expect(on).toMatchObject({ mode: 'on', correct: PLAN[i]![1], retrieval: { id: 't1', score: 0.8, retriever: 'lexical' }, ttt: { losses: [2.5], finalLoss: 2 } });
      expect(off.settings).toEqual({ ...on.settings, ttt: false }); // same settings and seed both ways
      expect(on.letter).toBe(/\(([A-D])\)/.exec(on.output)![1]);
    }
    // TTT retrieves with the MCQ stem, not the options and instruction.
    expect(f.queries).toEqual(items.map((it) => it.question));
    expect(f.calls.filter((c) => c.startsWith('generate'))).toEqual(items.flatMap((_, i) => [`generate:${i}:off`, `generate:${i}:on`]));
    expect(progress.map((p) => p.done)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(progress.at(-1)).toMatchObject({ total: 16, etaMs: 0 });

    const s = summarizeEval(r.lines, items, { modes: 'both', log: 'memory' });
    const b = PLAN.filter(([off, on]) => off && !on).length, c = PLAN.filter(([off, on]) => !off && on).length;
    expect(s.mcnemar).toMatchObject({ b, c, pairs: 8, difference: (c - b) / 8 });
    expect(s.accuracy.off).toMatchObject({ n: 8, correct: PLAN.filter((p) => p[0]).length, skipped: 0 });
    expect(s.accuracy.on).toMatchObject({ n: 8, correct: PLAN.filter((p) => p[1]).length, skipped: 0 });
  });

  it('a refusal is logged with its error and skipped: a prompt too long in both modes, nothing retrieved in "on" only', async () => {
    const items = makeItems({ tooLong: [2], nothing: [5] });
    const log = new MemoryEvalLog();
    const r = await runEval(items, { modes: 'both', settings: SETTINGS, deps: fake(items), log });
    expect(r.lines).toHaveLength(16);
    expect(r.skipped).toBe(3);
    const line = (i: number, mode: 'off' | 'on') => r.lines.find((l) => l.item === `it${i}` && l.mode === mode)!;
    expect(line(2, 'off')).toMatchObject({ correct: null, letter: null, error: { code: 'invalid-input', message: expect.stringMatching(/too long/) } });
    expect(line(2, 'on')).toMatchObject({ correct: null, error: { code: 'invalid-input' } });
    expect(line(5, 'off')).toMatchObject({ correct: PLAN[5]![0], error: null }); // the finished half is kept
    expect(line(5, 'on')).toMatchObject({ correct: null, error: { message: expect.stringMatching(/Nothing was retrieved/) } });

    const s = summarizeEval(r.lines, items, { modes: 'both', log: 'memory' });
    expect(s.skipped).toMatchObject({ off: 1, on: 2 });
    expect(s.skipped.reasons.map((x) => x.count).sort()).toEqual([1, 2]);
    expect(s.accuracy.off!.n).toBe(7);
    expect(s.accuracy.on!.n).toBe(6);
    expect(s.mcnemar!.pairs).toBe(6); // pairs need both answers
  });

  it('resumes after an interruption: no duplicate, no lost item, the same lines as an uninterrupted run', async () => {
    const items = makeItems();
    const log = new MemoryEvalLog();
    const controller = new AbortController();
    const first = fake(items);
    await expect(runEval(items, {
      modes: 'both', settings: SETTINGS, deps: first, log, signal: controller.signal,
      onProgress: (p) => { if (p.done === 6) controller.abort(); },
    })).rejects.toBeInstanceOf(AbortError);
    expect(keys(await log.lines())).toHaveLength(6);

    const second = fake(items);
    const r = await runEval(items, { modes: 'both', settings: SETTINGS, deps: second, log });
    expect(r).toMatchObject({ ran: 10, resumed: 6 });
    const all = keys(await log.lines());
    expect(all).toHaveLength(16);
    expect(new Set(all).size).toBe(16);
    expect(second.calls.filter((c) => c.startsWith('generate'))).toHaveLength(10);

    const reference = await runEval(items, { modes: 'both', settings: SETTINGS, deps: fake(items), log: new MemoryEvalLog() });
    const strip = (ls: EvalLogLine[]) => ls.map(({ at: _at, timings: _t, ...rest }) => rest);
    expect(strip(r.lines)).toEqual(strip(reference.lines));
  });

  it('a stop halfway through a compare keeps the finished off answer; the rerun answers only "on" for that item', async () => {
    const items = makeItems();
    const log = new MemoryEvalLog();
    const controller = new AbortController();
    await expect(runEval(items, { modes: 'both', settings: SETTINGS, deps: fake(items, { abortAt: { item: 3, mode: 'on', controller } }), log, signal: controller.signal }))
      .rejects.toBeInstanceOf(AbortError);
    const logged = keys(await log.lines());
    expect(logged).toEqual([...items.slice(0, 3).flatMap((it) => [logKey(it.id, 'off'), logKey(it.id, 'on')]), logKey('it3', 'off')]);

    const again = fake(items);
    await runEval(items, { modes: 'both', settings: SETTINGS, deps: again, log });
    expect(again.calls.filter((c) => c.startsWith('generate:3'))).toEqual(['generate:3:on']);
    expect(new Set(keys(await log.lines())).size).toBe(16);
  });

  it('a failure that is not a refusal ends the run without logging that answer', async () => {
    const items = makeItems();
    const log = new MemoryEvalLog();
    const f = fake(items, { failTrainAt: 1 });
    const err = await runEval(items, { modes: 'on', settings: SETTINGS, deps: f, log }).catch((e: unknown) => e);
    expect((err as EngineError).code).toBe('device-lost');
    expect(keys(await log.lines())).toEqual([logKey('it0', 'on')]);
    expect(f.calls.at(-1)).toBe('reset'); // the pipeline restored the adapter
  });

  it('refuses to resume a log written with other settings or another model, and TTT without a retriever', async () => {
    const items = makeItems();
    const log = new MemoryEvalLog();
    await runEval(items.slice(0, 2), { modes: 'off', settings: SETTINGS, deps: fake(items), log });
    await expect(runEval(items, { modes: 'off', settings: { ...SETTINGS, maxNewTokens: 32 }, deps: fake(items), log })).rejects.toThrow(/maxNewTokens 64 -> 32/);
    await expect(runEval(items, { modes: 'off', settings: SETTINGS, deps: fake(items), log })).resolves.toMatchObject({ ran: 6, resumed: 2 });
    const other = fake(items);
    const moved = { ...other, model: { ...other.model, description: { ...other.model.description, backend: 'webgpu' as const } } };
    await expect(runEval(items, { modes: 'off', settings: SETTINGS, deps: moved, log })).rejects.toBeInstanceOf(EvalLogError);
    await expect(runEval(items, { modes: 'on', settings: SETTINGS, deps: { model: other.model }, log: new MemoryEvalLog() })).rejects.toThrow(/needs a corpus/);
  });
});

describe('NodeEvalLog with the runner', () => {
  let tmp: string;
  beforeAll(async () => { tmp = await mkdtemp(join(tmpdir(), 'eval-log-')); });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('a torn last line is dropped on open and its answer runs again; nothing is duplicated', async () => {
    const items = makeItems();
    const path = join(tmp, 'torn.jsonl');
    const log = await NodeEvalLog.open(path);
    await runEval(items.slice(0, 3), { modes: 'both', settings: SETTINGS, deps: fake(items), log });
    await log.close();
    const whole = await readFile(path, 'utf8');
    expect(whole.trim().split('\n')).toHaveLength(6);
    // An interrupted write of the next line: half of it, no newline.
    const next = (await runEval(items.slice(3, 4), { modes: 'off', settings: SETTINGS, deps: fake(items), log: new MemoryEvalLog() })).lines[0]!;
    await appendFile(path, JSON.stringify(next).slice(0, 80));

    const reopened = await NodeEvalLog.open(path);
    expect(reopened.droppedTorn).toBe(JSON.stringify(next).slice(0, 80));
    expect(await readFile(path, 'utf8')).toBe(whole); // cut back to the last complete line
    const f = fake(items);
    const r = await runEval(items, { modes: 'both', settings: SETTINGS, deps: f, log: reopened });
    await reopened.close();
    expect(r).toMatchObject({ ran: 10, resumed: 6 });
    expect(f.calls.filter((c) => c.startsWith('generate:3'))).toEqual(['generate:3:off', 'generate:3:on']);
    const onDisk = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as EvalLogLine);
    expect(onDisk).toHaveLength(16);
    expect(new Set(keys(onDisk)).size).toBe(16);
  });

  it('a damaged line before the last is an error naming it, not skipped', async () => {
    const path = join(tmp, 'damaged.jsonl');
    const items = makeItems();
    const log = await NodeEvalLog.open(path);
    await runEval(items.slice(0, 2), { modes: 'off', settings: SETTINGS, deps: fake(items), log });
    await log.close();
    const lines = (await readFile(path, 'utf8')).split('\n');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, [lines[0]!.slice(0, 30), lines[1], ''].join('\n'));
    await expect(NodeEvalLog.open(path)).rejects.toThrow(/Line 1 of the evaluation log is not valid JSON/);
  });
});
