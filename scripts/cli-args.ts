/**
 * Minimal `--flag value` / `--switch` parser for the CLIs; unknown flags are errors, not ignored.
 * Every complaint about the command line is a UsageError (exit 2, see ./cli-errors.ts).
 */
import { UsageError } from './cli-errors.ts';

export interface ParsedArgs {
  command: string | undefined;
  positional: string[];
  flags: Map<string, string | true>;
}

export function parseArgs(argv: string[], switches: string[], valued: string[]): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { positional.push(a); continue; }
    const name = a.slice(2);
    if (switches.includes(name)) flags.set(name, true);
    else if (valued.includes(name)) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      flags.set(name, argv[++i]);
    } else throw new UsageError(`unknown option --${name}`);
  }
  return { command: positional.shift(), positional, flags };
}

export function numberFlag(args: ParsedArgs, name: string, fallback?: number): number {
  const v = args.flags.get(name);
  if (v === undefined || v === true) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** "1,2,3" -> [1, 2, 3] */
export function idList(text: string, name: string): number[] {
  return text.split(',').filter((s) => s.trim() !== '').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n)) throw new UsageError(`--${name}: "${s}" is not an integer`);
    return n;
  });
}

/** A number flag that may be absent (undefined then); a present but non-numeric value is an error. */
export function optionalNumberFlag(args: ParsedArgs, name: string): number | undefined {
  return args.flags.has(name) ? numberFlag(args, name) : undefined;
}

/** "a,b,c" -> ["a", "b", "c"] (trimmed, empties dropped). */
export function stringList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** The flags one subcommand accepts. */
export interface CommandSpec {
  switches: string[];
  valued: string[];
}

/**
 * Parses `<command> --flags...` with the flag set of that command, so a flag of another command
 * is an error rather than silently ignored. The command is the first argument.
 * @example parseCommandArgs(['ttt', '--steps', '3'], { ttt: { switches: [], valued: ['steps'] } })
 */
export function parseCommandArgs(argv: string[], specs: Record<string, CommandSpec>): ParsedArgs {
  const command = argv[0];
  if (command === undefined || command.startsWith('--')) throw new UsageError(`the first argument must be a command: ${Object.keys(specs).join(' or ')}`);
  const spec = Object.hasOwn(specs, command) ? specs[command] : undefined;
  if (!spec) throw new UsageError(`unknown command "${command}"; expected ${Object.keys(specs).join(' or ')}`);
  return parseArgs(argv, spec.switches, spec.valued);
}
