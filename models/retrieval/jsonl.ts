/**
 * Streamed JSONL import of a corpus. Lines are parsed as they arrive (a 300 MB file is never held
 * as one string), each checked against the record schema. A bad line is reported with its 1-based
 * line number and the reason; the caller chooses to skip such lines (with a visible count) or stop.
 */
import { throwIfAborted } from '../errors.ts';
import { CorpusFormatError, type BadLine } from './errors.ts';
import { validateRecord, type CorpusRecord, type RecordDefaults } from './record.ts';

export type BadLinePolicy = 'skip' | 'stop';

export interface JsonlProgress {
  bytes: number;
  lines: number;
  records: number;
  skipped: number;
}

export interface JsonlOptions {
  /** 'skip' (default): drop bad lines and list them; 'stop': throw on the first one. */
  onBadLine?: BadLinePolicy;
  defaults?: RecordDefaults;
  /** At most this many bad lines are kept with their reason (all are counted); default 1000. */
  maxReported?: number;
  onProgress?: (p: JsonlProgress) => void;
  signal?: AbortSignal;
}

export interface JsonlResult {
  records: CorpusRecord[];
  /** Lines read, blank ones included. */
  lines: number;
  /** Bad lines dropped (only non-zero with onBadLine 'skip'). */
  skipped: number;
  /** The first `maxReported` bad lines, in file order. */
  badLines: BadLine[];
}

export type JsonlInput = string | Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;

/**
 * Reads a JSONL corpus. Blank lines are ignored; duplicate ids are bad lines. Throws
 * CorpusFormatError on a bad line with onBadLine 'stop', and when no line gave a record.
 * @example
 *   const { records, skipped, badLines } = await readJsonlCorpus(createReadStream('traces.jsonl'));
 *   if (skipped) console.warn(`${skipped} bad lines, first at line ${badLines[0].line}: ${badLines[0].reason}`);
 */
export async function readJsonlCorpus(input: JsonlInput, options: JsonlOptions = {}): Promise<JsonlResult> {
  const policy = options.onBadLine ?? 'skip';
  const maxReported = options.maxReported ?? 1000;
  const records: CorpusRecord[] = [];
  const badLines: BadLine[] = [];
  const firstLineOfId = new Map<string, number>();
  let lines = 0;
  let skipped = 0;
  let bytes = 0;

  const bad = (line: number, reason: string): void => {
    if (policy === 'stop') throw new CorpusFormatError(`Line ${line}: ${reason}.`, [{ line, reason }]);
    skipped++;
    if (badLines.length < maxReported) badLines.push({ line, reason });
  };

  const handleLine = (text: string): void => {
    lines++;
    if (lines === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return bad(lines, `not valid JSON (${(e as Error).message})`);
    }
    const check = validateRecord(value, options.defaults);
    if (!check.ok) return bad(lines, check.reason);
    const first = firstLineOfId.get(check.record.id);
    if (first !== undefined) return bad(lines, `duplicate id "${check.record.id}" (first used on line ${first})`);
    firstLineOfId.set(check.record.id, lines);
    records.push(check.record);
  };

  let pending = '';
  for await (const chunk of textChunks(input)) {
    throwIfAborted(options.signal);
    bytes += chunk.bytes;
    let text = pending + chunk.text;
    let nl = text.indexOf('\n');
    let start = 0;
    while (nl !== -1) {
      handleLine(text.slice(start, nl));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    pending = text.slice(start);
    text = '';
    options.onProgress?.({ bytes, lines, records: records.length, skipped });
  }
  if (pending !== '') handleLine(pending);
  options.onProgress?.({ bytes, lines, records: records.length, skipped });

  if (records.length === 0) {
    const why = badLines.length ? ` ${skipped} bad line(s); the first, line ${badLines[0].line}: ${badLines[0].reason}.` : ' The input is empty.';
    throw new CorpusFormatError(`No valid record in the corpus.${why}`, badLines);
  }
  return { records, lines, skipped, badLines };
}

/** Decoded text pieces of any input kind, with the byte count each came from. */
async function* textChunks(input: JsonlInput): AsyncGenerator<{ text: string; bytes: number }> {
  if (typeof input === 'string') {
    yield { text: input, bytes: input.length };
    return;
  }
  // fatal: a corpus that is not UTF-8 should fail loudly, not import mojibake.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decode = (b: Uint8Array, stream: boolean): string => {
    try {
      return decoder.decode(b, { stream });
    } catch {
      throw new CorpusFormatError('The corpus is not valid UTF-8 text.');
    }
  };
  if (input instanceof Uint8Array) {
    yield { text: decode(input, false), bytes: input.byteLength };
    return;
  }
  const iterable: AsyncIterable<Uint8Array | string> =
    typeof (input as ReadableStream<Uint8Array>).getReader === 'function'
      ? readerIterable(input as ReadableStream<Uint8Array>)
      : (input as AsyncIterable<Uint8Array | string>);
  for await (const part of iterable) {
    if (typeof part === 'string') yield { text: part, bytes: part.length };
    else yield { text: decode(part, true), bytes: part.byteLength };
  }
  const tail = decode(new Uint8Array(0), false);
  if (tail) yield { text: tail, bytes: 0 };
}

/** ReadableStream -> async iterable through a reader (async iteration of streams is not everywhere). */
async function* readerIterable(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
