/**
 * MCQ items: parsing and validation (bad lines named by number), the benchmark rule, seeded
 * sampling (deterministic, without replacement, in file order), and the question text.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { McqFormatError } from '../../../models/eval/errors.ts';
import { extractAnswer } from '../../../models/eval/extract.ts';
import { benchmarkOf, chanceOf, MCQ_INSTRUCTION, mcqQuestionText, parseMcqJsonl, selectItems } from '../../../models/eval/items.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('MCQ parsing of ../shared/data/eval-mcq.jsonl');

const item = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id, question: `Question ${id}?`, options: { A: 'yes', B: 'no', C: 'maybe' }, answer: 'B', ...extra });

describe('parseMcqJsonl', () => {
  it('reads items, skipping blank lines and a BOM', () => {
    const { items, badLines } = parseMcqJsonl(`\ufeff${item('medqa-1')}\n\n${item('x-2', { source: 'pubmedqa/pubmedqa/data/ori_pqal.json', context: 'Abstract.' })}\n`);
    expect(badLines).toEqual([]);
    expect(items).toHaveLength(2);
    expect(items[0]).toMatchObject({ id: 'medqa-1', answer: 'B', benchmark: 'medqa', context: null, subject: null, source: 'unknown', license: 'unknown' });
    expect(items[1]).toMatchObject({ benchmark: 'pubmedqa', context: 'Abstract.' });
  });

  it('names every bad line with its number and reason', () => {
    const text = [
      item('a'),
      '{not json',
      JSON.stringify({ id: 'b', question: 'Q?', options: { A: 'x', C: 'y' }, answer: 'A' }),
      JSON.stringify({ id: 'c', question: 'Q?', options: { A: 'x', B: 'y' }, answer: 'C' }),
      item('a'),
      JSON.stringify({ id: 'd', question: '', options: { A: 'x', B: 'y' }, answer: 'A' }),
      JSON.stringify({ id: 'e', question: 'Q?', options: { A: 'x' }, answer: 'A' }),
      JSON.stringify({ id: 'f', question: 'Q?', options: { A: 'x', B: 7 }, answer: 'A' }),
    ].join('\n');
    let err: unknown;
    try {
      parseMcqJsonl(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(McqFormatError);
    const bad = (err as McqFormatError).badLines;
    expect(bad.map((b) => b.line)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(bad[0]!.reason).toMatch(/not valid JSON/);
    expect(bad[1]!.reason).toMatch(/expected "B", got "C"/);
    expect(bad[2]!.reason).toMatch(/"answer" must be one of the option letters A, B/);
    expect(bad[3]!.reason).toMatch(/duplicate id "a" \(first used on line 1\)/);
    expect(bad[4]!.reason).toMatch(/"question"/);
    expect(bad[5]!.reason).toMatch(/at least two/);
    expect(bad[6]!.reason).toMatch(/option B must be a non-empty string/);
    expect((err as McqFormatError).code).toBe('invalid-input');
    expect((err as McqFormatError).message).toMatch(/^7 bad lines in the MCQ file: line 2: .*; and 2 more\.$/);

    const skipped = parseMcqJsonl(text, { onBadLine: 'skip' });
    expect(skipped.items.map((i) => i.id)).toEqual(['a']);
    expect(skipped.badLines).toHaveLength(7);
  });

  it('refuses a file with no items', () => {
    expect(() => parseMcqJsonl('\n\n')).toThrow(McqFormatError);
  });
});

describe('benchmarkOf', () => {
  it('field, then id prefix, then source, then "other"', () => {
    expect(benchmarkOf({ id: 'medqa-1', source: 'x', benchmark: 'MyBench' })).toBe('mybench');
    expect(benchmarkOf({ id: 'medmcqa-dev-1', source: 'anything' })).toBe('medmcqa');
    expect(benchmarkOf({ id: '17', source: 'pubmedqa/pubmedqa/data/ori_pqal.json' })).toBe('pubmedqa');
    expect(benchmarkOf({ id: '18', source: 'Teddy-XiongGZ/MIRAGE/rawdata/medqa/x.jsonl' })).toBe('medqa');
    expect(benchmarkOf({ id: '19', source: 'Teddy-XiongGZ/MIRAGE/rawdata/mmlu/data/test/anatomy_test.csv' })).toBe('mmlu');
    expect(benchmarkOf({ id: 'q1', source: 'my-exam.jsonl' })).toBe('other');
  });
});

describe('selectItems', () => {
  const items = parseMcqJsonl(Array.from({ length: 50 }, (_, i) => item(`i${i}`)).join('\n')).items;

  it('samples deterministically, without repeats, in file order', () => {
    const a = selectItems(items, { sample: 10, seed: 7 });
    const b = selectItems(items, { sample: 10, seed: 7 });
    const c = selectItems(items, { sample: 10, seed: 8 });
    expect(a).toHaveLength(10);
    expect(a.map((x) => x.id)).toEqual(b.map((x) => x.id));
    expect(a.map((x) => x.id)).not.toEqual(c.map((x) => x.id));
    expect(new Set(a.map((x) => x.id)).size).toBe(10);
    const positions = a.map((x) => items.indexOf(x));
    expect(positions).toEqual([...positions].sort((p, q) => p - q));
  });

  it('limit keeps the first N (of the sample); a sample above the count is everything', () => {
    expect(selectItems(items, { limit: 3 }).map((x) => x.id)).toEqual(['i0', 'i1', 'i2']);
    expect(selectItems(items, { sample: 10, seed: 7, limit: 4 }).map((x) => x.id)).toEqual(selectItems(items, { sample: 10, seed: 7 }).slice(0, 4).map((x) => x.id));
    expect(selectItems(items, { sample: 500 })).toHaveLength(50);
    expect(() => selectItems(items, { limit: 0 })).toThrow(/limit must be a positive integer/);
    expect(() => selectItems(items, { sample: 2.5 })).toThrow(/sample/);
  });
});

describe('mcqQuestionText', () => {
  it('context, question, lettered options, then the instruction the extractor reads', () => {
    const text = mcqQuestionText({ question: ' Does it help? ', options: { A: 'yes', B: 'no', C: 'maybe' }, context: 'Background: a trial.' });
    expect(text).toBe(`Context: Background: a trial.\n\nQuestion: Does it help?\n\nOptions:\nA. yes\nB. no\nC. maybe\n\n${MCQ_INSTRUCTION}`);
    expect(mcqQuestionText({ question: 'Q?', options: { A: 'x', B: 'y' }, context: null }).startsWith('Question: Q?')).toBe(true);
    // An answer written the way the instruction asks is extracted by the first rule.
    expect(extractAnswer('**Thought**\n...\n**Summarization**\nThe answer is (B).', { A: 'yes', B: 'no', C: 'maybe' })).toEqual({ letter: 'B', method: 'statement' });
    expect(chanceOf({ options: { A: 'yes', B: 'no', C: 'maybe' } })).toBeCloseTo(1 / 3, 12);
  });
});

describe.skipIf(!HAS_SHARED)('../shared/data/eval-mcq.jsonl', () => {
  it('parses whole: 300 items per benchmark, PubMedQA with its abstract and three options', () => {
    const { items } = parseMcqJsonl(readFileSync(sharedPath('data', 'eval-mcq.jsonl'), 'utf8'));
    expect(items).toHaveLength(1200);
    const count = (b: string) => items.filter((i) => i.benchmark === b).length;
    expect([count('medqa'), count('medmcqa'), count('pubmedqa'), count('mmlu')]).toEqual([300, 300, 300, 300]);
    const pubmed = items.filter((i) => i.benchmark === 'pubmedqa');
    expect(pubmed.every((i) => i.context !== null && Object.keys(i.options).join('') === 'ABC')).toBe(true);
    expect(items.filter((i) => i.benchmark !== 'pubmedqa').every((i) => i.context === null)).toBe(true);
  });
});
