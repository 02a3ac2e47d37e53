import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenizerError } from '../../models/errors.ts';
import { TextStreamDecoder, loadTokenizer, type Tokenizer } from '../../models/tokenizer.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

warnIfNoShared('tokenizer tests on the real Llama 3.1 and stories260K tokenizers');

const LLAMA_DIR = sharedPath('models', 'llama-3.1-tokenizer');
const STORIES_DIR = sharedPath('golden', 'stories260K-hf', 'f32');

/**
 * Reads llama.cpp's test-tokenizer-0 vectors exactly as tests/test-tokenizer-0.cpp does: inputs
 * split on "\n__ggml_vocab_test__\n", one output line of space-separated ids per input.
 */
async function readVocabTests(base: string): Promise<{ input: string; ids: number[] }[]> {
  const raw = await readFile(`${base}.inp`, 'utf8');
  const outLines = (await readFile(`${base}.out`, 'utf8')).split('\n');
  if (outLines.at(-1) === '') outLines.pop(); // getline yields no line after the final newline
  const sep = '\n__ggml_vocab_test__\n';
  const inputs: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  expect(inputs.length).toBe(outLines.length);
  return inputs.map((input, i) => ({
    input,
    ids: outLines[i]!.trim().split(' ').filter((s) => s.length > 0).map(Number),
  }));
}

describe.skipIf(!HAS_SHARED)('Llama 3.1 tokenizer', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(new NodeDirSource(LLAMA_DIR));
  });

  it('has Llama 3.1 special ids and vocabulary size', () => {
    expect(tok.bosTokenId).toBe(128000);
    expect(tok.eosTokenIds[0]).toBe(128009); // tokenizer_config eos_token <|eot_id|>
    expect(tok.eosTokenIds).toEqual(expect.arrayContaining([128009, 128001, 128008]));
    expect(tok.vocabSize).toBe(128256);
    expect(tok.tokenToId('<|eot_id|>')).toBe(128009);
    expect(tok.tokenToId('<|eom_id|>')).toBe(128008);
    expect(tok.tokenToId('no-such-token-here')).toBeUndefined();
    expect(tok.hasChatTemplate).toBe(true);
  });

  it('adds BOS by default, like Hugging Face', () => {
    expect(tok.encode('Hello world')).toEqual([128000, 9906, 1917]);
    expect(tok.encode('Hello world', { addSpecialTokens: false })).toEqual([9906, 1917]);
  });

  it('passes all 46 llama.cpp test-tokenizer-0 vectors (no BOS) and round-trips them', async () => {
    const cases = await readVocabTests(join(LLAMA_DIR, 'testdata', 'ggml-vocab-llama-bpe.gguf'));
    let ran = 0;
    for (const { input, ids } of cases) {
      // llama.cpp: common_tokenize(ctx, text, add_special = false, parse_special = false)
      expect(tok.encode(input, { addSpecialTokens: false }), JSON.stringify(input)).toEqual(ids);
      expect(tok.decode(ids), JSON.stringify(input)).toBe(input);
      ran++;
    }
    expect(ran).toBe(46);
  });

  it('decodes without HF space clean-up unless asked', () => {
    const ids = tok.encode('a , b .', { addSpecialTokens: false });
    expect(tok.decode(ids)).toBe('a , b .');
    expect(tok.decode(ids, { cleanUpSpaces: true })).toBe('a, b.');
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([128256])).toThrow(/outside the vocabulary/);
  });

  it('renders the official Llama 3.1 chat template', () => {
    const messages = [
      { role: 'system' as const, content: 'You are a helpful professional doctor.' },
      { role: 'user' as const, content: 'What is the first-line treatment of gout flares? Please think step by step.' },
    ];
    // Meta's template (default date_string "26 Jul 2024", no tools), written out by hand.
    const expected =
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n' +
      'Cutting Knowledge Date: December 2023\n' +
      'Today Date: 26 Jul 2024\n\n' +
      'You are a helpful professional doctor.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\n' +
      'What is the first-line treatment of gout flares? Please think step by step.<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n';
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true })).toBe(expected);
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: false })).toBe(
      expected.slice(0, -'<|start_header_id|>assistant<|end_header_id|>\n\n'.length),
    );

    const ids = tok.encodeChat(messages, { addGenerationPrompt: true });
    expect(ids[0]).toBe(128000);
    expect(ids.filter((id) => id === 128000)).toHaveLength(1);
    // ... <|start_header_id|> "assistant" <|end_header_id|> "\n\n"
    expect(ids.slice(-4)).toEqual([128006, 78191, 128007, 271]);
    expect(tok.decode(ids)).toBe(expected);
  });

  it('streams deltas that concatenate to the full decode (multi-byte characters)', () => {
    const text = 'Café naïve Führer 🦙 😶‍🌫️ ✅ 我想在apple工作 Cửa Việt — 38.5 °C';
    const ids = tok.encode(text);
    for (const skipSpecialTokens of [false, true]) {
      const stream = new TextStreamDecoder(tok, { skipSpecialTokens });
      const deltas = ids.map((id) => stream.push(id));
      const tail = stream.flush();
      expect(deltas.join('') + tail).toBe(tok.decode(ids, { skipSpecialTokens }));
      expect(deltas.some((d) => d.includes('\uFFFD'))).toBe(false);
      expect(deltas.filter((d) => d === '').length).toBeGreaterThan(0); // emoji bytes were held back
      expect(tail).toBe('');
    }
  });

  it('flush returns held-back bytes as U+FFFD when a character never completes', () => {
    const llama = tok.encode('🦙', { addSpecialTokens: false }); // 3 byte-level tokens
    expect(llama.length).toBeGreaterThan(1);
    const stream = new TextStreamDecoder(tok);
    expect(stream.push(tok.encode('ok', { addSpecialTokens: false })[0]!)).toBe('ok');
    expect(stream.push(llama[0]!)).toBe('');
    expect(stream.flush()).toMatch(/^\uFFFD+$/);
  });
});

describe.skipIf(!HAS_SHARED)('stories260K tokenizer (Llama 2 style sentencepiece BPE)', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(new NodeDirSource(STORIES_DIR));
  });

  it('encodes with BOS 1 and decodes back', () => {
    const ids = tok.encode('Once upon a time');
    expect(ids).toEqual([1, 403, 407, 261, 378]);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.vocabSize).toBe(512);
    // Like HF's fast tokenizer: the Strip decoder only strips the very first piece, which is "<s>".
    expect(tok.decode([1, 403, 407, 261, 378])).toBe('<s> Once upon a time');
    expect(tok.decode([1, 403, 407, 261, 378], { skipSpecialTokens: true })).toBe('Once upon a time');
    expect(tok.decode([403, 407, 261, 378])).toBe('Once upon a time');
  });

  it('streams byte-fallback characters without breaking them', () => {
    const text = 'Once upon a time, a café served 🦙 tea.';
    const ids = tok.encode(text);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
    for (const skipSpecialTokens of [false, true]) {
      const stream = new TextStreamDecoder(tok, { skipSpecialTokens });
      const out = ids.map((id) => stream.push(id)).join('') + stream.flush();
      expect(out).toBe(tok.decode(ids, { skipSpecialTokens }));
    }
  });
});

describe('TextStreamDecoder with a byte-level stub', () => {
  // Each id is one UTF-8 byte: the hardest case, every multi-byte character spans several ids.
  const stub = { decode: (ids: readonly number[]) => new TextDecoder().decode(Uint8Array.from(ids)) };

  it('holds back partial characters and emits them whole', () => {
    const bytes = [...new TextEncoder().encode('aé🦙b')];
    const stream = new TextStreamDecoder(stub);
    const deltas = bytes.map((b) => stream.push(b));
    expect(deltas).toEqual(['a', '', 'é', '', '', '', '🦙', 'b']);
    expect(stream.flush()).toBe('');
    expect(stream.tokenIds).toEqual(bytes);
  });
});

describe('loadTokenizer errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokenizer-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function makeFolder(name: string, files: Record<string, string>): NodeDirSource {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    for (const [file, text] of Object.entries(files)) writeFileSync(join(d, file), text);
    return new NodeDirSource(d);
  }

  it('reports a folder without tokenizer.json as TokenizerError', async () => {
    const source = makeFolder('no-tokenizer-json', { 'tokenizer_config.json': '{}' });
    const err = await loadTokenizer(source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenizerError);
    expect((err as TokenizerError).code).toBe('tokenizer');
    expect((err as Error).message).toMatch(/tokenizer\.json is missing/);
  });

  it('reports a missing tokenizer_config.json, bad JSON and a tokenizer.json without a model', async () => {
    await expect(loadTokenizer(makeFolder('no-config', { 'tokenizer.json': '{}' }))).rejects.toThrow(
      /tokenizer_config\.json is missing/,
    );
    await expect(
      loadTokenizer(makeFolder('bad-json', { 'tokenizer.json': '{"model": ', 'tokenizer_config.json': '{}' })),
    ).rejects.toThrow(/tokenizer\.json is not valid JSON/);
    await expect(
      loadTokenizer(makeFolder('no-model', { 'tokenizer.json': '{"version": "1.0"}', 'tokenizer_config.json': '{}' })),
    ).rejects.toBeInstanceOf(TokenizerError);
  });
});

