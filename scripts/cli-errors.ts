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
 * are flushed before the process exits, so a pipe never gets a cut result (a 2.5 MB result on a
 * slow reader included); a reader that closes early (`| head -c`) ends the CLI quietly with the
 * usual SIGPIPE status, 141.
 *
 * GPU diagnostics go to stderr, never stdout: the GPU of `cliGpuErrors.watch(nodeGpu())` (what
 * the CLIs load models with) has Dawn's uncaptured-error text written to stderr instead, and any
 * such error fails the command (exit 1, the typed error's JSON as stdout's last line).
 */
import { serializeError } from '../models/errors.ts';
import { UncapturedGpuErrors } from '../node/gpu/gpu-diagnostics.ts';

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

/** The process's uncaptured GPU errors: their text on stderr; the first one fails the command. */
export const cliGpuErrors = new UncapturedGpuErrors((text) => process.stderr.write(text));

/** The exit status of a process whose reader closed the pipe (as if killed by SIGPIPE). */
export const EXIT_PIPE_CLOSED = 141;

/**
 * Prints a command's result on stdout as its last line, unless a GPU error happened (then it
 * throws that typed error instead, for runCli to print); resolves once the line was handed to the OS.
 * @example await printResult({ ids, text });
 */
export function printResult(result: unknown): Promise<void> {
  cliGpuErrors.throwIfAny();
  return new Promise((resolve) => process.stdout.write(JSON.stringify(result) + '\n', () => resolve()));
}

/**
 * Runs a CLI's `main` (which prints its result and returns the exit code), prints a failure in the
 * shape above, waits until stdout and stderr have drained, and exits: explicitly, since Dawn and
 * onnxruntime keep the event loop alive. A GPU error seen after the result was printed still
 * fails the command (its JSON becomes the last line). `usage` gives the text shown under a
 * UsageError (the command's own usage).
 * @example void runCli(main, () => USAGE);
 */
export async function runCli(main: () => Promise<number>, usage: () => string): Promise<never> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(EXIT_PIPE_CLOSED); // the reader is gone: nothing more can be delivered
  });
  let code: number;
  try {
    code = await main();
    if (code === EXIT_OK) cliGpuErrors.throwIfAny();
  } catch (e) {
    const json = cliErrorJson(e);
    code = exitCodeOf(e);
    process.stdout.write(JSON.stringify(json) + '\n');
    process.stderr.write(`error (${json.error.code}): ${json.error.message}\n${code === EXIT_USAGE ? `${usage()}\n` : ''}`);
  }
  process.exitCode = code;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
