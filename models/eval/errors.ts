/**
 * Typed errors of the evaluation harness. Both are 'invalid-input' EngineErrors (the user's file
 * is at fault), so they serialise across a worker boundary like every other engine error.
 */
import { EngineError, registerErrorClasses } from '../errors.ts';
import type { BadLine } from '../retrieval/errors.ts';

export type { BadLine };

/** An MCQ JSONL file with lines that are not items of the schema; every bad line is listed. */
export class McqFormatError extends EngineError {
  readonly badLines: BadLine[];
  constructor(message: string, badLines: BadLine[] = []) {
    super('invalid-input', message);
    this.badLines = badLines;
  }
}

/** An evaluation log that cannot be resumed: a broken line in its middle, or another run's settings. */
export class EvalLogError extends EngineError {
  constructor(message: string) {
    super('invalid-input', message);
  }
}

registerErrorClasses({ McqFormatError, EvalLogError });
