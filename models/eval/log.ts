/**
 * The per-item evaluation log: one JSON line per item and mode, appended as each answer is done,
 * so a run can resume where it stopped. The interface is storage-free; an in-memory log lives
 * here (tests, the browser), the JSONL file log in node/eval/node-log.ts. `parseEvalLog` reads the JSONL
 * text for any file-backed log: a last line without its newline is a torn write and is dropped
 * (its item runs again); a broken line before it is an error, never skipped silently.
 */
import type { AskRecord, ModelDescription, RetrieverKind } from '../ask/types.ts';
import type { AskSettings } from '../ask/settings.ts';
import { EvalLogError } from './errors.ts';
import type { ExtractionMethod } from './extract.ts';

export type EvalMode = 'off' | 'on';

export const EVAL_LOG_VERSION = 1;

/** One answer (or one refusal) of one item in one mode. */
export interface EvalLogLine {
  v: typeof EVAL_LOG_VERSION;
  item: string;
  benchmark: string;
  mode: EvalMode;
  gold: string;
  /** Number of options (chance = 1 / options). */
  options: number;
  /** Extracted letter; null when none was found or the item was refused. */
  letter: string | null;
  /** letter === gold; null when the item was refused (skipped, not wrong). */
  correct: boolean | null;
  method: ExtractionMethod | null;
  /** The top retrieved trace TTT trained on (mode 'on'). */
  retrieval: { id: string; score: number; retriever: RetrieverKind } | null;
  ttt: { losses: number[]; finalLoss: number; tokensTrained: number; truncated: boolean } | null;
  /** The model's raw output. */
  output: string;
  prompt: { style: string; tokens: number; fallback: string | null } | null;
  stopReason: AskRecord['answer']['stopReason'] | null;
  timings: AskRecord['timings'] | null;
  settings: AskSettings;
  model: ModelDescription;
  /** Why the pipeline refused the item (e.g. the prompt does not fit the context). */
  error: { code: string; message: string } | null;
  /** When the line was written (ISO). */
  at: string;
}

/** "itemId|mode": the key of a logged answer. */
export function logKey(item: string, mode: EvalMode): string {
  return `${item}|${mode}`;
}

/** Where an evaluation's lines go and are read back from. */
export interface EvalLog {
  /** Keys ("itemId|mode") of the answers logged already. */
  done(): Promise<Set<string>>;
  /** Appends one line durably: once this resolves the line survives an interruption. */
  append(line: EvalLogLine): Promise<void>;
  /** Every line logged, in order. */
  lines(): Promise<EvalLogLine[]>;
}

/**
 * A log in memory (tests; the browser, where the caller persists it).
 * @example const log = new MemoryEvalLog(); await runEval(items, { modes: 'both', deps, log }); await log.lines();
 */
export class MemoryEvalLog implements EvalLog {
  private readonly all: EvalLogLine[];
  constructor(initial: readonly EvalLogLine[] = []) {
    this.all = [...initial];
  }
  async done(): Promise<Set<string>> {
    return new Set(this.all.map((l) => logKey(l.item, l.mode)));
  }
  async append(line: EvalLogLine): Promise<void> {
    this.all.push(line);
  }
  async lines(): Promise<EvalLogLine[]> {
    return [...this.all];
  }
  /** The log as JSONL text (the download of the browser). */
  toJsonl(): string {
    return this.all.map((l) => JSON.stringify(l) + '\n').join('');
  }
}

export interface ParsedEvalLog {
  lines: EvalLogLine[];
  /** Length (UTF-16 units) of the text up to and including the last complete line. */
  completeLength: number;
  /** The torn last line (text after the last newline), or null. */
  torn: string | null;
}

/**
 * Reads JSONL log text. Throws EvalLogError naming the line for a complete line that is not a log
 * line, or that repeats an item and mode logged before.
 * @example const { lines, torn } = parseEvalLog(text); if (torn) truncateTo(completeLength);
 */
export function parseEvalLog(text: string): ParsedEvalLog {
  const cut = text.lastIndexOf('\n') + 1;
  const tail = text.slice(cut);
  const lines: EvalLogLine[] = [];
  const seen = new Map<string, number>();
  const rows = text.slice(0, cut).split('\n');
  rows.pop(); // '' after the final newline
  rows.forEach((row, i) => {
    if (row.trim() === '') return;
    const n = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch (e) {
      throw new EvalLogError(`Line ${n} of the evaluation log is not valid JSON (${(e as Error).message}); the log is damaged before its last line, so it is not resumed. Move it away or use another output folder.`);
    }
    const reason = checkLine(value);
    if (reason) throw new EvalLogError(`Line ${n} of the evaluation log is not a log line: ${reason}.`);
    const line = value as EvalLogLine;
    const key = logKey(line.item, line.mode);
    const first = seen.get(key);
    if (first !== undefined) throw new EvalLogError(`Line ${n} of the evaluation log repeats item ${line.item} (${line.mode}) of line ${first}.`);
    seen.set(key, n);
    lines.push(line);
  });
  return { lines, completeLength: cut, torn: tail.trim() === '' ? null : tail };
}

function checkLine(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a JSON object';
  const v = value as Record<string, unknown>;
  if (v.v !== EVAL_LOG_VERSION) return `version ${JSON.stringify(v.v)}, expected ${EVAL_LOG_VERSION}`;
  if (typeof v.item !== 'string' || v.item === '') return 'no item id';
  if (v.mode !== 'off' && v.mode !== 'on') return `mode must be off or on, got ${JSON.stringify(v.mode)}`;
  if (typeof v.gold !== 'string' || typeof v.benchmark !== 'string') return 'no gold letter or benchmark';
  if (typeof v.options !== 'number' || v.options < 2) return 'no option count';
  if (v.letter !== null && typeof v.letter !== 'string') return 'letter must be a string or null';
  if (v.correct !== null && typeof v.correct !== 'boolean') return 'correct must be true, false or null';
  if (typeof v.settings !== 'object' || v.settings === null) return 'no settings';
  if (typeof v.model !== 'object' || v.model === null) return 'no model';
  if (v.error !== null && (typeof v.error !== 'object' || typeof (v.error as { code?: unknown }).code !== 'string')) return 'error must be {code, message} or null';
  if ((v.correct === null) !== (v.error !== null)) return 'correct is null exactly when the item was refused (error)';
  return null;
}
