/**
 * Splits FineMedLM-o1's output into its reasoning (the **Thought** part) and its answer (after the
 * **Summarization** heading), also while it streams: text under a Thought heading is reasoning
 * until a Summarization heading appears, and a half-written heading at the end is held back so it
 * never flashes into the reasoning. Output without either marker is all answer (a model that does
 * not write FineMedLM-o1's format, such as the stories260K stand-in).
 */
import { splitSummarization } from '../prompts.ts';

export interface AnswerParts {
  /** The reasoning without its Thought heading; '' when there is none. */
  reasoning: string;
  /** The answer: after the Summarization heading, or the whole text when there are no markers. */
  answer: string;
  /** 'thinking' while the model is still inside its reasoning. */
  phase: 'thinking' | 'answering';
  /** The output used FineMedLM-o1's Thought / Summarization format. */
  structured: boolean;
}

/** A Thought heading at the very start: "## Thought", "**Thought**", "Thought:", "1. **Thoughts**". */
const THOUGHT_HEADING = /^\s*(?:#{1,6}[ \t]*)?(?:\d+[.)][ \t]*)?(?:\*\*|__)?[ \t]*thoughts?[ \t]*(?:\*\*|__)?[ \t]*(?::[ \t]*(?:\*\*|__)?|(?=\r?\n|$))/i;

/** Beginnings of a Summarization heading line ("**Summ", "## Sum", "2. **S"): may still become one. */
const PARTIAL_SUMMARY = /^[ \t]*(?:#{1,6}[ \t]*)?(?:\d+[.)][ \t]*)?(?:\*\*|__)?[ \t]*(?:s(?:u(?:m(?:m(?:a(?:r(?:i(?:[sz](?:a(?:t(?:i(?:on?)?)?)?)?)?)?)?)?)?)?)?)?[ \t]*(?:\*\*?|__?)?$/i;
/** Beginnings of a Thought heading at the start ("**Tho", "## T"). */
const PARTIAL_THOUGHT = /^\s*(?:#{1,6}[ \t]*)?(?:\d+[.)][ \t]*)?(?:\*\*?|__?)?[ \t]*(?:t(?:h(?:o(?:u(?:g(?:h(?:ts?)?)?)?)?)?)?)?[ \t]*(?:\*\*?|__?)?$/i;

/**
 * @param done true once generation ended: nothing is held back any more.
 * @example
 *   splitAnswer('**Thought**\nUrate crystals...\n**Summarization**\nGout.', { done: true });
 *   // { reasoning: 'Urate crystals...', answer: 'Gout.', phase: 'answering', structured: true }
 *   splitAnswer('**Thought**\nUrate crystals...\n**Summ', { done: false });
 *   // { reasoning: 'Urate crystals...', answer: '', phase: 'thinking', structured: true }
 */
export function splitAnswer(full: string, opts: { done: boolean }): AnswerParts {
  // While streaming, a last line that may still become a Summarization heading waits for its end.
  const text = opts.done ? full : withoutPartialLine(full, PARTIAL_SUMMARY);
  const split = splitSummarization(text);
  if (split.summary !== null) {
    return { reasoning: stripThought(split.reasoning), answer: split.summary, phase: 'answering', structured: true };
  }
  if (THOUGHT_HEADING.test(text)) {
    // A Thought heading and no Summarization (yet): all reasoning. Done without a summary means the
    // answer was cut off; the caller says so rather than showing the reasoning as the answer.
    return { reasoning: stripThought(text), answer: '', phase: opts.done ? 'answering' : 'thinking', structured: true };
  }
  if (!opts.done && PARTIAL_THOUGHT.test(full) && full.trim() !== '') {
    return { reasoning: '', answer: '', phase: 'thinking', structured: true };
  }
  return { reasoning: '', answer: text.trim(), phase: 'answering', structured: false };
}

function stripThought(reasoning: string): string {
  return reasoning.replace(THOUGHT_HEADING, '').trim();
}

/** The text without its last line when that line may still grow into a heading. */
function withoutPartialLine(text: string, partial: RegExp): string {
  const cut = text.lastIndexOf('\n');
  const last = text.slice(cut + 1);
  return last.trim() !== '' && partial.test(last) ? text.slice(0, Math.max(cut, 0)) : text;
}
