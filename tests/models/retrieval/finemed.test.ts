import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../models/errors.ts';
import { loadFineMedDpo, type FineMedProgress } from '../../../models/retrieval/finemed-loader.ts';
import { FINEMED_DPO_REPO, parseFineMedRow } from '../../../models/retrieval/finemed-row.ts';
import { fineMedParquet, fineMedRows, startFakeHub, type FakeHub } from './finemed-fixture.ts';

describe('FineMed-DPO row parsing', () => {
  it('takes the user question (without the step-by-step suffix) and splits the answer at Summarization', () => {
    const rows = fineMedRows(7);
    const r0 = parseFineMedRow(rows[0], 0, 'mit');
    expect(r0).toEqual({
      ok: true,
      hasSummary: true,
      record: {
        id: 'finemed-dpo-0',
        question: 'A 24-year-old has fever, neck stiffness and a petechial rash. What is the most likely diagnosis? (case 0)',
        reasoning: '**Thought**\nFever with meningism suggests meningitis. A petechial rash points to Neisseria meningitidis.',
        answer: 'Meningococcal meningitis; give ceftriaxone without delay.',
        source: FINEMED_DPO_REPO,
        license: 'mit',
        department: null,
      },
    });
    for (const i of [1, 2]) {
      const r = parseFineMedRow(rows[i], i, 'mit');
      expect(r.ok && r.record.answer).toMatch(/^(Carcinoma|Renal)/);
      expect(r.ok && r.record.reasoning).not.toMatch(/Summarization/);
    }
    const none = parseFineMedRow(rows[6], 6, 'mit');
    expect(none).toMatchObject({ ok: true, hasSummary: false, record: { answer: '', reasoning: expect.stringMatching(/^\*\*Thought\*\*/) } });
  });

  it('accepts messages stored as JSON text, and rejects rows without a question or answer', () => {
    const row = fineMedRows(1)[0];
    expect(parseFineMedRow({ prompt: JSON.stringify(row.prompt), chosen: JSON.stringify(row.chosen) }, 3, 'x').ok).toBe(true);
    expect(parseFineMedRow({ prompt: [{ role: 'system', content: 'S' }], chosen: row.chosen }, 0, 'x')).toEqual({ ok: false, reason: 'no user message in "prompt"' });
    expect(parseFineMedRow({ prompt: row.prompt, chosen: [] }, 0, 'x')).toEqual({ ok: false, reason: 'no assistant message in "chosen"' });
    expect(parseFineMedRow({ prompt: 'oops', chosen: row.chosen }, 0, 'x')).toEqual({ ok: false, reason: 'column "prompt" is text, not a list of messages' });
    expect(parseFineMedRow({ prompt: [{ role: 'user', content: 'Please think step by step.' }], chosen: row.chosen }, 0, 'x').ok).toBe(false);
  });
});

describe('FineMed-DPO download from a hub-shaped server', () => {
  const repo = FINEMED_DPO_REPO;
  const rows = fineMedRows(50);
  const files = new Map([
    ['data/train-00000-of-00002.parquet', fineMedParquet(rows.slice(0, 30))],
    ['data/train-00001-of-00002.parquet', fineMedParquet(rows.slice(30))],
    ['data/README.txt', new TextEncoder().encode('not parquet')],
  ]);
  const totalFileBytes = [...files.values()].reduce((n, b) => n + b.byteLength, 0);
  let hub: FakeHub;
  beforeAll(async () => {
    hub = await startFakeHub({ repo, files, pageSize: 2, license: 'apache-2.0' });
  });
  afterAll(() => hub.close());

  it('lists data/ (following pagination), reads only prompt and chosen by range, parses all rows', async () => {
    const progress: FineMedProgress[] = [];
    const r = await loadFineMedDpo({ hub: hub.url, onProgress: (p) => progress.push(p) });
    expect(r.files).toEqual(['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet']);
    expect(r.records).toHaveLength(50);
    expect(r.records[37].id).toBe('finemed-dpo-37');
    expect(r.records[37].question).toMatch(/\(case 37\)$/);
    expect(r.records.every((x) => x.license === 'apache-2.0' && x.source === repo)).toBe(true);
    expect(r.withoutSummary).toBe(7); // rows 6, 13, ..., 48
    expect(r.skipped).toBe(0);
    expect(hub.requests.some((q) => q.includes('cursor=2'))).toBe(true);
    // rejected + text are most of each file and are never fetched.
    expect(hub.servedBytes).toBeLessThan(totalFileBytes / 2);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ phase: 'done', rows: 50 });
    expect(last.loadedBytes).toBe(hub.servedBytes);
    expect(last.totalBytes).toBeGreaterThan(0);
    expect(last.totalBytes).toBeLessThanOrEqual(last.loadedBytes);
  });

  it('stops at `limit` rows', async () => {
    const r = await loadFineMedDpo({ hub: hub.url, limit: 12 });
    expect(r.records.map((x) => x.id)).toEqual(Array.from({ length: 12 }, (_, i) => `finemed-dpo-${i}`));
  });

  it('works with a server that ignores Range, and with the parquet export when data/ is absent', async () => {
    const plain = await startFakeHub({ repo, files, ignoreRange: true, noTree: true });
    try {
      const r = await loadFineMedDpo({ hub: plain.url });
      expect(r.records).toHaveLength(50);
      expect(r.license).toBe('see the dataset card');
      expect(plain.requests.some((q) => q.startsWith(`GET /api/datasets/${repo}/parquet/default/train`))).toBe(true);
    } finally {
      await plain.close();
    }
  });

  it('gives typed errors for a missing dataset and an unreachable hub', async () => {
    await expect(loadFineMedDpo({ hub: hub.url, repo: 'nobody/nothing' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(loadFineMedDpo({ hub: 'http://127.0.0.1:9' })).rejects.toMatchObject({ code: 'network' });
  });
});
