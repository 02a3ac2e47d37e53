/**
 * Typed errors of the retrieval side. Each subclasses EngineError with the closest existing code,
 * so the worker serialises them like every other engine error and the UI reacts by code.
 */
import { EngineError, registerErrorClasses } from '../errors.ts';

/** One rejected line of a JSONL corpus. `line` is 1-based, as an editor shows it. */
export interface BadLine {
  line: number;
  reason: string;
}

/** A corpus file that cannot be imported as asked (bad line with onBadLine 'stop', or nothing usable). */
export class CorpusFormatError extends EngineError {
  readonly badLines: BadLine[];
  constructor(message: string, badLines: BadLine[] = []) {
    super('invalid-input', message);
    this.badLines = badLines;
  }
}

/** Vectors wider than voy's fixed 768 dims (voy silently truncates them, giving wrong neighbours). */
export class DimensionsError extends EngineError {
  constructor(message: string) { super('invalid-input', message); }
}

/** A persisted index whose files are missing, truncated or inconsistent with their manifest. */
export class IndexFormatError extends EngineError {
  constructor(message: string) { super('invalid-input', message); }
}

/** A persisted index built from another corpus or embedder than the one asked for. */
export class StaleIndexError extends EngineError {
  readonly reasons: string[];
  constructor(reasons: string[]) {
    super('not-found', `The stored index is stale: ${reasons.join('; ')}. Rebuild it.`);
    this.reasons = reasons;
  }
}

registerErrorClasses({ CorpusFormatError, DimensionsError, IndexFormatError, StaleIndexError });
