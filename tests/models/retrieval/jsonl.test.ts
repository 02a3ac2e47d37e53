import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorpusFormatError } from '../../../models/retrieval/errors.ts';
import { readJsonlCorpus } from '../../../models/retrieval/jsonl.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

const good = (id: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ id, question: `Question ${id}?`, reasoning: 'Because.', answer: 'A.', source: 's', license: 'MIT', department: null, ...extra });

warnIfNoShared('JSONL import of traces.jsonl');

describe.skipIf(!HAS_SHARED)('JSONL import of ../shared/data/traces.jsonl', () => {
  it('streams all 1,747 records with no bad line', async () => {
    let lastBytes = 0;
    const r = await readJsonlCorpus(createReadStream(sharedPath('data', 'traces.jsonl')), { onBadLine: 'stop', onProgress: (p) => (lastBytes = p.bytes) });
    expect(r.records).toHaveLength(1747);
    expect(r.skipped).toBe(0);
    expect(r.badLines).toEqual([]);
    expect(new Set(r.records.map((x) => x.id)).size).toBe(1747);
    expect(r.records[0].id).toBe('huatuo-o1-demo-140');
    expect(r.records.filter((x) => x.department === null).length).toBe(40);
    expect(lastBytes).toBeGreaterThan(2_000_000);
  });

  it('reports bad lines planted in a copy of it by line number', async () => {
    const lines = readFileSync(sharedPath('data', 'traces.jsonl'), 'utf8').trimEnd().split('\n');
    lines[9] = lines[9].slice(0, 100); // line 10: cut short
    const r500 = JSON.parse(lines[499]) as Record<string, unknown>;
    delete r500.question;
    lines[499] = JSON.stringify(r500); // line 500: no question
    lines.push(lines[0]); // line 1748: duplicate id
    const dir = mkdtempSync(join(tmpdir(), 'jsonl-'));
    const path = join(dir, 'planted.jsonl');
    writeFileSync(path, lines.join('\n') + '\n');
    const r = await readJsonlCorpus(createReadStream(path));
    expect(r.records).toHaveLength(1747 - 2);
    expect(r.skipped).toBe(3);
    expect(r.badLines.map((b) => b.line)).toEqual([10, 500, 1748]);
    expect(r.badLines[1].reason).toBe('field "question" is missing');
    expect(r.badLines[2].reason).toBe('duplicate id "huatuo-o1-demo-140" (first used on line 1)');
    await expect(readJsonlCorpus(createReadStream(path), { onBadLine: 'stop' })).rejects.toThrow(/^Line 10: not valid JSON/);
    rmSync(dir, { recursive: true });
  });
});

describe('JSONL import with bad lines', () => {
  const lines = [
    good('a'),
    '{"id": "b", "question": "Q?", "reasoning": "R"', // 2: truncated JSON
    '',                                               // 3: blank, ignored
    good('c', { question: 42 }),                      // 4: wrong type
    good('d'),
    good('a'),                                        // 6: duplicate id
    '[1, 2]',                                         // 7: not an object
    good('e', { reasoning: '   ' }),                  // 8: empty reasoning
    JSON.stringify({ id: 9, question: 'Q9?', reasoning: 'R', answer: '' }), // 9: ok, defaults
  ];
  const text = lines.join('\r\n') + '\n';

  it('skips them with line numbers and reasons, and a count', async () => {
    const r = await readJsonlCorpus(text, { defaults: { source: 'mine.jsonl' } });
    expect(r.records.map((x) => x.id)).toEqual(['a', 'd', '9']);
    expect(r.skipped).toBe(5);
    expect(r.badLines.map((b) => b.line)).toEqual([2, 4, 6, 7, 8]);
    expect(r.badLines[0].reason).toMatch(/not valid JSON/);
    expect(r.badLines[1].reason).toBe('field "question" must be a string, got number 42');
    expect(r.badLines[2].reason).toBe('duplicate id "a" (first used on line 1)');
    expect(r.badLines[3].reason).toMatch(/expected a JSON object, got an array/);
    expect(r.badLines[4].reason).toBe('field "reasoning" is empty');
    expect(r.records[2]).toEqual({ id: '9', question: 'Q9?', reasoning: 'R', answer: '', source: 'mine.jsonl', license: 'unknown', department: null });
  });

  it('stops at the first with onBadLine "stop"', async () => {
    const err = await readJsonlCorpus(text, { onBadLine: 'stop' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorpusFormatError);
    expect((err as CorpusFormatError).code).toBe('invalid-input');
    expect((err as CorpusFormatError).badLines).toEqual([{ line: 2, reason: expect.stringMatching(/not valid JSON/) }]);
    expect((err as Error).message).toMatch(/^Line 2: not valid JSON/);
  });

  it('reads a byte stream split inside lines and inside a multi-byte character', async () => {
    const bytes = new TextEncoder().encode('\ufeff' + good('x', { question: 'Fièvre et céphalée — pourquoi?' }) + '\n' + good('y'));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 7) c.enqueue(bytes.subarray(i, i + 7));
        c.close();
      },
    });
    const r = await readJsonlCorpus(stream);
    expect(r.records.map((x) => x.question)).toEqual(['Fièvre et céphalée — pourquoi?', 'Question y?']);
    expect(r.lines).toBe(2);
  });

  it('refuses an input with no valid record, and one that is not UTF-8', async () => {
    await expect(readJsonlCorpus('not json\n')).rejects.toThrow(/No valid record.*line 1/);
    await expect(readJsonlCorpus('')).rejects.toThrow(/empty/);
    await expect(readJsonlCorpus(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))).rejects.toThrow(/not valid UTF-8/);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(readJsonlCorpus(good('a'), { signal: ac.signal })).rejects.toMatchObject({ code: 'aborted' });
  });
});
