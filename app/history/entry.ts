/**
 * One history entry: a question with its answer (single mode) or its two answers (compare mode),
 * each the pipeline's full record (settings, retrieved ids and scores, losses, timings).
 */
import type { AskRecord } from '../../workers/ask-session.ts';

export interface HistoryEntry {
  id: string;
  createdAt: string;
  question: string;
  mode: 'single' | 'compare';
  /** single: [record]; compare: [without TTT, with TTT]. */
  records: AskRecord[];
  /** Compare mode: the two answers differ. */
  differ: boolean | null;
}

export function newEntry(records: AskRecord[], mode: HistoryEntry['mode'], differ: boolean | null): HistoryEntry {
  const first = records[0]!;
  return { id: first.id, createdAt: first.createdAt, question: first.question, mode, records, differ };
}
