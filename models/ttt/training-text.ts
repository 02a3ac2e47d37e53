/**
 * The TTT training sequence for a retrieved trace: the trace's question in the same prompt format
 * the app answers with (models/prompt-format.ts; so the adapter is trained in the context it is
 * used in) and `reasoning + "\n\n**Summarization**\n" + answer` as the assistant turn,
 * FineMedLM-o1's output format. The loss covers the assistant turn including its end-of-turn
 * token (FineMed's own script masked it out: pad == eos), never the prompt.
 */
import { InvalidInputError } from '../errors.ts';
import { encodeQuestion, encodeWithAnswer, promptFormat, type PromptFormat } from '../prompt-format.ts';
import type { Tokenizer } from '../tokenizer.ts';

/** The heading FineMedLM-o1 writes between its reasoning and its answer. */
export const SUMMARY_SEPARATOR = '\n\n**Summarization**\n';

export interface Trace {
  question: string;
  reasoning: string;
  answer: string;
}

export interface TrainingTextOptions {
  /** Longest sequence in tokens; longer ones lose the end of the reasoning. Default 1024. */
  maxTokens?: number;
  /** The answer prompt's format (the same the app asks with); default the 'o1' system prompt. */
  format?: PromptFormat;
}

export interface TrainingSequence {
  ids: number[];
  /** 1 on the assistant turn's tokens (its <|eot_id|> included), 0 on the prompt. */
  lossMask: number[];
  /** Tokens the loss covers (mask ones). */
  tokensTrained: number;
  /** Tokens of the prompt (system + user turn + assistant header). */
  promptTokens: number;
  /** The reasoning (or, if even that was not enough, the answer's end) was cut to fit maxTokens. */
  truncated: boolean;
}

/** The assistant turn FineMedLM-o1 writes: reasoning, Summarization heading, answer. */
export function assistantText(reasoning: string, answer: string): string {
  return `${reasoning.trim()}${SUMMARY_SEPARATOR}${answer.trim()}`;
}

/**
 * Builds ids and loss mask for TTT on one trace.
 * Throws InvalidInputError when the prompt alone leaves no room for the answer within maxTokens.
 * @example
 *   const seq = buildTrainingSequence(tokenizer, hit.record, { maxTokens: 1024 });
 *   await trainer.train(seq.ids, seq.lossMask, { steps: 3, lr: 1e-4 });
 */
export function buildTrainingSequence(tok: Tokenizer, trace: Trace, opts: TrainingTextOptions = {}): TrainingSequence {
  const maxTokens = opts.maxTokens ?? 1024;
  if (!Number.isInteger(maxTokens) || maxTokens < 2) throw new InvalidInputError(`maxTokens must be an integer >= 2, got ${maxTokens}.`);
  if (trace.answer.trim() === '' && trace.reasoning.trim() === '') throw new InvalidInputError('The trace has neither reasoning nor answer to train on.');
  const format = opts.format ?? promptFormat('o1');
  const promptIds = encodeQuestion(tok, trace.question, format);
  if (promptIds.length + 1 >= maxTokens) {
    throw new InvalidInputError(
      `The trace's question makes a ${promptIds.length}-token prompt; a training length of ${maxTokens} tokens (maxTokens) leaves no room to train on its answer. Allow more trained tokens (up to the model's context) or use a corpus with shorter questions.`,
    );
  }
  const render = (reasoning: string) => encodeWithAnswer(tok, trace.question, format, assistantText(reasoning, trace.answer));

  let ids = render(trace.reasoning);
  let truncated = false;
  if (ids.length > maxTokens) {
    truncated = true;
    // Keep the head of the reasoning: drop as many reasoning tokens as we are over, re-render
    // (tokens can merge at the cut), and repeat until it fits.
    const rIds = tok.encode(trace.reasoning.trim(), { addSpecialTokens: false });
    let keep = rIds.length - (ids.length - maxTokens);
    ids = [];
    while (keep > 0) {
      const candidate = render(tok.decode(rIds.slice(0, keep)));
      if (candidate.length <= maxTokens) { ids = candidate; break; }
      keep -= Math.max(1, candidate.length - maxTokens);
    }
    // No reasoning left and still too long: keep the answer's head (no end-of-turn then).
    if (ids.length === 0) ids = render('').slice(0, maxTokens);
  }
  const promptTokens = commonPrefix(promptIds, ids);
  const lossMask = ids.map((_, t) => (t >= promptTokens ? 1 : 0));
  return { ids, lossMask, tokensTrained: ids.length - promptTokens, promptTokens, truncated };
}

/** Length of the common prefix: the prompt's tokens are a prefix of the full text's (checked, not assumed). */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
