/**
 * The summary and its Markdown: accuracy with Wilson intervals per mode and benchmark, chance per
 * benchmark, McNemar on the pairs, skipped answers apart from wrong ones, unfinished runs.
 */
import { describe, expect, it } from 'vitest';
import { ASK_DEFAULTS } from '../../../models/ask/settings.ts';
import type { McqItem } from '../../../models/eval/items.ts';
import { EVAL_LOG_VERSION, MemoryEvalLog, parseEvalLog, type EvalLogLine, type EvalMode } from '../../../models/eval/log.ts';
import { evalMarkdown, summarizeEval } from '../../../models/eval/report.ts';
import { mcnemarExact, wilson } from '../../../models/eval/stats.ts';

const item = (id: string, benchmark: string, n: number): McqItem => ({
  id, benchmark, question: 'Q?', options: Object.fromEntries(Array.from({ length: n }, (_, i) => [String.fromCharCode(65 + i), `o${i}`])),
  answer: 'A', source: 's', license: 'l', subject: null, context: null,
});

function line(it: McqItem, mode: EvalMode, correct: boolean | null, letter: string | null = correct ? 'A' : 'B'): EvalLogLine {
  return {
    v: EVAL_LOG_VERSION, item: it.id, benchmark: it.benchmark, mode, gold: 'A', options: Object.keys(it.options).length,
    letter: correct === null ? null : letter, correct, method: correct === null ? null : letter ? 'statement' : 'none', retrieval: null, ttt: null,
    output: '', prompt: null, stopReason: correct === null ? null : 'eos', timings: null, settings: { ...ASK_DEFAULTS, targets: [...ASK_DEFAULTS.targets], ttt: mode === 'on' },
    model: { source: 'm', backend: 'cpu', weights: 'f32', precision: 'f32' },
    error: correct === null ? { code: 'invalid-input', message: `The question is too long: ${it.id.length * 100} tokens.` } : null, at: '2025-01-01T00:00:00.000Z',
  };
}

describe('summarizeEval', () => {
  const medqa = Array.from({ length: 10 }, (_, i) => item(`m${i}`, 'medqa', 4));
  const pubmed = Array.from({ length: 6 }, (_, i) => item(`p${i}`, 'pubmedqa', 3));
  const items = [...pubmed, ...medqa]; // benchmarks are listed in the known order, not file order
  // medqa: off right on 0-4, on right on 2-8 -> b = 2 (0, 1), c = 4 (5-8); m9 skipped both ways.
  const lines = [
    ...medqa.slice(0, 9).flatMap((it, i) => [line(it, 'off', i <= 4), line(it, 'on', i >= 2)]),
    line(medqa[9]!, 'off', null), line(medqa[9]!, 'on', null),
    // pubmed: p0-p3 answered off (p0 right, p3 without a letter), p0-p2 on (all right); p4, p5 not run yet.
    line(pubmed[0]!, 'off', true), line(pubmed[1]!, 'off', false), line(pubmed[2]!, 'off', false), line(pubmed[3]!, 'off', false, null),
    line(pubmed[0]!, 'on', true), line(pubmed[1]!, 'on', true), line(pubmed[2]!, 'on', true),
    line(item('elsewhere', 'mmlu', 4), 'off', true), // not in this selection: ignored
  ];
  const s = summarizeEval(lines, items, { modes: 'both', log: 'out/log.jsonl' });

  it('per benchmark and overall, with chance, Wilson intervals and McNemar on the pairs', () => {
    expect(Object.keys(s.byBenchmark)).toEqual(['medqa', 'pubmedqa']);
    const m = s.byBenchmark.medqa!;
    expect(m).toMatchObject({ items: 10, chance: 0.25 });
    expect(m.accuracy.off).toEqual({ n: 9, correct: 5, accuracy: 5 / 9, ci95: wilson(5, 9), skipped: 1, noAnswer: 0 });
    expect(m.accuracy.on).toEqual({ n: 9, correct: 7, accuracy: 7 / 9, ci95: wilson(7, 9), skipped: 1, noAnswer: 0 });
    expect(m.mcnemar).toEqual({ ...mcnemarExact(2, 4), pairs: 9, difference: 2 / 9 });
    const p = s.byBenchmark.pubmedqa!;
    expect(p.chance).toBeCloseTo(1 / 3, 12);
    expect(p.accuracy.off).toMatchObject({ n: 4, correct: 1, noAnswer: 1, skipped: 0 });
    expect(p.mcnemar).toMatchObject({ b: 0, c: 2, pairs: 3 });
    expect(s).toMatchObject({ items: 16, modes: ['off', 'on'], missing: 5, log: 'out/log.jsonl' }); // p3 on, p4 and p5 both ways
    expect(s.chance).toBeCloseTo((10 * 0.25 + 6 / 3) / 16, 12);
    expect(s.accuracy.off).toMatchObject({ n: 13, correct: 6, skipped: 1 });
    expect(s.mcnemar).toMatchObject({ b: 2, c: 6, pairs: 12 });
    expect(s.skipped).toEqual({ off: 1, on: 1, reasons: [{ code: 'invalid-input', count: 2, example: 'The question is too long: 200 tokens.' }] });
    expect(s.settings).not.toHaveProperty('ttt');
    expect(s.model).toMatchObject({ source: 'm' });
  });

  it('one mode only: no McNemar, no on key', () => {
    const off = summarizeEval(lines.filter((l) => l.mode === 'off'), items, { modes: 'off', log: 'x' });
    expect(off.accuracy.on).toBeUndefined();
    expect(off.mcnemar).toBeUndefined();
    expect(off.skipped).not.toHaveProperty('on');
    expect(evalMarkdown(off)).not.toMatch(/McNemar/);
  });

  it('the Markdown table: a row per benchmark and All, chance labelled, skipped and unfinished said', () => {
    const md = evalMarkdown(s);
    const rows = md.split('\n').filter((r) => r.startsWith('| '));
    expect(rows).toHaveLength(5);
    expect(rows[0]).toBe('| Benchmark | Items | Chance | TTT off | TTT on | On − off | b / c | McNemar p | Skipped |');
    expect(rows[2]).toBe(`| medqa | 10 | 25.0% | 55.6% (26.7%–81.1%) 5/9 | 77.8% (45.3%–93.7%) 7/9 | +22.2 pt | 2 / 4 | ${mcnemarExact(2, 4).p.toFixed(3)} | 1 / 1 |`);
    expect(rows[4]).toMatch(/^\| \*\*All\*\* \| 16 \| 28\.1% \|/);
    expect(md).toMatch(/chance = 1 \/ number of options/);
    expect(md).toMatch(/not counted as wrong/);
    expect(md).toMatch(/2 × invalid-input/);
    expect(md).toMatch(/No letter found: off 1\./);
    expect(md).toMatch(/Unfinished: 5 answers not run yet/);
  });
});

describe('parseEvalLog', () => {
  const it0 = item('a', 'medqa', 4);
  const good = JSON.stringify(line(it0, 'off', true));

  it('reads lines, keeps a torn tail apart, and round-trips the memory log', async () => {
    const mem = new MemoryEvalLog();
    await mem.append(line(it0, 'off', true));
    await mem.append(line(it0, 'on', null));
    const text = mem.toJsonl();
    expect(parseEvalLog(text)).toEqual({ lines: await mem.lines(), completeLength: text.length, torn: null });
    const torn = parseEvalLog(text + good.slice(0, 20));
    expect(torn.lines).toHaveLength(2);
    expect(torn).toMatchObject({ completeLength: text.length, torn: good.slice(0, 20) });
    expect(await mem.done()).toEqual(new Set(['a|off', 'a|on']));
  });

  it('refuses repeats and lines that are not log lines, naming the line', () => {
    expect(() => parseEvalLog(`${good}\n\n${good}\n`)).toThrow(/Line 3 .* repeats item a \(off\) of line 1/);
    expect(() => parseEvalLog(`${good}\n{"v":1,"item":"b"}\n`)).toThrow(/Line 2 of the evaluation log is not a log line: mode/);
    const bad = { ...line(it0, 'on', true), error: { code: 'invalid-input', message: 'x' } };
    expect(() => parseEvalLog(`${JSON.stringify(bad)}\n`)).toThrow(/correct is null exactly when/);
  });
});
