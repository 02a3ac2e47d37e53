/**
 * One FineMed-DPO row -> a corpus record. `prompt` is a list of chat messages holding the user
 * question; `chosen` a list holding the assistant answer: the long reasoning, then a Summarization
 * section with the final answer. The system prompt is not in the data.
 */
import { MODEL_CARD_USER_SUFFIX, splitSummarization } from '../prompts.ts';
import type { CorpusRecord } from './record.ts';

export const FINEMED_DPO_REPO = 'hongzhouyu/FineMed-DPO';

interface Message {
  role: string;
  content: string;
}

export type RowParse = { ok: true; record: CorpusRecord; hasSummary: boolean } | { ok: false; reason: string };

/** Messages from a parquet list-of-struct value (or its JSON text, as some exports store it). */
function messages(value: unknown, column: string): Message[] | string {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return `column "${column}" is text, not a list of messages`;
    }
  }
  if (!Array.isArray(v)) return `column "${column}" is not a list of messages`;
  const out: Message[] = [];
  for (const m of v) {
    if (typeof m !== 'object' || m === null || typeof (m as Message).role !== 'string' || typeof (m as Message).content !== 'string') {
      return `column "${column}" holds an entry without string role and content`;
    }
    out.push(m as Message);
  }
  return out;
}

/** The question without the "Please think step by step." every FineMed-DPO prompt ends with. */
function stripSuffix(q: string): string {
  const t = q.trim();
  const suffix = MODEL_CARD_USER_SUFFIX.toLowerCase();
  return t.toLowerCase().endsWith(suffix) ? t.slice(0, t.length - suffix.length).trim() : t;
}

/**
 * @param rowIndex 0-based row in the whole dataset; the record id is `finemed-dpo-<rowIndex>`.
 * @example
 *   parseFineMedRow({ prompt: [{ role: 'user', content: 'Why ...? Please think step by step.' }],
 *                     chosen: [{ role: 'assistant', content: '**Thought**\n...\n**Summarization**\nBecause ...' }] }, 0, 'mit');
 *   // { ok: true, hasSummary: true, record: { id: 'finemed-dpo-0', question: 'Why ...?', answer: 'Because ...', ... } }
 */
export function parseFineMedRow(row: Record<string, unknown>, rowIndex: number, license: string): RowParse {
  const prompt = messages(row.prompt, 'prompt');
  if (typeof prompt === 'string') return { ok: false, reason: prompt };
  const chosen = messages(row.chosen, 'chosen');
  if (typeof chosen === 'string') return { ok: false, reason: chosen };
  const user = prompt.find((m) => m.role === 'user');
  const assistant = chosen.find((m) => m.role === 'assistant');
  if (!user || user.content.trim() === '') return { ok: false, reason: 'no user message in "prompt"' };
  if (!assistant || assistant.content.trim() === '') return { ok: false, reason: 'no assistant message in "chosen"' };
  const question = stripSuffix(user.content);
  if (question === '') return { ok: false, reason: 'the user message holds only the step-by-step suffix' };
  const { reasoning, summary } = splitSummarization(assistant.content);
  return {
    ok: true,
    hasSummary: summary !== null,
    record: {
      id: `finemed-dpo-${rowIndex}`,
      question,
      reasoning,
      answer: summary ?? '',
      source: FINEMED_DPO_REPO,
      license,
      department: null,
    },
  };
}
