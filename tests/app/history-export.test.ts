import { describe, expect, it } from 'vitest';
import { newEntry } from '../../app/history/entry.ts';
import { entryToJson, entryToMarkdown } from '../../app/history/export.ts';
import { resolveAskSettings, type AskRecord } from '../../workers/ask-session.ts';

function record(mode: 'ttt' | 'base', text: string, id: string): AskRecord {
  return {
    version: 1, id, createdAt: '2026-12-01T10:00:00.000Z', question: 'Why does gout hurt the big toe?', mode, status: 'done',
    settings: resolveAskSettings({ ttt: mode === 'ttt' }),
    model: { source: 'test-org/stories260K', backend: 'webgpu', weights: 'f32', precision: 'f32' },
    prompt: { style: 'card', requested: 'o1', fallback: 'shorter prompt used', tokens: 60, answerTokens: 32 },
    retrieval: mode === 'ttt'
      ? { retriever: 'embedding', k: 2, ms: 4, top: null, results: [{ id: 'short-gout', score: 1, rank: 0, question: 'Why does gout hurt the big toe?', source: 's', license: 'CC0-1.0' }] }
      : null,
    ttt: mode === 'ttt' ? { losses: [4.0762, 2.5189], finalLoss: 1.6809, stepMs: [600, 610], tokensTrained: 40, sequenceTokens: 100, truncated: false } : null,
    answer: { text, reasoning: 'Crystals.', summary: text, structured: true, tokens: 12, stopReason: 'eos' },
    timings: { retrieveMs: mode === 'ttt' ? 4 : null, trainMs: mode === 'ttt' ? 1210 : null, ttftMs: 40, thoughtMs: 200, prefillMs: 40, decodeTokensPerSecond: 9.5, generateMs: 1300, restoreMs: mode === 'ttt' ? 1 : null, totalMs: 2600 },
    restored: mode === 'ttt',
  };
}

describe('history export', () => {
  it('JSON is the stored entry, exactly', () => {
    const e = newEntry([record('base', 'A', 'a'), record('ttt', 'B', 'b')], 'compare', true);
    expect(JSON.parse(entryToJson(e))).toEqual(e);
    expect(e).toMatchObject({ id: 'a', question: 'Why does gout hurt the big toe?', mode: 'compare', differ: true });
  });

  it('Markdown has the question, both answers, the losses, what was retrieved and the disclaimer', () => {
    const md = entryToMarkdown(newEntry([record('base', 'Base answer.', 'a'), record('ttt', 'Adapted answer.', 'b')], 'compare', true));
    expect(md).toContain('# Why does gout hurt the big toe?');
    expect(md).toContain('not medical advice');
    expect(md).toContain('## Without TTT');
    expect(md).toContain('## With TTT');
    expect(md).toContain('Base answer.');
    expect(md).toContain('Adapted answer.');
    expect(md).toContain('loss 4.0762 → 2.5189 → 1.6809');
    expect(md).toContain('1.000 · `short-gout`');
    expect(md).toContain('The two answers differ.');
    expect(md).toContain('adapters cleared: yes');
  });
});
