/**
 * One error shape and one exit code convention for every CLI (`llm`, `index`, `eval`):
 *
 *   exit 0  done; the result is on stdout (its last line, as JSON, with --json).
 *   exit 1  the engine or the input failed: a typed EngineError (not-found, invalid-input,
 *           weights-mismatch, ...), or anything unexpected (code "internal").
 *   exit 2  a malformed command line: unknown command or flag, a missing flag or value, a value
 *           that is not one of the choices (a UsageError, code "usage").
 *
 * Either failure prints one JSON line on stdout, the same for every command:
 *   {"error": {"name": "NotFoundError", "code": "not-found", "message": "...", "details": {...}}}
 * (`details` only where the error class carries more, e.g. a corpus error's `badLines`), and a
 * readable `error (<code>): <message>` on stderr, followed by the usage for exit 2. Both streams
 * are flushed before the process exits, so a pipe never gets a cut result.
 */
import { serializeError } from '../models/errors.ts';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** The command line itself is wrong (exit 2); the message names the flag and what it needs. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** What a failing CLI prints on stdout: the same shape for every command. */
export interface CliErrorJson {
  error: { name: string; code: string; message: string; details?: Record<string, unknown> };
}

/**
 * The JSON of a failure: a UsageError has code "usage"; anything else is serialized as the worker
 * boundary does it (an EngineError keeps name, code and fields; other errors become "internal").
 * @example JSON.stringify(cliErrorJson(new NotFoundError('config.json: 404'))); // {"error":{"name":"NotFoundError","code":"not-found","message":"config.json: 404"}}
 */
export function cliErrorJson(e: unknown): CliErrorJson {
  if (e instanceof UsageError) return { error: { name: e.name, code: 'usage', message: e.message } };
  return { error: serializeError(e) };
}

/** Exit 2 for a malformed command line, 1 for everything else. */
export function exitCodeOf(e: unknown): number {
  return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
}

/** Resolves once everything written to `stream` so far has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/**
 * Runs a CLI's `main` (which prints its result and returns the exit code), prints a failure in the
 * shape above, flushes stdout and stderr, and exits: explicitly, since Dawn and onnxruntime keep
 * the event loop alive. `usage` gives the text shown under a UsageError (the command's own usage).
 * @example void runCli(main, () => USAGE);
 */
export async function runCli(main: () => Promise<number>, usage: () => string): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (e) {
    const json = cliErrorJson(e);
    code = exitCodeOf(e);
    process.stdout.write(JSON.stringify(json) + '\n');
    process.stderr.write(`error (${json.error.code}): ${json.error.message}\n${code === EXIT_USAGE ? `${usage()}\n` : ''}`);
  }
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
