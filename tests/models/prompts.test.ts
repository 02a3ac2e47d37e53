import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../models/errors.ts';
import {
  MODEL_CARD_MAX_NEW_TOKENS,
  MODEL_CARD_SYSTEM_PROMPT,
  MODEL_CARD_USER_SUFFIX,
  O1_SYSTEM_PROMPT,
  splitSummarization,
} from '../../models/prompts.ts';
import { formatMessages, promptFormat } from '../../models/prompt-format.ts';
import { loadTokenizer } from '../../models/tokenizer.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

warnIfNoShared('FineMedLM-o1 prompt constants vs finemedlm-o1-prompts.json');

describe.skipIf(!HAS_SHARED)('prompt constants', () => {
  it('equal the shared finemedlm-o1-prompts.json', () => {
    const json = JSON.parse(readFileSync(sharedPath('data', 'finemedlm-o1-prompts.json'), 'utf8')) as Record<string, unknown>;
    expect(O1_SYSTEM_PROMPT).toBe(json.o1_system_prompt);
    expect(MODEL_CARD_SYSTEM_PROMPT).toBe(json.model_card_system_prompt);
    expect(MODEL_CARD_USER_SUFFIX).toBe(json.model_card_user_suffix);
    expect(MODEL_CARD_MAX_NEW_TOKENS).toBe(json.model_card_max_new_tokens);
  });

  it('render like FineMed-DPO training prompts in the Llama 3.1 template', async () => {
    const tok = await loadTokenizer(new NodeDirSource(sharedPath('models', 'llama-3.1-tokenizer')));
    const text = tok.applyChatTemplate(formatMessages('Why does gout affect the big toe?', promptFormat('o1')));
    // The template trims the system prompt, so "Here is the question:" loses its trailing space,
    // as in the rendering printed in FineMed's ttt_prepare.ipynb.
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n' +
        'Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n' +
        O1_SYSTEM_PROMPT.trimEnd() +
        '<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n' +
        'Why does gout affect the big toe? Please think step by step.<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(text).toContain('Here is the question:<|eot_id|>');
  });
});

describe('formatMessages', () => {
  it('builds the model card chat', () => {
    expect(formatMessages('  What causes gout?\n', promptFormat('card'))).toEqual([
      { role: 'system', content: 'You are a helpful professional doctor.' },
      { role: 'user', content: 'What causes gout? Please think step by step.' },
    ]);
  });

  it('uses the o1 training prompt and appends the suffix only once', () => {
    const [system, user] = formatMessages('What causes gout? Please think step by step.', promptFormat('o1'));
    expect(system).toEqual({ role: 'system', content: O1_SYSTEM_PROMPT });
    expect(O1_SYSTEM_PROMPT.startsWith('You are a helpful professional doctor. You need to generate')).toBe(true);
    expect(O1_SYSTEM_PROMPT.endsWith('\nHere is the question: ')).toBe(true);
    expect(user).toEqual({ role: 'user', content: 'What causes gout? Please think step by step.' });
  });

  it('rejects an empty question', () => {
    expect(() => formatMessages('   ', promptFormat('none'))).toThrow(InvalidInputError);
  });
});

describe('splitSummarization', () => {
  const reasoning = '## Thought\n\nGout is caused by urate crystals.\nThe big toe is cool.';

  it.each([
    ['## Summarization\n\n', '## Summarization'],
    ['**Summarization**\n', '**Summarization**'],
    ['**Summarization:**\n', '**Summarization:**'],
    ['**Summarization**: ', '**Summarization**:'],
    ['Summarization:\n', 'Summarization:'],
    ['Summarization: ', 'Summarization:'],
    ['### SUMMARIZATION\n', '### SUMMARIZATION'],
    ['summarization\n', 'summarization'],
    ['2. **Summarization**\n', '2. **Summarization**'],
    ['## Summarisation\r\n', '## Summarisation'],
  ])('splits at %j', (heading) => {
    const out = splitSummarization(`${reasoning}\n\n${heading}Urate crystals; treat with NSAIDs.\n`);
    expect(out).toEqual({ reasoning, summary: 'Urate crystals; treat with NSAIDs.' });
  });

  it('gives null summary without a heading, and ignores the word inside prose', () => {
    const text = 'Summarization of the findings: none.\nWe discuss the Summarization step later.';
    expect(splitSummarization(text)).toEqual({ reasoning: text, summary: null });
    expect(splitSummarization('  still thinking...  ')).toEqual({ reasoning: 'still thinking...', summary: null });
  });

  it('uses the last heading and gives an empty summary when generation stopped right after it', () => {
    const text = '## Thought\nA\n## Summarization\nfirst try\n## Thought\nB\n## Summarization\nfinal answer';
    expect(splitSummarization(text)).toEqual({
      reasoning: '## Thought\nA\n## Summarization\nfirst try\n## Thought\nB',
      summary: 'final answer',
    });
    expect(splitSummarization('## Thought\nA\n\n**Summarization**')).toEqual({ reasoning: '## Thought\nA', summary: '' });
  });
});
