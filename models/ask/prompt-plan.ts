/**
 * Picks the answer prompt for a question on a given model: the requested system prompt when it
 * fits the context (with room left for the answer), else the next smaller format, down to the
 * question alone; a question that does not fit even alone is refused with a message that says
 * so. The result records which format was used and why, so the record of an answer is honest
 * about its prompt (e.g. stories260K's 512-token context cannot hold the 600-token o1 prompt).
 */
import { InvalidInputError } from '../errors.ts';
import { encodeQuestion, promptFormat, type PromptFormat, type PromptStyle } from '../prompt-format.ts';
import type { Tokenizer } from '../tokenizer.ts';

/** What the user asks for; 'plain' only makes sense for models without a chat template. */
export type SystemPromptChoice = Exclude<PromptStyle, 'plain'>;

export interface PromptRequest {
  /** Default 'o1', the prompt FineMedLM-o1 was trained and TTT-evaluated with. */
  system?: SystemPromptChoice;
  /** The text for system 'custom'. */
  customSystem?: string;
  /** Tokens the answer may take; the prompt must leave room for part of them (see answerRoom). */
  maxNewTokens: number;
}

export interface PreparedPrompt {
  ids: number[];
  format: PromptFormat;
  /** The style asked for. */
  requested: SystemPromptChoice;
  /** Why a smaller format than the requested one was used; null when the request was honoured. */
  fallback: string | null;
  /** The model's context (KV cache) in tokens. */
  contextTokens: number;
  /** Answer tokens left after the prompt: min(maxNewTokens, context - prompt). */
  answerTokens: number;
}

/**
 * Answer tokens a prompt must leave free: all of maxNewTokens up to an eighth of the context
 * (at least 16), so a long-answer request does not push a 512-token model to the bare question.
 */
export function answerRoom(maxNewTokens: number, contextTokens: number): number {
  return Math.min(maxNewTokens, Math.max(16, Math.floor(contextTokens / 8)));
}

const LABEL: Record<PromptStyle, string> = {
  o1: "FineMedLM-o1's system prompt",
  card: "the model card's short system prompt",
  custom: 'the custom system prompt',
  none: 'the chat template without a system prompt',
  plain: 'the question alone',
};

/** Formats to try, largest first, without repeats. */
function candidates(req: SystemPromptChoice, hasChatTemplate: boolean): PromptStyle[] {
  if (!hasChatTemplate) return ['plain'];
  const order: PromptStyle[] = [req, ...(req === 'o1' || req === 'custom' ? (['card'] as const) : []), 'none', 'plain'];
  return [...new Set(order)];
}

/**
 * @example
 *   const p = planPrompt(tokenizer, 'What causes gout?', { system: 'o1', maxNewTokens: 256 }, 512);
 *   p.format.style; // 'card' when the o1 prompt does not fit 512 tokens
 *   p.fallback;     // "FineMedLM-o1's system prompt with this question is 621 tokens; ..."
 */
export function planPrompt(tok: Tokenizer, question: string, req: PromptRequest, contextTokens: number): PreparedPrompt {
  if (question.trim() === '') throw new InvalidInputError('The question is empty.');
  if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) throw new InvalidInputError(`maxNewTokens must be a positive integer, got ${req.maxNewTokens}.`);
  const requested = req.system ?? 'o1';
  const room = answerRoom(req.maxNewTokens, contextTokens);
  const limit = contextTokens - room;
  const tried: { style: PromptStyle; tokens: number }[] = [];
  for (const style of candidates(requested, tok.hasChatTemplate)) {
    const format = promptFormat(style, req.customSystem);
    const ids = encodeQuestion(tok, question, format);
    if (ids.length <= limit) {
      const first = tried[0];
      const fallback = first === undefined ? null
        : `${capitalise(LABEL[first.style])} with this question is ${first.tokens} tokens, more than this model's ${contextTokens}-token context allows with ${room} tokens kept for the answer; ${LABEL[style]} was used (${ids.length} tokens).`;
      return { ids, format, requested, fallback, contextTokens, answerTokens: Math.min(req.maxNewTokens, contextTokens - ids.length) };
    }
    tried.push({ style, tokens: ids.length });
  }
  const smallest = tried[tried.length - 1]!;
  throw new InvalidInputError(
    `The question is too long for this model: ${LABEL[smallest.style]} is ${smallest.tokens} tokens, and the model's context is ${contextTokens} tokens with ${room} kept for the answer. Shorten the question.`,
  );
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
