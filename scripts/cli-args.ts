/** Minimal `--flag value` / `--switch` parser for the CLIs; unknown flags are errors, not ignored. */
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
      if (i + 1 >= argv.length) throw new Error(`--${name} needs a value`);
      flags.set(name, argv[++i]);
    } else throw new Error(`unknown option --${name}`);
  }
  return { command: positional.shift(), positional, flags };
}

export function numberFlag(args: ParsedArgs, name: string, fallback?: number): number {
  const v = args.flags.get(name);
  if (v === undefined || v === true) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${v}"`);
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
    if (!Number.isInteger(n)) throw new Error(`--${name}: "${s}" is not an integer`);
    return n;
  });
}
