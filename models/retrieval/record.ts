/**
 * The corpus record: one question with a long-form reasoning trace and its answer. The same shape
 * comes from JSONL files, FineMed-DPO rows and the demo corpus, and is what TTT trains on.
 */

export interface CorpusRecord {
  id: string;
  question: string;
  reasoning: string;
  answer: string;
  /** Where the record came from (dataset, repo/path, or file name). */
  source: string;
  license: string;
  /** Medical department or subject; null when unknown. */
  department: string | null;
}

/** Values for the optional fields when a line leaves them out. */
export interface RecordDefaults {
  source?: string;
  license?: string;
}

export type RecordCheck = { ok: true; record: CorpusRecord } | { ok: false; reason: string };

const REQUIRED_TEXT = ['id', 'question', 'reasoning', 'answer'] as const;
const OPTIONAL_TEXT = ['source', 'license'] as const;

/**
 * Checks one parsed JSON value against the record schema. Required: `id` (string, or an integer,
 * kept as its decimal string), `question`, `reasoning`, `answer` (non-empty strings except
 * `answer`, which may be empty). Optional: `source`, `license` (strings; defaults applied),
 * `department` (string or null). Extra fields are ignored.
 * @example
 *   validateRecord({ id: 'a', question: 'Q?', reasoning: 'R', answer: 'A' }, { source: 'my.jsonl' });
 *   // { ok: true, record: { id: 'a', ..., source: 'my.jsonl', license: 'unknown', department: null } }
 */
export function validateRecord(value: unknown, defaults: RecordDefaults = {}): RecordCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: `expected a JSON object, got ${describe(value)}` };
  }
  const v = value as Record<string, unknown>;
  const out: Record<string, string | null> = {};
  for (const field of REQUIRED_TEXT) {
    let x = v[field];
    if (field === 'id' && typeof x === 'number' && Number.isSafeInteger(x)) x = String(x);
    if (x === undefined || x === null) return { ok: false, reason: `field "${field}" is missing` };
    if (typeof x !== 'string') return { ok: false, reason: `field "${field}" must be a string, got ${describe(x)}` };
    if (field !== 'answer' && x.trim() === '') return { ok: false, reason: `field "${field}" is empty` };
    out[field] = x;
  }
  for (const field of OPTIONAL_TEXT) {
    const x = v[field];
    if (x === undefined || x === null) out[field] = defaults[field] ?? (field === 'license' ? 'unknown' : 'user');
    else if (typeof x !== 'string') return { ok: false, reason: `field "${field}" must be a string, got ${describe(x)}` };
    else out[field] = x;
  }
  const dept = v.department;
  if (dept !== undefined && dept !== null && typeof dept !== 'string') {
    return { ok: false, reason: `field "department" must be a string or null, got ${describe(dept)}` };
  }
  out.department = typeof dept === 'string' && dept.trim() !== '' ? dept : null;
  return { ok: true, record: out as unknown as CorpusRecord };
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'string' ? `a string` : typeof x === 'object' ? 'an object' : `${typeof x} ${String(x)}`;
}
