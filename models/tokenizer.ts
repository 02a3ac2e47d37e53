/**
 * The model's tokenizer and chat template, built with transformers.js from the model's own
 * `tokenizer.json` / `tokenizer_config.json`. We read those files ourselves through a ModelSource
 * and hand transformers.js plain JSON objects, so it never fetches anything (no hub, no CDN), and
 * the same code runs in Node and in a Web Worker.
 */
import { PreTrainedTokenizer } from '@huggingface/transformers';
import type { ChatMessage } from './api.ts';
import { EngineError, InvalidInputError, TokenizerError, throwIfAborted } from './errors.ts';
import type { ModelSource } from './io/source.ts';

export interface EncodeOptions {
  /** Add the tokenizer's special tokens (BOS for Llama), as Hugging Face does by default. Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, <|eot_id|>, ...) from the text. Default false. */
  skipSpecialTokens?: boolean;
  /**
   * HF's `clean_up_tokenization_spaces` (" ." -> "." etc.). Default false: it is lossy
   * ("a , b" would not round-trip) and Llama 3's config turns it on only by legacy accident.
   */
  cleanUpSpaces?: boolean;
}

export interface ChatTemplateOptions {
  /** End with the assistant header so the model answers next. Default true. */
  addGenerationPrompt?: boolean;
}

export interface Tokenizer {
  /** Id of the beginning-of-text token, null if the tokenizer has none. */
  readonly bosTokenId: number | null;
  /** Ids that end a turn or the text (config eos first, then known end tokens present). */
  readonly eosTokenIds: number[];
  /** Largest token id + 1 (added tokens included). */
  readonly vocabSize: number;
  readonly hasChatTemplate: boolean;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
  /** The rendered chat template tokenized without adding special tokens (it already has BOS). */
  encodeChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): number[];
  tokenToId(token: string): number | undefined;
}

/** End-of-turn / end-of-text tokens of common chat models; stop on any that exists as a special token. */
const KNOWN_END_TOKENS = ['<|eot_id|>', '<|end_of_text|>', '<|eom_id|>', '</s>', '<|endoftext|>', '<|im_end|>', '<end_of_turn>', '<eos>'];

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNotFound(e: unknown): boolean {
  return e instanceof EngineError && e.code === 'not-found';
}

/** Reads a file; null when it does not exist. Network errors and aborts pass through untouched. */
async function readOptionalText(source: ModelSource, path: string, signal?: AbortSignal): Promise<string | null> {
  try {
    return await source.readText(path, signal);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

async function readJsonObject(source: ModelSource, path: string, signal?: AbortSignal): Promise<Json> {
  const text = await readOptionalText(source, path, signal);
  if (text === null) {
    throw new TokenizerError(
      `${source.description}: ${path} is missing; a tokenizer needs tokenizer.json and tokenizer_config.json ` +
        '(the Hugging Face "fast" tokenizer files).',
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${source.description}: ${path} is not valid JSON (${(e as Error).message}).`);
  }
  if (!isObject(value)) throw new TokenizerError(`${source.description}: ${path} must hold a JSON object.`);
  return value;
}

/**
 * Loads the tokenizer of a model folder: `tokenizer.json`, `tokenizer_config.json` and, when the
 * config has no `chat_template`, `chat_template.jinja` if present.
 * Throws TokenizerError for missing or unusable files; NetworkError / AbortError pass through.
 *
 * @example
 * const tok = await loadTokenizer(source);
 * const ids = tok.encodeChat([{ role: 'user', content: 'Hi' }]); // starts with 128000 for Llama 3
 */
export async function loadTokenizer(source: ModelSource, signal?: AbortSignal): Promise<Tokenizer> {
  const [tokenizerJSON, config] = await Promise.all([
    readJsonObject(source, 'tokenizer.json', signal),
    readJsonObject(source, 'tokenizer_config.json', signal),
  ]);
  if (config.chat_template === undefined || config.chat_template === null) {
    const template = await readOptionalText(source, 'chat_template.jinja', signal);
    if (template !== null) config.chat_template = template;
  }
  throwIfAborted(signal);
  return buildTokenizer(tokenizerJSON, config, source.description);
}

/**
 * Builds a tokenizer from already-parsed JSON (e.g. files the caller read or bundled).
 *
 * @example
 * const tok = buildTokenizer(JSON.parse(tokenizerJson), JSON.parse(tokenizerConfigJson));
 */
export function buildTokenizer(tokenizerJSON: Json, config: Json, description = 'tokenizer'): Tokenizer {
  // transformers.js fails on these with an opaque TypeError deep inside; say what is wrong instead.
  const model = tokenizerJSON.model;
  if (!isObject(model) || typeof model.type !== 'string' || !('vocab' in model)) {
    throw new TokenizerError(`${description}: tokenizer.json has no "model" with a "type" and a "vocab".`);
  }
  // Every LLM tokenizer class of transformers.js v4 (LlamaTokenizer, ...) only changes padding side:
  // tokenization comes from tokenizer.json, so the base class is what AutoTokenizer would give.
  let inner: PreTrainedTokenizer;
  try {
    inner = new PreTrainedTokenizer(tokenizerJSON, config);
  } catch (e) {
    throw new TokenizerError(`${description}: tokenizer.json could not be loaded (${(e as Error).message}).`);
  }
  return new HfTokenizer(inner, config);
}

class HfTokenizer implements Tokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenIds: number[];
  readonly vocabSize: number;
  readonly hasChatTemplate: boolean;

  constructor(
    private readonly inner: PreTrainedTokenizer,
    config: Json,
  ) {
    this.bosTokenId = inner.bos_token_id ?? null;
    const special = new Set(inner.all_special_tokens);
    const eos: number[] = inner.eos_token_id === undefined || inner.eos_token_id === null ? [] : [inner.eos_token_id];
    for (const token of KNOWN_END_TOKENS) {
      const id = special.has(token) ? this.tokenToId(token) : undefined;
      if (id !== undefined && !eos.includes(id)) eos.push(id);
    }
    this.eosTokenIds = eos;
    let maxId = -1;
    for (const id of inner.get_vocab().values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.hasChatTemplate = typeof config.chat_template === 'string' || Array.isArray(config.chat_template);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return ''; // transformers.js throws on an empty list
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new InvalidInputError(`Token id ${id} is outside the vocabulary [0, ${this.vocabSize}).`);
      }
    }
    return this.inner.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpSpaces ?? false,
    });
  }

  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!this.hasChatTemplate) {
      throw new TokenizerError('This tokenizer has no chat template (tokenizer_config.json chat_template or chat_template.jinja).');
    }
    if (messages.length === 0) throw new InvalidInputError('A chat needs at least one message.');
    try {
      return this.inner.apply_chat_template(
        messages.map((m) => ({ role: m.role, content: m.content })),
        { tokenize: false, add_generation_prompt: options.addGenerationPrompt ?? true },
      );
    } catch (e) {
      throw new TokenizerError(`The chat template could not be rendered: ${(e as Error).message}`);
    }
  }

  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    // The template writes BOS itself; adding special tokens again would give two.
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  tokenToId(token: string): number | undefined {
    const id: unknown = this.inner.convert_tokens_to_ids(token);
    return typeof id === 'number' ? id : undefined;
  }
}

/**
 * Turns a stream of token ids into text deltas. A character can span several tokens (byte-level
 * BPE, sentencepiece byte fallback); its partial bytes decode to U+FFFD, so text ending in U+FFFD
 * is held back until the character completes (or `flush`). Decodes a short window of recent ids
 * (the text-generation-inference scheme) rather than all ids, so each push costs O(1), and the
 * deltas still concatenate to `decode(allIds)`: both decodes of a window start at the same token,
 * so a decoder that strips the first space (sentencepiece) affects both alike.
 *
 * @example
 * const stream = new TextStreamDecoder(tokenizer, { skipSpecialTokens: true });
 * for (const id of ids) process.stdout.write(stream.push(id));
 * process.stdout.write(stream.flush());
 */
export class TextStreamDecoder {
  private readonly ids: number[] = [];
  /** Start of the decode window: a token that begins at a character boundary. */
  private prefixOffset = 0;
  /** Everything before this index has been emitted. */
  private readOffset = 0;

  constructor(
    private readonly tokenizer: Pick<Tokenizer, 'decode'>,
    private readonly options: DecodeOptions = {},
  ) {}

  /** Adds one token; returns the new text it completes ('' while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decodeFrom(this.prefixOffset, this.readOffset);
    const text = this.decodeFrom(this.prefixOffset, this.ids.length);
    if (text.length <= prefix.length || text.endsWith('\uFFFD')) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return text.slice(prefix.length);
  }

  /** Returns whatever was held back (incomplete bytes come out as U+FFFD), e.g. at end of generation. */
  flush(): string {
    const prefix = this.decodeFrom(this.prefixOffset, this.readOffset);
    const text = this.decodeFrom(this.prefixOffset, this.ids.length);
    this.prefixOffset = this.readOffset = this.ids.length;
    return text.slice(prefix.length);
  }

  /** All ids pushed so far. */
  get tokenIds(): readonly number[] {
    return this.ids;
  }

  private decodeFrom(start: number, end: number): string {
    return this.tokenizer.decode(this.ids.slice(start, end), this.options);
  }
}
