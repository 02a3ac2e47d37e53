import { promptFormat } from '../../../models/prompt-format.ts';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { InvalidInputError } from '../../../models/errors.ts';
import { O1_SYSTEM_PROMPT } from '../../../models/prompts.ts';
import { loadTokenizer, type Tokenizer } from '../../../models/tokenizer.ts';
import { assistantText, buildTrainingSequence, SUMMARY_SEPARATOR, type Trace } from '../../../models/ttt/training-text.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('TTT training text with the Llama 3.1 tokenizer');

const trace: Trace = {
  question: 'Which nerve supplies the deltoid muscle?',
  reasoning: 'The deltoid abducts the arm.\n\nIts motor supply comes from the posterior cord via the axillary nerve (C5-C6).',
  answer: 'The axillary nerve.',
};

describe('assistantText', () => {
  it('reasoning, Summarization heading, answer', () => {
    expect(assistantText(' R \n', '\nA ')).toBe('R\n\n**Summarization**\nA');
    expect(SUMMARY_SEPARATOR).toBe('\n\n**Summarization**\n');
  });
});

describe.skipIf(!HAS_SHARED)('buildTrainingSequence (llama-3.1 tokenizer)', () => {
  let tok: Tokenizer;
  let eot: number;
  beforeAll(async () => {
    tok = await loadTokenizer(new NodeDirSource(sharedPath('models', 'llama-3.1-tokenizer')));
    eot = tok.tokenToId('<|eot_id|>')!;
  });

  it('masks the prompt, trains the assistant turn and its <|eot_id|>', () => {
    const s = buildTrainingSequence(tok, trace);
    expect(s.truncated).toBe(false);
    expect(s.ids[0]).toBe(tok.bosTokenId);
    expect(s.ids.at(-1)).toBe(eot);
    expect(s.lossMask.at(-1)).toBe(1);
    expect(s.lossMask.length).toBe(s.ids.length);
    expect(s.tokensTrained).toBe(s.lossMask.filter((m) => m === 1).length);
    // the mask starts right after the assistant header, exactly
    const prompt = tok.decode(s.ids.slice(0, s.promptTokens));
    expect(prompt.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
    expect(prompt).toContain(O1_SYSTEM_PROMPT.trim());
    expect(prompt).toContain('<|start_header_id|>user<|end_header_id|>\n\nWhich nerve supplies the deltoid muscle? Please think step by step.<|eot_id|>');
    expect(s.lossMask.slice(0, s.promptTokens).every((m) => m === 0)).toBe(true);
    expect(tok.decode(s.ids.slice(s.promptTokens))).toBe(`${assistantText(trace.reasoning, trace.answer)}<|eot_id|>`);
    // the prompt is what the app generates with
    expect(s.ids.slice(0, s.promptTokens)).toEqual(tok.encodeChat([
      { role: 'system', content: O1_SYSTEM_PROMPT }, { role: 'user', content: `${trace.question} Please think step by step.` },
    ]));
    // 'card' style: short system prompt
    const card = buildTrainingSequence(tok, trace, { format: promptFormat('card') });
    expect(card.promptTokens).toBeLessThan(s.promptTokens);
    expect(card.tokensTrained).toBe(s.tokensTrained);
  });

  it('truncates the end of the reasoning, never the question or the answer', () => {
    const long: Trace = { ...trace, reasoning: Array.from({ length: 200 }, (_, i) => `Step ${i}: consider the brachial plexus.`).join(' ') };
    const full = buildTrainingSequence(tok, long, { maxTokens: 100_000 });
    expect(full.ids.length).toBeGreaterThan(1024);
    const s = buildTrainingSequence(tok, long);
    expect(s.truncated).toBe(true);
    expect(s.ids.length).toBeLessThanOrEqual(1024);
    expect(s.ids.length).toBeGreaterThan(1000); // fills the budget
    const text = tok.decode(s.ids);
    expect(text).toContain(trace.question);
    expect(text).toContain('Step 0: consider');
    expect(text).not.toContain('Step 199');
    expect(text.endsWith(`**Summarization**\n${trace.answer}<|eot_id|>`)).toBe(true);
    expect(s.promptTokens).toBe(full.promptTokens);
    expect(s.tokensTrained).toBe(s.ids.length - s.promptTokens);
    const small = buildTrainingSequence(tok, long, { maxTokens: 300 });
    expect(small.ids.length).toBeLessThanOrEqual(300);
    expect(tok.decode(small.ids).endsWith(`${trace.answer}<|eot_id|>`)).toBe(true);
    // no room even for the answer: its head is kept (without <|eot_id|>), the question stays whole
    const tight = buildTrainingSequence(tok, { ...long, answer: 'The axillary nerve. '.repeat(50) }, { maxTokens: full.promptTokens + 5 });
    expect(tight).toMatchObject({ truncated: true, tokensTrained: 5, promptTokens: full.promptTokens });
    expect(tight.ids.length).toBe(full.promptTokens + 5);
    expect(tight.ids.at(-1)).not.toBe(eot);
  });

  it('a real trace from traces.jsonl', () => {
    const first = JSON.parse(readFileSync(sharedPath('data', 'traces.jsonl'), 'utf8').split('\n')[0]) as Trace;
    const s = buildTrainingSequence(tok, first, { maxTokens: 512 });
    expect(s.ids.length).toBeLessThanOrEqual(512);
    expect(s.truncated).toBe(true);
    expect(tok.decode(s.ids)).toContain(first.question);
  });

  it('bad inputs', () => {
    expect(() => buildTrainingSequence(tok, trace, { maxTokens: 50 })).toThrow(InvalidInputError);
    expect(() => buildTrainingSequence(tok, trace, { maxTokens: 50 })).toThrow(/leaves no room/);
    expect(() => buildTrainingSequence(tok, { ...trace, question: '  ' })).toThrow(/question is empty/);
    expect(() => buildTrainingSequence(tok, { ...trace, reasoning: '', answer: '' })).toThrow(/neither reasoning nor answer/);
  });
});
