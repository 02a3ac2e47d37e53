/**
 * Multiple-choice items for the evaluation: parsing and validating MCQ JSONL (the schema of
 * ../shared/data/eval-mcq.jsonl), choosing a subset (--limit, seeded --sample), and the question
 * text the model is asked, in FineMedLM-o1's Thought / Summarization format.
 *
 * Schema, one JSON object a line: `id` (string, or an integer), `question` (non-empty), `options`
 * ({"A": "...", "B": "...", ...}: single capital letters from A with none missing, at least two,
 * non-empty texts), `answer` (one of the option letters), and optional `source`, `license`,
 * `subject` (string or null), `context` (string or null: PubMedQA's abstract), `benchmark`.
 *
 * Benchmark of an item (for per-benchmark results), the first rule that applies:
 *   1. its `benchmark` field (lower-cased);
 *   2. the part of its id before the first "-" when that is medqa, medmcqa, pubmedqa or mmlu
 *      ("medqa-us4-test-0255" -> medqa);
 *   3. its source, lower-cased, containing pubmedqa, medmcqa, medqa or mmlu, tried in that order
 *      ("pubmedqa" contains "medqa");
 *   4. "other".
 */
import { InvalidInputError } from '../errors.ts';
import { seededRandom } from '../sampling.ts';
import { McqFormatError, type BadLine } from './errors.ts';

export const KNOWN_BENCHMARKS = ['medqa', 'medmcqa', 'pubmedqa', 'mmlu'] as const;

export interface McqItem {
  id: string;
  question: string;
  /** Letter -> option text, letters in order from A. */
  options: Record<string, string>;
  /** The gold letter. */
  answer: string;
  source: string;
  license: string;
  subject: string | null;
  /** Text the question is about (PubMedQA's abstract); null when none. */
  context: string | null;
  /** See the rule at the top of this file. */
  benchmark: string;
}

export interface ParseMcqOptions {
  /** 'stop' (default): any bad line throws McqFormatError listing every bad line; 'skip': drop them. */
  onBadLine?: 'stop' | 'skip';
}

export interface ParsedMcq {
  items: McqItem[];
  /** Bad lines dropped (only with onBadLine 'skip'), 1-based line numbers. */
  badLines: BadLine[];
}

/** At most this many bad lines are named in an error message (all are in `badLines`). */
const NAMED_IN_MESSAGE = 5;

/**
 * Parses MCQ JSONL text. Blank lines are ignored; a duplicate id is a bad line.
 * @example
 *   const { items } = parseMcqJsonl(await readFile('../shared/data/eval-mcq.jsonl', 'utf8'));
 *   items[0].benchmark; // 'medqa'
 */
export function parseMcqJsonl(text: string, options: ParseMcqOptions = {}): ParsedMcq {
  const items: McqItem[] = [];
  const badLines: BadLine[] = [];
  const lineOfId = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let raw = lines[i]!;
    if (i === 0 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
    if (raw.trim() === '') continue;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      badLines.push({ line, reason: `not valid JSON (${(e as Error).message})` });
      continue;
    }
    const check = validateMcqItem(value);
    if (typeof check === 'string') {
      badLines.push({ line, reason: check });
      continue;
    }
    const first = lineOfId.get(check.id);
    if (first !== undefined) {
      badLines.push({ line, reason: `duplicate id "${check.id}" (first used on line ${first})` });
      continue;
    }
    lineOfId.set(check.id, line);
    items.push(check);
  }
  if (badLines.length > 0 && (options.onBadLine ?? 'stop') === 'stop') {
    const named = badLines.slice(0, NAMED_IN_MESSAGE).map((b) => `line ${b.line}: ${b.reason}`).join('; ');
    const more = badLines.length > NAMED_IN_MESSAGE ? `; and ${badLines.length - NAMED_IN_MESSAGE} more` : '';
    throw new McqFormatError(`${badLines.length} bad line${badLines.length === 1 ? '' : 's'} in the MCQ file: ${named}${more}.`, badLines);
  }
  if (items.length === 0) throw new McqFormatError('The MCQ file holds no items.', badLines);
  return { items, badLines };
}

/** The item, or the reason the value is not one. */
export function validateMcqItem(value: unknown): McqItem | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a JSON object';
  const v = value as Record<string, unknown>;
  const id = typeof v.id === 'number' && Number.isSafeInteger(v.id) ? String(v.id) : v.id;
  if (typeof id !== 'string' || id.trim() === '') return 'field "id" must be a non-empty string';
  if (typeof v.question !== 'string' || v.question.trim() === '') return 'field "question" must be a non-empty string';
  const opts = v.options;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) return 'field "options" must be an object {"A": "...", "B": "..."}';
  const letters = Object.keys(opts).sort();
  if (letters.length < 2) return 'field "options" needs at least two options';
  for (let i = 0; i < letters.length; i++) {
    const expected = String.fromCharCode(65 + i);
    if (letters[i] !== expected) return `option letters must run A, B, C, ... without gaps; expected "${expected}", got "${letters[i]}"`;
    const t = (opts as Record<string, unknown>)[expected];
    if (typeof t !== 'string' || t.trim() === '') return `option ${expected} must be a non-empty string`;
  }
  if (typeof v.answer !== 'string' || !letters.includes(v.answer)) return `field "answer" must be one of the option letters ${letters.join(', ')}, got ${JSON.stringify(v.answer)}`;
  for (const f of ['source', 'license', 'subject', 'context', 'benchmark'] as const) {
    if (v[f] !== undefined && v[f] !== null && typeof v[f] !== 'string') return `field "${f}" must be a string or null`;
  }
  const str = (x: unknown): string | null => (typeof x === 'string' && x.trim() !== '' ? x : null);
  const item: Omit<McqItem, 'benchmark'> = {
    id,
    question: v.question,
    options: Object.fromEntries(letters.map((l) => [l, (opts as Record<string, string>)[l]!])),
    answer: v.answer,
    source: str(v.source) ?? 'unknown',
    license: str(v.license) ?? 'unknown',
    subject: str(v.subject),
    context: str(v.context),
  };
  return { ...item, benchmark: benchmarkOf({ id, source: item.source, benchmark: str(v.benchmark) }) };
}

/**
 * The benchmark an item belongs to (rule at the top of this file).
 * @example benchmarkOf({ id: 'x1', source: 'pubmedqa/pubmedqa/data/ori_pqal.json' }); // 'pubmedqa'
 */
export function benchmarkOf(item: { id: string; source?: string | null; benchmark?: string | null }): string {
  if (item.benchmark) return item.benchmark.trim().toLowerCase();
  const prefix = item.id.split('-')[0]!.toLowerCase();
  if ((KNOWN_BENCHMARKS as readonly string[]).includes(prefix)) return prefix;
  const source = (item.source ?? '').toLowerCase();
  for (const name of ['pubmedqa', 'medmcqa', 'medqa', 'mmlu']) if (source.includes(name)) return name;
  return 'other';
}

export interface SelectOptions {
  /** Keep the first N (of the file, or of the sample). */
  limit?: number;
  /** Draw N items at random without replacement (all of them when N >= the count). */
  sample?: number;
  /** Seed of the draw (models/sampling.ts seededRandom); default 0. */
  seed?: number;
}

/**
 * The items to evaluate: a seeded sample (in file order), then the first `limit`. The same items
 * and seed always give the same selection.
 * @example selectItems(items, { sample: 40, seed: 1 }).length; // 40
 */
export function selectItems(items: readonly McqItem[], opts: SelectOptions = {}): McqItem[] {
  const positive = (n: number | undefined, name: string) => {
    if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new InvalidInputError(`${name} must be a positive integer, got ${n}.`);
  };
  positive(opts.limit, 'limit');
  positive(opts.sample, 'sample');
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new InvalidInputError(`seed must be an integer >= 0, got ${seed}.`);
  let chosen = [...items];
  if (opts.sample !== undefined && opts.sample < items.length) {
    // Partial Fisher-Yates over the positions, then back to file order.
    const rand = seededRandom(seed);
    const order = items.map((_, i) => i);
    for (let i = 0; i < opts.sample; i++) {
      const j = i + Math.floor(rand() * (order.length - i));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    chosen = order.slice(0, opts.sample).sort((a, b) => a - b).map((i) => items[i]!);
  }
  return opts.limit !== undefined ? chosen.slice(0, opts.limit) : chosen;
}

/** The instruction after the options: the extractor (./extract.ts) looks for exactly this statement first. */
export const MCQ_INSTRUCTION =
  'In the **Thought** section, reason step by step about each option. In the **Summarization** section, ' +
  'state the final answer as "The answer is (X)", where X is the letter of the correct option.';

/**
 * The question the model is asked: the context (PubMedQA's abstract) when there is one, the
 * question, the lettered options and the instruction. The prompt format (models/prompt-format.ts)
 * puts it after FineMedLM-o1's system prompt and appends "Please think step by step.".
 * @example
 *   mcqQuestionText({ question: 'Which vitamin...?', options: { A: 'C', B: 'D' }, context: null });
 *   // 'Question: Which vitamin...?\n\nOptions:\nA. C\nB. D\n\nIn the **Thought** section, ...'
 */
export function mcqQuestionText(item: Pick<McqItem, 'question' | 'options' | 'context'>): string {
  const parts: string[] = [];
  if (item.context) parts.push(`Context: ${item.context.trim()}`);
  parts.push(`Question: ${item.question.trim()}`);
  parts.push(`Options:\n${Object.entries(item.options).map(([l, t]) => `${l}. ${t.trim()}`).join('\n')}`);
  parts.push(MCQ_INSTRUCTION);
  return parts.join('\n\n');
}

/** The chance accuracy of guessing on this item: 1 / number of options. */
export function chanceOf(item: Pick<McqItem, 'options'>): number {
  return 1 / Object.keys(item.options).length;
}
