import { describe, expect, it } from 'vitest';
import { splitAnswer } from '../../../models/ask/output-split.ts';

const FINAL = '**Thought**\nThe pain is exertional and radiates to the jaw.\n\nST elevation in V1-V4.\n\n**Summarization**\nAnterior STEMI: primary PCI now.';

describe('splitAnswer', () => {
  it('splits a finished FineMedLM-o1 answer at Summarization and drops the Thought heading', () => {
    expect(splitAnswer(FINAL, { done: true })).toEqual({
      reasoning: 'The pain is exertional and radiates to the jaw.\n\nST elevation in V1-V4.',
      answer: 'Anterior STEMI: primary PCI now.',
      phase: 'answering',
      structured: true,
    });
  });

  it('output without markers is all answer, streaming or done', () => {
    const text = 'Once upon a time, there was a little girl named Lily.';
    expect(splitAnswer(text, { done: false })).toEqual({ reasoning: '', answer: text, phase: 'answering', structured: false });
    expect(splitAnswer(`  ${text}\n`, { done: true })).toEqual({ reasoning: '', answer: text, phase: 'answering', structured: false });
  });

  it('streams every prefix without a heading ever showing up in the reasoning or answer', () => {
    let sawThinking = false, sawAnswering = false;
    for (let n = 1; n <= FINAL.length; n++) {
      const p = splitAnswer(FINAL.slice(0, n), { done: false });
      expect(p.reasoning).not.toMatch(/summar|\*\*s/i);
      expect(p.answer).not.toMatch(/thought|summarization/i);
      expect(p.reasoning).not.toMatch(/^\*|thought/i);
      if (p.phase === 'thinking') {
        sawThinking = true;
        expect(sawAnswering).toBe(false); // never back to thinking once answering
        expect(p.answer).toBe('');
      } else {
        sawAnswering = true;
      }
      // whatever is shown is a prefix of the final parts
      expect('The pain is exertional and radiates to the jaw.\n\nST elevation in V1-V4.'.startsWith(p.reasoning)).toBe(true);
      expect('Anterior STEMI: primary PCI now.'.startsWith(p.answer)).toBe(true);
    }
    expect(sawThinking).toBe(true);
    expect(sawAnswering).toBe(true);
  });

  it('holds back a half-written Summarization heading while streaming', () => {
    const p = splitAnswer('## Thought\nUrate crystals in the joint.\n## Summari', { done: false });
    expect(p).toEqual({ reasoning: 'Urate crystals in the joint.', answer: '', phase: 'thinking', structured: true });
    // a normal last line is shown at once
    expect(splitAnswer('## Thought\nUrate crystals in the joint.\nSodium', { done: false }).reasoning).toBe('Urate crystals in the joint.\nSodium');
  });

  it('a Thought without Summarization at the end is reasoning with an empty answer (cut off)', () => {
    expect(splitAnswer('Thought: the answer was cut off here', { done: true })).toEqual({
      reasoning: 'the answer was cut off here', answer: '', phase: 'answering', structured: true,
    });
  });

  it('the last Summarization wins and heading variants are recognised', () => {
    for (const heading of ['## Summarization', 'Summarization:', '**Summarisation:**', '3. **Summarization**']) {
      const p = splitAnswer(`**Thought**\nA\n${heading}\nB`, { done: true });
      expect(p.answer).toBe('B');
      expect(p.reasoning).toBe('A');
    }
    expect(splitAnswer('Thought\nA\nSummarization\nfirst\nThought again\nSummarization\nfinal', { done: true }).answer).toBe('final');
  });

  it('a partial Thought heading at the very start is thinking with nothing shown yet', () => {
    expect(splitAnswer('**Tho', { done: false })).toEqual({ reasoning: '', answer: '', phase: 'thinking', structured: true });
    expect(splitAnswer('**Tho', { done: true }).answer).toBe('**Tho');
  });
});
