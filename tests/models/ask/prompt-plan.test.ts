import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { answerRoom, planPrompt } from '../../../models/ask/prompt-plan.ts';
import { InvalidInputError } from '../../../models/errors.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { encodeQuestion, promptFormat } from '../../../models/prompt-format.ts';
import { O1_SYSTEM_PROMPT } from '../../../models/prompts.ts';
import { buildTokenizer, loadTokenizer, type Tokenizer } from '../../../models/tokenizer.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('answer prompt planning with the stories260K and Llama 3.1 tokenizers');

describe('answerRoom', () => {
  it('keeps up to an eighth of the context (at least 16) for the answer', () => {
    expect(answerRoom(1024, 512)).toBe(64);
    expect(answerRoom(10, 512)).toBe(10);
    expect(answerRoom(4096, 4096)).toBe(512);
    expect(answerRoom(100, 64)).toBe(16);
  });
});

describe.skipIf(!HAS_SHARED)('planPrompt', () => {
  let stories: Tokenizer;
  let llama: Tokenizer;
  beforeAll(async () => {
    stories = await loadTokenizer(new NodeDirSource(sharedPath('golden', 'stories260K-hf', 'f32')));
    llama = await loadTokenizer(new NodeDirSource(sharedPath('models', 'llama-3.1-tokenizer')));
  });

  it('honours the o1 prompt on a Llama 3.1 model with a 4096-token context', () => {
    const p = planPrompt(llama, 'What causes gout?', { system: 'o1', maxNewTokens: 1024 }, 4096);
    expect(p.format).toEqual({ style: 'o1', system: O1_SYSTEM_PROMPT });
    expect(p.fallback).toBeNull();
    expect(p.ids).toEqual(encodeQuestion(llama, 'What causes gout?', promptFormat('o1')));
    expect(p.answerTokens).toBe(1024);
    expect(llama.decode(p.ids)).toContain('What causes gout? Please think step by step.');
  });

  it("falls back to the card prompt when o1 does not fit stories260K's 512 tokens, and says so", () => {
    const p = planPrompt(stories, 'What causes gout?', { system: 'o1', maxNewTokens: 256 }, 512);
    expect(p.format.style).toBe('card');
    expect(p.requested).toBe('o1');
    expect(p.fallback).toMatch(/FineMedLM-o1's system prompt with this question is \d{3} tokens.*512-token context.*short system prompt was used \(\d+ tokens\)/);
    expect(p.ids.length + p.answerTokens).toBeLessThanOrEqual(512);
    expect(p.answerTokens).toBe(256);
  });

  it('uses the question alone for a model without a chat template', () => {
    const dir = sharedPath('golden', 'stories260K-hf', 'f32');
    const { chat_template: _dropped, ...config } = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    const tok = buildTokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), config, 'no template');
    expect(tok.hasChatTemplate).toBe(false);
    const p = planPrompt(tok, ' What causes gout? ', { system: 'o1', maxNewTokens: 32 }, 512);
    expect(p.format).toEqual({ style: 'plain', system: null });
    expect(p.ids).toEqual(tok.encode('What causes gout?'));
  });

  it('refuses a question longer than the context with a message that says so', () => {
    const long = 'A 58-year-old man with crushing chest pain radiating to the jaw. '.repeat(20);
    expect(() => planPrompt(stories, long, { system: 'o1', maxNewTokens: 256 }, 512)).toThrow(InvalidInputError);
    expect(() => planPrompt(stories, long, { system: 'o1', maxNewTokens: 256 }, 512)).toThrow(/too long for this model: the question alone is \d+ tokens.*512 tokens.*Shorten the question/);
    expect(() => planPrompt(stories, '   ', { maxNewTokens: 8 }, 512)).toThrow(/question is empty/);
    expect(() => planPrompt(stories, 'q', { system: 'custom', customSystem: ' ', maxNewTokens: 8 }, 512)).toThrow(/custom system prompt/);
  });

  it('a custom system prompt is used as written', () => {
    const p = planPrompt(llama, 'Why?', { system: 'custom', customSystem: 'You are a terse cardiologist.', maxNewTokens: 64 }, 4096);
    expect(p.format).toEqual({ style: 'custom', system: 'You are a terse cardiologist.' });
    expect(llama.decode(p.ids)).toContain('You are a terse cardiologist.');
  });
});
