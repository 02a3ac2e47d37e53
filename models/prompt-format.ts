/**
 * How a question becomes prompt tokens: which system prompt, and whether the model's chat template
 * is used. One format serves both the answer prompt and the TTT training sequence (the adapter is
 * trained in the context it is used in), so both are rendered here.
 */
import type { ChatMessage } from './api.ts';
import { InvalidInputError } from './errors.ts';
import { MODEL_CARD_SYSTEM_PROMPT, MODEL_CARD_USER_SUFFIX, O1_SYSTEM_PROMPT } from './prompts.ts';
import type { Tokenizer } from './tokenizer.ts';

/**
 * - 'o1': FineMedLM-o1's long training system prompt (what the paper's TTT used);
 * - 'card': the model card's short system prompt;
 * - 'custom': a system prompt the user wrote;
 * - 'none': the chat template with no system turn;
 * - 'plain': no chat template at all, the question alone (models without a template).
 * Every chat style appends "Please think step by step." to the question, as FineMed-DPO does.
 */
export type PromptStyle = 'o1' | 'card' | 'custom' | 'none' | 'plain';

export interface PromptFormat {
  style: PromptStyle;
  /** The system turn's text; null for 'none' and 'plain'. */
  system: string | null;
}

/**
 * The format of a style ('custom' needs its text).
 * @example promptFormat('card') // { style: 'card', system: 'You are a helpful professional doctor.' }
 */
export function promptFormat(style: PromptStyle, customSystem?: string): PromptFormat {
  switch (style) {
    case 'o1': return { style, system: O1_SYSTEM_PROMPT };
    case 'card': return { style, system: MODEL_CARD_SYSTEM_PROMPT };
    case 'custom': {
      const text = customSystem?.trim() ?? '';
      if (text === '') throw new InvalidInputError('A custom system prompt was chosen but it is empty.');
      return { style, system: text };
    }
    case 'none':
    case 'plain':
      return { style, system: null };
    default:
      throw new InvalidInputError(`Unknown prompt style ${JSON.stringify(style)}; use o1, card, custom, none or plain.`);
  }
}

/** The question with the user suffix appended once. */
function userTurn(question: string): string {
  return question.toLowerCase().endsWith(MODEL_CARD_USER_SUFFIX.toLowerCase()) ? question : `${question} ${MODEL_CARD_USER_SUFFIX}`;
}

function cleanQuestion(question: string): string {
  const q = question.trim();
  if (q === '') throw new InvalidInputError('The question is empty.');
  return q;
}

/** The chat messages of a chat format (system turn when it has one, then the user turn). */
export function formatMessages(question: string, format: PromptFormat): ChatMessage[] {
  const q = cleanQuestion(question);
  const messages: ChatMessage[] = format.system !== null ? [{ role: 'system', content: format.system }] : [];
  messages.push({ role: 'user', content: userTurn(q) });
  return messages;
}

/**
 * Prompt token ids for generation (the chat template's assistant header included).
 * @example encodeQuestion(tok, 'What causes gout?', promptFormat('plain')) // tok.encode('What causes gout?')
 */
export function encodeQuestion(tok: Tokenizer, question: string, format: PromptFormat): number[] {
  if (format.style === 'plain') return tok.encode(cleanQuestion(question));
  return tok.encodeChat(formatMessages(question, format), { addGenerationPrompt: true });
}

/**
 * The whole sequence with the assistant's text after the prompt: through the chat template (which
 * closes the turn with its end token), or, for 'plain', prompt + text + the tokenizer's first end
 * token, so the model also learns where to stop.
 */
export function encodeWithAnswer(tok: Tokenizer, question: string, format: PromptFormat, assistant: string): number[] {
  if (format.style === 'plain') {
    const eos = tok.eosTokenIds[0];
    const body = tok.encode(assistant, { addSpecialTokens: false });
    return [...encodeQuestion(tok, question, format), ...body, ...(eos !== undefined ? [eos] : [])];
  }
  return tok.encodeChat([...formatMessages(question, format), { role: 'assistant', content: assistant }], { addGenerationPrompt: false });
}
