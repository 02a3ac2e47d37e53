/**
 * FineMedLM-o1's prompts and output format (source: ../shared/data/finemedlm-o1-prompts.json, from
 * hongzhouyu/FineMed Rebuttal_period_file/ttt_prepare.ipynb and the model card). The model writes
 * its reasoning under a Thought heading, then the answer under a Summarization heading.
 */

/** The model card's short system prompt. */
export const MODEL_CARD_SYSTEM_PROMPT = 'You are a helpful professional doctor.';

/** Appended to every question; FineMed-DPO's user prompts all end with it. */
export const MODEL_CARD_USER_SUFFIX = 'Please think step by step.';

/** The long system prompt FineMedLM-o1 was trained and TTT-evaluated with (trailing space included). */
export const O1_SYSTEM_PROMPT =
  'You are a helpful professional doctor. You need to generate an answer based on the given problem and thoroughly ' +
  'explore the problem through a systematic and long-term thinking process to provide a final and accurate solution. ' +
  'This requires a comprehensive cycle of analysis, summary, exploration, re-evaluation, reflection, backtracking and ' +
  'iteration to form a thoughtful thinking process. Use the background information provided in the text to assist in ' +
  'formulating the answer. Follow these answer guidelines:\n' +
  '1. Please structure your response into two main sections: **Thought** and **Summarization**.\n' +
  '2. During the **Thought** phase, think step by step based on the given text content. If the text content is used, ' +
  'it must be expressed.\n' +
  '3. During the **Summarization** phase, based on the thinking process in the thinking phase, give the final answer ' +
  'to the question.\n' +
  'Here is the question: ';

/** Max new tokens the model card generates with. */
export const MODEL_CARD_MAX_NEW_TOKENS = 4096;

/**
 * A Summarization heading at line start: "## Summarization", "**Summarization**",
 * "**Summarization:**", "Summarization:", "3. Summarization" (British "-isation" too). Plain prose
 * such as "Summarization of the data ..." is not a heading: the word must end the line or be
 * followed by a colon.
 */
const SUMMARY_HEADING =
  /^[ \t]*(?:#{1,6}[ \t]*)?(?:\d+[.)][ \t]*)?(?:\*\*|__)?[ \t]*summari[sz]ation[ \t]*(?:\*\*|__)?[ \t]*(?::[ \t]*(?:\*\*|__)?|(?=\r?\n|$))/gim;

export interface SplitOutput {
  /** Text before the heading (the Thought part), trimmed; the whole text if there is no heading. */
  reasoning: string;
  /** Text after the heading, trimmed; null when the model wrote no Summarization heading (yet). */
  summary: string | null;
}

/**
 * Splits a FineMedLM-o1 answer at its (last) Summarization heading. The last one wins: the answer
 * comes at the end, and a model that backtracks may have written an earlier one.
 *
 * @example
 * splitSummarization('## Thought\nGout is...\n## Summarization\nUric acid.');
 * // { reasoning: '## Thought\nGout is...', summary: 'Uric acid.' }
 */
export function splitSummarization(text: string): SplitOutput {
  let last: RegExpExecArray | null = null;
  for (const m of text.matchAll(SUMMARY_HEADING)) last = m as RegExpExecArray;
  if (last === null) return { reasoning: text.trim(), summary: null };
  return {
    reasoning: text.slice(0, last.index).trim(),
    summary: text.slice(last.index + last[0].length).trim(),
  };
}
